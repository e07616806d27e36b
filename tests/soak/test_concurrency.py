"""Concurrency (issue #8, item 5): two loads cannot interleave.

Loads hold the PostgreSQL advisory lock 'load' (`db.warehouse_lock`). A second ingest started while a
first one is stuck in the middle of a COPY waits, says whom it waits for, and completes once the first
is gone; asked not to wait, it refuses with a message naming the lock and its holder. A lock dies with
its session, so a crashed run never leaves a stale lock behind. With HRSS_SOAK=full, `hrss run` (the
nightly DAG through dag.test) meets a held lock too.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from soak_helpers import (
    FULL,
    Returns,
    active_copies,
    assert_intact,
    child_env,
    land,
    land_fixture_workbook,
    pause_marker,
    start_ingest,
    wait_for,
    wait_gone,
)

from hrss_warehouse import db
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import WarehouseError, connect
from hrss_warehouse.files import sha256_of

pytestmark = pytest.mark.soak

COUNTIES = 6 if FULL else 2
HOLDER_APP = "soak test: nightly run"


def _hold(settings: Settings, name: str = "load") -> psycopg.Connection:
    """Another session holding the advisory lock ``name``, as a running load would."""
    conn = psycopg.connect(settings.dsn(), autocommit=True, application_name=HOLDER_APP)
    assert conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                        (db.LOCK_NAMESPACE, name)).fetchone()[0]
    return conn


def _expected(returns: Returns, received: dict[str, str]) -> dict[str, str]:
    return {name: returns.files[name]["outcome"] if name in returns.files else "accepted"
            for name in received}


def _outcomes(settings: Settings, shas: list[str]) -> list[str]:
    with connect(settings, role=LOADER) as conn:
        return [r[0] for r in conn.execute("SELECT outcome FROM raw.submission WHERE sha256 = ANY(%s)",
                                           (shas,))]


def test_a_refused_lock_names_itself_and_its_holder(settings: Settings) -> None:
    db.ensure_raw_schema(settings)
    holder = _hold(settings)
    try:
        holder_pid = holder.info.backend_pid
        with pytest.raises(WarehouseError) as refused, db.warehouse_lock(settings, "load", wait=False):
            pytest.fail("took a lock another session holds")
        message = str(refused.value)
        # the holder's session start carries its UTC offset
        assert re.search(rf"'load' lock is held by PostgreSQL backend {holder_pid} \({HOLDER_APP}, connected "
                         r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d\)", message), message
        assert "another load is running; try again when it has finished" in message
        started = time.monotonic()
        with pytest.raises(WarehouseError, match="'load' lock is held"), \
                db.warehouse_lock(settings, "load", timeout_s=1):
            pytest.fail("took a lock another session holds")
        assert time.monotonic() - started >= 1  # it waited before it gave up
        # the holder dies (as a killed run's session does): its lock goes with it, nothing stale remains
        with connect(settings) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (holder_pid,))
        wait_gone(settings, [holder_pid])
        with db.warehouse_lock(settings, "load", wait=False):
            pass
    finally:
        holder.close()


def test_a_second_ingest_waits_for_the_first(settings: Settings, returns: Returns, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """First ingest: paused mid-COPY (fault hook), holding 'load'. Second ingest, of other files: waits
    and loads nothing until the first is killed, then completes, loading the first one's leftovers too."""
    started = time.monotonic()
    first, second = tmp_path / "first", tmp_path / "second"
    received = land(returns, returns.pick(COUNTIES, 0), first)
    marker = pause_marker(settings)
    marker.unlink(missing_ok=True)
    child = start_ingest(settings, first, tmp_path / "logs", pause_after_rows=20, load_only=not FULL)
    wait_for("the first ingest to pause mid-COPY", marker.exists, timeout=300, child=child)
    copies = [c for c in active_copies(settings) if c[1] in child.ports()]
    assert len(copies) == 1, copies

    theirs = land(returns, returns.pick(COUNTIES, COUNTIES * 2), second)
    outcome: dict[str, object] = {}

    def second_ingest() -> None:
        from hrss_warehouse import pipeline

        try:
            outcome["totals"] = pipeline.ingest_folder(settings, second)
        except BaseException as exc:  # reported by the test thread
            outcome["error"] = exc

    caplog.set_level(logging.WARNING, logger="hrss_warehouse.stages.load")
    worker = threading.Thread(target=second_ingest, daemon=True)
    worker.start()
    wait_for("the second ingest to wait for the lock",
             lambda: "waiting for the 'load' lock" in caplog.text or not worker.is_alive(), timeout=300)
    assert "error" not in outcome and "totals" not in outcome, outcome
    waiting = next(r.getMessage() for r in caplog.records if "waiting for the 'load' lock" in r.getMessage())
    assert re.search(r"held by PostgreSQL backend \d+ \(hrss load lock, pid \d+, connected since ",
                     waiting), waiting
    time.sleep(db.LOCK_POLL_S * 1.5)  # a poll or two later: still waiting, nothing of its own loaded
    assert worker.is_alive()
    assert set(_outcomes(settings, list(theirs.values()))) == {"pending"}

    killed_at = time.monotonic()
    child.kill()
    marker.unlink()
    wait_gone(settings, [copies[0][0]])
    worker.join(timeout=600)
    assert not worker.is_alive(), "the second ingest did not finish after the lock was released"
    assert "error" not in outcome, outcome.get("error")
    both = received | theirs
    expected = _expected(returns, both)
    assert_intact(settings, received, expected, landing=first)
    counts = assert_intact(settings, theirs, expected, landing=second)
    print(f"\nsecond ingest waited, then loaded {outcome['totals']['rows']} rows "
          f"({time.monotonic() - killed_at:.0f} s after the first was killed); checked {counts}; "
          f"{time.monotonic() - started:.0f} s")


@pytest.mark.skipif(not FULL, reason="a whole nightly DAG run: HRSS_SOAK=full (make soak)")
def test_hrss_run_waits_for_a_running_load(settings: Settings, tmp_path: Path) -> None:
    """`hrss run` during another load: its load task says whom it waits for, then completes."""
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    landing = tmp_path / "landing"
    landing.mkdir()
    name = land_fixture_workbook(landing)
    sha = sha256_of(landing / name)
    output = tmp_path / "hrss-run.log"
    holder = _hold(settings)
    try:
        with output.open("wb") as out:
            run = subprocess.Popen([str(Path(sys.executable).with_name("hrss")), "run", "--landing",
                                    str(landing)], env=child_env(settings), stdout=out,
                                   stderr=subprocess.STDOUT, cwd=settings.home)
        try:
            wait_for("`hrss run` to wait for the load lock",
                     lambda: "waiting for the 'load' lock" in output.read_text(errors="replace")
                     or run.poll() is not None, timeout=900)
            text = output.read_text(errors="replace")
            assert run.poll() is None, text[-4000:]
            assert f"held by PostgreSQL backend {holder.info.backend_pid} ({HOLDER_APP}" in text
            assert set(_outcomes(settings, [sha])) == {"pending"}
        except BaseException:
            run.kill()
            raise
    finally:
        holder.close()
    code = run.wait(timeout=1800)
    text = output.read_text(errors="replace")
    summary = text[text.rfind("jcpt_nightly run "):]
    assert code == 0, text[-4000:]
    assert "files found: 1" in summary and "marts published" in summary, summary
    assert set(_outcomes(settings, [sha])) == {"accepted"}
