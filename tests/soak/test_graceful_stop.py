"""Graceful stop (issue #18, item 5): `hrss ingest folder` and `hrss ingest reprocess` that receive
SIGTERM (what Airflow sends when a task is cleared or times out) finish the batch they are loading,
start no other, leave every file in landing, archive or quarantine, and exit with one line and status
75 instead of 143 and a stack. The next run completes.

The test holds the advisory lock 'load' so that the child is exactly between checking a batch and
loading it when SIGTERM arrives; then it lets the load go on. Registration takes the same lock, so for an
ingest the test takes it once the child has registered every file (the landing folder is empty) and
released it, while the child checks its first batch. Quick: batches checked one after the
other in the main process; HRSS_SOAK=full: more counties, checked by the worker processes meanwhile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from soak_helpers import (
    FULL,
    Ingest,
    Returns,
    assert_intact,
    backends_of,
    child_env,
    land,
    land_fixture_workbook,
    pending,
    rerun,
    wait_for,
)

from hrss_warehouse import db, graceful, pipeline
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.files import sha256_of

pytestmark = pytest.mark.soak

COUNTIES = 3 if FULL else 1
OFFSET = 35 if FULL else 10  # counties of province 50 no other soak test lands


def _hrss(settings: Settings, logs: Path, *args: str) -> Ingest:
    """`hrss ARGS` in a subprocess, one batch per county."""
    logs.mkdir(parents=True, exist_ok=True)
    out, err = logs / f"{args[1]}.out", logs / f"{args[1]}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("hrss")), *args],
                                env=child_env(settings, HRSS_CHECK_WORKERS="2" if FULL else "1"),
                                stdout=stdout, stderr=stderr, cwd=settings.home)
    return Ingest(proc, err, out)


def _outcomes(settings: Settings, after: int) -> dict[str, set[str]]:
    """The outcomes of each county's submissions registered after submission ``after``."""
    with connect(settings, role=LOADER) as conn:
        rows = conn.execute("SELECT county_code, outcome FROM raw.submission WHERE submission_id > %s",
                            (after,)).fetchall()
    found: dict[str, set[str]] = {}
    for county, outcome in rows:
        found.setdefault(county, set()).add(outcome)
    return found


def _terminate_before_a_load(settings: Settings, child: Ingest, landing: Path | None = None) -> str:
    """Hold 'load' until the child waits for it, SIGTERM the child, let it load; return its stderr.
    With ``landing``, the lock is taken once the child has registered the folder's files."""
    holder = psycopg.connect(settings.dsn(), autocommit=True, application_name="graceful stop test")

    def take_the_lock() -> bool:
        return holder.execute("SELECT pg_try_advisory_lock(%s, hashtext('load'))",
                              (db.LOCK_NAMESPACE,)).fetchone()[0]
    try:
        if landing is not None:
            wait_for("the child to register every landed file",
                     lambda: not any(path.is_file() for path in landing.rglob("*")), timeout=300, child=child)
            wait_for("the child to release the lock after registering", take_the_lock, timeout=60,
                     child=child)
        else:
            assert take_the_lock()
        wait_for("the child to wait for the load lock",
                 lambda: any(app.startswith("hrss load lock") for _, app, _ in backends_of(settings, child)),
                 timeout=300, child=child)
        os.kill(child.pid, signal.SIGTERM)
        time.sleep(1)  # the handler has run: the child sleeps between two polls of the lock
    finally:
        holder.close()  # the lock dies with its session
    code = child.wait()
    error = child.stderr()
    lines = [line for line in error.splitlines() if line.strip()]
    assert code == graceful.STOPPED_EXIT_CODE, error[-3000:]
    assert "Traceback" not in error and lines[-1].startswith("hrss: stopped on SIGTERM"), error[-3000:]
    return lines[-1]


def test_sigterm_stops_an_ingest_and_a_reprocess_between_batches(settings: Settings, returns: Returns,
                                                                  tmp_path: Path) -> None:
    started = time.monotonic()
    landing = tmp_path / "landing"
    received = land(returns, returns.pick(COUNTIES, OFFSET), landing)
    fixture = land_fixture_workbook(landing)
    received[fixture] = sha256_of(landing / fixture)
    expected = {name: returns.files[name]["outcome"] if name in returns.files else "accepted"
                for name in received}
    db.ensure_raw_schema(settings)
    with connect(settings, role=LOADER) as conn:
        before = conn.execute("SELECT coalesce(max(submission_id), 0) FROM raw.submission").fetchone()[0]
    said = _terminate_before_a_load(settings, _hrss(settings, tmp_path / "logs", "ingest", "folder",
                                                    "--landing", str(landing)), landing)
    outcomes = _outcomes(settings, before)
    loaded = sorted(county for county, found in outcomes.items() if "pending" not in found)
    assert len(loaded) == 1, outcomes  # the batch being loaded was finished, no other started
    assert all(found == {"pending"} for county, found in outcomes.items() if county not in loaded), outcomes
    assert f"1 of {len(outcomes)} batches loaded" in said, said
    assert pending(settings) > 0
    assert_intact(settings, received, expected, landing=landing, final=False)
    totals = rerun(settings, landing)
    counts = assert_intact(settings, received, expected, landing=landing)

    counties = sorted(county for county in outcomes if county.startswith("50"))
    args = ["ingest", "reprocess", "--year", "2017", *(f"--county={county}" for county in counties)]
    said = _terminate_before_a_load(settings, _hrss(settings, tmp_path / "logs", *args))
    assert f"1 of {len(counties)} batches of 2017 reprocessed" in said, said
    again = pipeline.reprocess_year(settings, 2017, counties)
    assert again["changed"] == []  # today's rules, same files: the same outcomes
    assert_intact(settings, received, expected, landing=landing)
    print(f"\nSIGTERM before a load: ingest and reprocess stopped after one batch; rerun loaded "
          f"{totals['rows']} rows; checked {counts}; {time.monotonic() - started:.0f} s")
