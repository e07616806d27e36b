"""Fault-injection helpers: real ingests in subprocesses, killed or starved on purpose, then checked.

Size: the quick variant (part of `make test`) uses a few counties of one generated province; with
HRSS_SOAK=full (`make soak`) the tests use whole provinces, two survey years and several crash points.
The generated returns are deterministic for a seed, so they are written once and kept in pytest's
cache folder (keyed by the generator's source), which saves the ~20 s the generator needs on reruns.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest

from hrss_warehouse.config import LOADER, PROJECT_ROOT, SPEC_DIR, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.files import parse_file_name, sha256_of, stored_file
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import load
from hrss_warehouse.stages.parse import parse_file

FULL = os.environ.get("HRSS_SOAK", "").lower() == "full"
PROVINCE, SEED = "50", 5
YEARS = [2016, 2017] if FULL else [2017]
FIXTURE_WORKBOOK = PROJECT_ROOT / "tests" / "fixtures" / "pass" / "good" / "150206_2017.xlsx"
CHILD_TIMEOUT_S = 600 if FULL else 180
# What a run killed by a warehouse restart may say: psycopg's words for a lost server, or ours.
LOST_SERVER = ("terminating connection due to administrator command", "server closed the connection",
               "connection is lost", "consuming input failed", "cannot connect to the warehouse",
               "unexpected postmaster exit", "the connection is closed")

# The child: a whole ingest of a landing folder, or (--load) the load stage alone over checked batches,
# as the DAG's load task runs it. The log (lock waits) goes to stderr, the totals to stdout.
_CHILD = """
import json, logging, sys
from pathlib import Path
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
from hrss_warehouse.config import Settings
settings = Settings.from_env()
if sys.argv[1] == "--load":
    from hrss_warehouse.stages import load
    totals = {"rows": 0}
    for result in json.loads(Path(sys.argv[2]).read_text()):
        totals["rows"] += load.load_batch(settings, result)["rows"]
else:
    from hrss_warehouse import pipeline
    totals = pipeline.ingest_folder(settings, Path(sys.argv[1]))
    totals.pop("submission_ids")
print(json.dumps(totals))
"""


@dataclass
class Returns:
    """Generated returns: their folder and, per file name, the manifest entry (expected outcome)."""

    folder: Path
    files: dict[str, dict]

    def counties(self) -> list[str]:
        return sorted({entry["county"] for entry in self.files.values()})

    def of_counties(self, counties: list[str]) -> list[str]:
        return sorted(name for name, entry in self.files.items() if entry["county"] in counties)

    def pick(self, count: int, offset: int) -> list[str]:
        """Files of ``count`` counties from ``offset`` on, plus one county with a quarantined file."""
        counties = self.counties()
        chosen = counties[offset:offset + count]
        bad = sorted({e["county"] for e in self.files.values()
                      if e["outcome"] == "quarantined"} - set(chosen))
        return self.of_counties([*chosen, *bad[offset % len(bad):][:1]])


def _generator_key() -> str:
    digest = hashlib.sha256()
    from hrss_tools import calibration, generate

    for path in [Path(generate.__file__), Path(calibration.__file__), *sorted(SPEC_DIR.glob("*.yaml"))]:
        digest.update(path.read_bytes())
    digest.update(json.dumps([PROVINCE, YEARS, SEED]).encode())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def returns(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Returns:
    from hrss_tools import generate

    cache = getattr(request.config, "cache", None)
    base = cache.mkdir("hrss-soak") if cache is not None else tmp_path_factory.mktemp("hrss-soak")
    folder = base / f"returns-{_generator_key()}"
    manifest = folder.with_name(folder.name + ".manifest.json")
    if not manifest.exists():
        for stale in base.glob("returns-*"):
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink()
        generate.generate(folder, provinces=[PROVINCE], years=YEARS, bad_share=0.1, seed=SEED, progress=False)
    entries = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    return Returns(folder, {entry["file"]: entry for entry in entries})


def land(returns: Returns, names: list[str], landing: Path) -> dict[str, str]:
    """Copy returns into a landing folder (mtimes kept); returns name -> sha256 of what was landed."""
    landing.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(returns.folder / name, landing / name)
    return {path.name: sha256_of(path) for path in landing.iterdir()}


def land_fixture_workbook(landing: Path) -> str:
    """The hand-written fixture return of county 150206 (a batch of its own, province 15), made unique
    with a zip comment so that no earlier test has registered the same bytes."""
    target = landing / FIXTURE_WORKBOOK.name
    shutil.copy2(FIXTURE_WORKBOOK, target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.comment = f"soak {uuid.uuid4()}".encode()
    return target.name


@dataclass
class Ingest:
    """An ingest running in a subprocess; its stderr goes to a file the test can read meanwhile."""

    proc: subprocess.Popen
    stderr_path: Path
    stdout_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait(self, timeout: float = CHILD_TIMEOUT_S) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the ingest did not finish in {timeout:.0f} s (a hang):\n{self.stderr()[-3000:]}")

    def kill(self) -> None:
        """kill -9, as the OOM killer or a lost node would."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def ports(self) -> set[int]:
        """The local TCP ports of the child's connections (pg_stat_activity.client_port)."""
        try:
            return {c.laddr.port for c in psutil.Process(self.pid).net_connections(kind="tcp")}
        except psutil.NoSuchProcess:
            return set()


def child_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRSS_")}
    # one county per check batch, so a test can stop a run between two batches
    env.update(HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port), HRSS_BATCH_SUBMISSIONS="1",
               **extra)
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    return env


def start_ingest(settings: Settings, landing: Path, logs: Path, *, pause_after_rows: int | None = None,
                 load_only: bool = False, sequential: bool = False) -> Ingest:
    """Start an ingest of ``landing`` in a subprocess (with the fault hook after ``pause_after_rows``).

    ``load_only``: register and check here (warm imports: no GX start-up in the child) and leave the
    child the load stage alone, as the DAG runs it in a task process of its own. ``sequential``: one
    check process, so a batch is checked only after the one before it loaded.
    """
    extra = {load.FAULT_ENV: str(pause_after_rows)} if pause_after_rows else {}
    if sequential:
        extra["HRSS_CHECK_WORKERS"] = "1"
    logs.mkdir(parents=True, exist_ok=True)
    tag = uuid.uuid4().hex[:8]
    args = [str(landing)]
    if load_only:
        from hrss_warehouse import check
        from hrss_warehouse.stages import land as landing_stage
        from hrss_warehouse.stages import register

        batches = register.register_files(settings, landing_stage.scan(settings, landing, min_age_s=0))
        checked = logs / f"checked-{tag}.json"
        checked.write_text(json.dumps([check.parse_and_check_batch(settings, b) for b in batches]))
        args = ["--load", str(checked)]
    out, err = logs / f"ingest-{tag}.out", logs / f"ingest-{tag}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, *args],
                                env=child_env(settings, **extra), stdout=stdout, stderr=stderr,
                                cwd=settings.home)
    return Ingest(proc, err, out)


def rerun(settings: Settings, landing: Path) -> dict:
    """The rerun after a fault, in this process (its imports are warm): it must complete."""
    from hrss_warehouse import pipeline

    assert load.FAULT_ENV not in os.environ
    return pipeline.ingest_folder(settings, landing)


def wait_for(what: str, predicate: Callable[[], object], timeout: float, *, child: Ingest | None = None,
             every: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if child is not None and child.proc.poll() is not None:
            pytest.fail(f"the ingest exited ({child.proc.returncode}) before {what}:\n"
                        f"{child.stderr()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def pause_marker(settings: Settings) -> Path:
    """Where the loader's fault hook says it has paused mid-COPY (see load._copy_rows)."""
    return settings.home / "work" / "load_paused"


def active_copies(settings: Settings) -> list[tuple[int, int, str, str]]:
    """(backend pid, client port, state, query) of every COPY in progress in the warehouse."""
    with psycopg.connect(settings.dsn(), autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, client_port, state, query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND state = 'active' AND query ILIKE 'COPY %%'").fetchall()


def backends_of(settings: Settings, child: Ingest) -> list[tuple[int, str, str]]:
    """(pid, application_name, query) of the warehouse sessions the child has open."""
    ports = child.ports()
    if not ports:
        return []
    with psycopg.connect(settings.dsn(), autocommit=True) as conn:
        return conn.execute("SELECT pid, application_name, query FROM pg_stat_activity "
                            "WHERE client_port = ANY(%s)", (sorted(ports),)).fetchall()


def wait_gone(settings: Settings, pids: list[int], timeout: float = 30) -> None:
    """Until PostgreSQL has ended the given backends (a killed client's COPY is rolled back then)."""
    def gone() -> bool:
        with psycopg.connect(settings.dsn(), autocommit=True) as conn:
            return not conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                                    (pids,)).fetchone()[0]
    wait_for(f"backends {pids} to end", gone, timeout)


def pending(settings: Settings) -> int:
    with connect(settings, role=LOADER) as conn:
        return conn.execute("SELECT count(*) FROM raw.submission WHERE outcome = 'pending'").fetchone()[0]


def assert_no_half_loaded(settings: Settings) -> None:
    """Every raw row belongs to a submission whose outcome is final and accepted."""
    spec = load_spec()
    with connect(settings, role=LOADER) as conn:
        for form in spec.form_codes:
            table = spec.raw_table(form)
            stray = conn.execute(
                f"SELECT count(*), array_agg(DISTINCT r.submission_id) FROM raw.{table} r "
                "LEFT JOIN raw.submission s USING (submission_id) "
                "WHERE s.outcome IS DISTINCT FROM 'accepted'").fetchone()
            assert stray[0] == 0, f"raw.{table} holds rows of unfinished submissions {stray[1]}"


def assert_intact(settings: Settings, received: dict[str, str], expected: dict[str, str], *,
                  landing: Path, final: bool = True) -> dict[str, int]:
    """The crash-safety invariants over everything received so far.

    No file lost: every landed file (name -> sha256) left the landing folder, has a receipt and a
    submission, and is stored, intact, in archive/ or quarantine/ as its outcome says. With ``final``:
    no submission is pending, each file got its expected outcome, and every accepted submission holds
    exactly the rows the parser reads from its stored file (none of a quarantined one).
    Returns counts for the report.
    """
    spec = load_spec()
    assert not [p.name for p in landing.iterdir()], "files left in the landing folder"
    assert_no_half_loaded(settings)
    with connect(settings, role=LOADER) as conn:
        subs = conn.execute("SELECT submission_id, sha256, file_name, form, outcome, archived_path "
                            "FROM raw.submission").fetchall()
        receipts = {row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM raw.receipt")}
        loaded: dict[int, tuple[int, int]] = {}
        for form in spec.form_codes:
            for sid, rows, distinct in conn.execute(
                    "SELECT submission_id, count(*), count(DISTINCT source_row) "
                    f"FROM raw.{spec.raw_table(form)} GROUP BY submission_id"):
                loaded[sid] = (rows, distinct)
    by_sha: dict[str, list[tuple]] = {}
    for row in subs:
        by_sha.setdefault(row[1], []).append(row)
    for name, sha in received.items():
        assert sha in receipts, f"{name}: no raw.receipt"
        assert sha in by_sha, f"{name}: no raw.submission"
        for _, _, _, _, outcome, archived in by_sha[sha]:
            stored = stored_file(settings, archived)
            assert stored.is_file() and sha256_of(stored) == sha, f"{name}: {stored} lost or changed"
            folder = settings.quarantine_dir if outcome == "quarantined" else settings.archive_dir
            assert stored.is_relative_to(folder), f"{name} ({outcome}) is stored at {stored}"
            if final:
                assert outcome == expected[name], f"{name}: {outcome}, expected {expected[name]}"
    if not final:
        return {}
    assert not [row for row in subs if row[4] == "pending"], "submissions left pending"
    parsed: dict[str, object] = {}
    rows_total = 0
    for sid, sha, file_name, form, outcome, archived in subs:
        rows, distinct = loaded.get(sid, (0, 0))
        if outcome != "accepted":
            assert rows == 0, f"quarantined submission {sid} ({file_name}) has {rows} raw rows"
            continue
        if sha not in parsed:
            parsed[sha] = parse_file(stored_file(settings, archived), parse_file_name(file_name), file_name)
        expected_rows = len(parsed[sha].forms[form].cells)
        assert rows == distinct == expected_rows, (
            f"submission {sid} ({file_name} {form}) has {rows} raw rows ({distinct} distinct), "
            f"its file {expected_rows}")
        rows_total += rows
    return {"files": len(received), "submissions": len(subs), "rows": rows_total}


def postmaster_pid(settings: Settings) -> int:
    return int((settings.pgdata / "postmaster.pid").read_text().splitlines()[0])
