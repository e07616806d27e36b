"""The nightly on a distributed executor, for real (issue #20, item 5): `hrss airflow start` with
HRSS_AIRFLOW_EXECUTOR=celery runs Redis (Debian's redis-server), the scheduler, the API server and two
Celery workers; the scheduler runs jcpt_nightly on its own schedule (no dag.test()) over generated
returns. Tasks land on both workers; the worker holding a running parse_and_check is SIGKILLed with
every process it started, as a lost machine would be. The scheduler finds the lost task by its missing
heartbeat (`[scheduler] task_instance_heartbeat_timeout`, short here) and retries it on the surviving
worker; the run ends with the marts published and nothing lost (``soak_helpers.assert_intact``).

Quick (part of `make test`): four counties, one submission per check batch, so that four
parse_and_check tasks run at once on the four slots. Soak (`make soak`): a whole generated province.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

# The generated returns and the no-file-lost invariants of the soak tests (tests/soak/soak_helpers.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "soak"))
from soak_helpers import FULL, Returns, assert_intact, land
from soak_helpers import returns as generated_returns  # noqa: F401  (a fixture)

from hrss_warehouse.config import AIRFLOW_DB, NIGHTLY_DAG_ID, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.local import airflow_env

# A task whose heartbeat stops for this long is failed by the scheduler (and retried); the default,
# 300 s, would only slow the test. Well above the task runners' heartbeat interval of a few seconds.
HEARTBEAT_TIMEOUT_S = 30
QUICK_COUNTIES = 3  # plus one county with a quarantined return (Returns.pick)
FULL_BATCHES = 8  # check batches of the soak's province: parse_and_check tasks for all four slots
RUN_TIMEOUT_S = 7200 if FULL else 3600


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One try of one task instance, from task_instance or task_instance_history."""

    task: str
    try_number: int
    state: str | None
    worker: str | None
    start: datetime | None
    end: datetime | None


@pytest.fixture
def celery(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The project's Airflow in Celery mode on the test ports, short heartbeat timeouts; stopped after."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (Debian package redis-server, `make system-deps`): "
                    "the CeleryExecutor tests need it as their broker")
    from hrss_warehouse.stages import reference

    port = int(os.environ.get("HRSS_TEST_AIRFLOW_PORT", "55497"))
    on_celery = dataclasses.replace(settings, airflow_port=port, airflow_executor="celery",
                                    redis_port=port - 1)
    # For the processes Airflow starts (they read Settings and Airflow's settings from the environment).
    for name, value in {"HRSS_AIRFLOW_PORT": port, "HRSS_AIRFLOW_EXECUTOR": "celery",
                        "HRSS_REDIS_PORT": port - 1, "HRSS_LANDING_MIN_AGE_S": 0,
                        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": HEARTBEAT_TIMEOUT_S,
                        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": 5}.items():
        monkeypatch.setenv(name, str(value))
    reference.load_divisions(settings)
    airflow_env.migrate(on_celery)
    _forget_nightly_runs(on_celery)
    yield on_celery
    airflow_env.stop(on_celery)


def _forget_nightly_runs(settings: Settings) -> None:
    """Delete jcpt_nightly's earlier runs in this test session, so that the scheduler creates the run of
    the latest 02:00 again (catchup is off: it schedules that one tick, once)."""
    with connect(settings, database=AIRFLOW_DB) as conn:
        known = conn.execute("SELECT 1 FROM dag WHERE dag_id = %s", (NIGHTLY_DAG_ID,)).fetchone()
    if known:
        result = subprocess.run([str(Path(sys.executable).with_name("airflow")), "dags", "delete",
                                 NIGHTLY_DAG_ID, "--yes"], env=airflow_env.prepare(settings),
                                capture_output=True, text=True, timeout=300, check=False, cwd=settings.home)
        assert result.returncode == 0, result.stderr[-3000:]


def _unpause_nightly(settings: Settings) -> bool:
    with connect(settings, database=AIRFLOW_DB) as conn:
        found = conn.execute("UPDATE dag SET is_paused = false WHERE dag_id = %s RETURNING dag_id",
                             (NIGHTLY_DAG_ID,)).fetchone()
        conn.commit()
    return found is not None


def _scheduled_run(settings: Settings) -> tuple[str, str] | None:
    with connect(settings, database=AIRFLOW_DB) as conn:
        return conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = %s AND run_type = 'scheduled'"
                            " ORDER BY id DESC LIMIT 1", (NIGHTLY_DAG_ID,)).fetchone()


def _attempts(settings: Settings, run_id: str) -> list[Attempt]:
    """Every try of every task of the run; the worker is the name the hostname callable appended."""
    columns = ("task_id || coalesce(nullif('[' || map_index || ']', '[-1]'), ''), try_number, state, "
               "hostname, start_date, end_date")
    with connect(settings, database=AIRFLOW_DB) as conn:
        rows = conn.execute(f"SELECT {columns} FROM task_instance WHERE dag_id = %s AND run_id = %s "
                            f"UNION ALL SELECT {columns} FROM task_instance_history "
                            "WHERE dag_id = %s AND run_id = %s",
                            (NIGHTLY_DAG_ID, run_id, NIGHTLY_DAG_ID, run_id)).fetchall()
    return [Attempt(task, tries, state, _worker(host), start, end)
            for task, tries, state, host, start, end in rows]


def _worker(hostname: str | None) -> str | None:
    # airflow_env.worker_hostname: "<machine>-<worker name>"
    return hostname.rsplit("-", 1)[-1] if hostname else None


def _heartbeat_timeouts(settings: Settings, run_id: str) -> dict[str, datetime]:
    """When the scheduler declared each task of the run lost (its `heartbeat timeout` audit log entry)."""
    with connect(settings, database=AIRFLOW_DB) as conn:
        rows = conn.execute("SELECT task_id || coalesce(nullif('[' || map_index || ']', '[-1]'), ''), "
                            "min(dttm) FROM log WHERE dag_id = %s AND run_id = %s "
                            "AND event = 'heartbeat timeout' GROUP BY 1",
                            (NIGHTLY_DAG_ID, run_id)).fetchall()
    return dict(rows)


def _wait(what: str, predicate, timeout_s: float, every_s: float = 1.0):
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f} s waiting for {what}"
        time.sleep(every_s)
    return value


def _kill_worker(settings: Settings, worker: str) -> None:
    """SIGKILL the worker and everything it started (its session: the pool, the task supervisors and
    runners), at once, as a lost machine: nothing gets to report, ack or clean up."""
    pid = airflow_env.status(settings)[f"celery-{worker}"]
    assert pid is not None, f"{worker} is not running"
    session = os.getsid(pid)
    doomed = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == session:
                doomed.append(proc)
        except (psutil.Error, ProcessLookupError):
            continue
    for proc in doomed:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(doomed, timeout=30)


def _victim(settings: Settings, run_id: str) -> str | None:
    """A worker holding a running parse_and_check, once every check batch has started (none still
    queued in Redis, where a kill could not lose it)."""
    checks = [a for a in _attempts(settings, run_id) if a.task.startswith("parse_and_check")]
    if not checks or any(a.state in (None, "scheduled", "queued") for a in checks):
        return None
    running = sorted(a.worker for a in checks if a.state == "running" and a.worker)
    return max(running, key=running.count) if running else None


def _run_killing_a_worker(settings: Settings, returns: Returns, names: list[str]) -> None:
    landing = settings.landing_dir
    received = land(returns, names, landing)
    expected = {name: returns.files[name]["outcome"] for name in received}
    started = time.monotonic()
    airflow_env.start(settings)
    up_s = time.monotonic() - started
    # jcpt_nightly alone: unpausing the other DAGs would start their latest missed runs beside it.
    _wait("the dag-processor to register jcpt_nightly", lambda: _unpause_nightly(settings), timeout_s=600)
    run_id, _ = _wait("the scheduler to create jcpt_nightly's scheduled run",
                      lambda: _scheduled_run(settings), timeout_s=600)
    victim = _wait("a parse_and_check running on a worker, all batches started",
                   lambda: _victim(settings, run_id), timeout_s=RUN_TIMEOUT_S, every_s=0.5)
    killed_at = datetime.now(UTC)
    kill_s = time.monotonic() - started
    _kill_worker(settings, victim)
    state = _wait("the run to finish", lambda: (lambda r: r[1] if r and r[1] in ("success", "failed")
                                                 else None)(_scheduled_run(settings)),
                  timeout_s=RUN_TIMEOUT_S, every_s=3)
    total_s = time.monotonic() - started
    attempts = _attempts(settings, run_id)
    survivor = ({w for w in airflow_env.CELERY_WORKERS} - {victim}).pop()
    lost_tasks = sorted({a.task for a in attempts if a.worker == victim and a.start and a.start < killed_at
                         and (a.end is None or a.end > killed_at)})
    timeouts = _heartbeat_timeouts(settings, run_id)

    story = [f"Celery run {run_id}: {state}; Airflow up in {up_s:.0f} s, worker {victim} SIGKILLed "
             f"at {kill_s:.0f} s, run finished at {total_s:.0f} s ({len(received)} files, "
             f"{len(attempts)} task tries)"]
    for task in lost_tasks:
        tries = sorted((a for a in attempts if a.task == task), key=lambda a: a.try_number)
        story.append(f"  {task}: " + "; ".join(
            f"try {a.try_number} on {a.worker} {a.state}"
            + (f", started {(a.start - killed_at).total_seconds():+.0f} s from the kill" if a.start else "")
            for a in tries)
            + (f"; heartbeat timeout declared {(timeouts[task] - killed_at).total_seconds():.0f} s after"
               " the kill" if task in timeouts else "; no heartbeat timeout logged"))
    per_worker = {w: sum(1 for a in attempts if a.worker == w) for w in airflow_env.CELERY_WORKERS}
    story.append(f"  tries per worker: {per_worker}")
    print("\n" + "\n".join(story))

    assert state == "success", "\n".join(story)
    assert all(per_worker.values()), f"tasks did not land on both workers: {per_worker}"
    assert lost_tasks, "the killed worker held no running task"
    for task in lost_tasks:
        final = max((a for a in attempts if a.task == task), key=lambda a: a.try_number)
        assert task in timeouts, f"{task}: the scheduler never declared it lost"
        assert final.state == "success" and final.try_number >= 2 and final.worker == survivor, final
        assert final.start > timeouts[task], final
    assert not [a for a in attempts if a.worker == victim and a.start and a.start > killed_at], \
        "a task started on the killed worker after the kill"

    # Nothing lost: every file archived or quarantined as the generator says, with its receipt and
    # submission, every accepted submission holding exactly the rows its stored file has.
    counts = assert_intact(settings, received, expected, landing=landing)
    with connect(settings) as conn:
        published = dict(conn.execute("SELECT DISTINCT file_name, outcome FROM marts.mart_submissions"))
        statuses = dict(conn.execute("SELECT survey_year::text || '/' || county_code, status "
                                     "FROM marts.mart_return_status WHERE status <> 'missing'"))
    assert published == expected, "marts.mart_submissions differs from the expected outcomes"
    # one row per reporting county of the year's registry edition (survey_spec/marts.md): a file named
    # for a county the registry does not have (S07) is in mart_submissions, not here
    from hrss_warehouse.stages import reference

    years = {returns.files[name]["year"] for name in expected}
    reporting = {year: set(reference.reporting_counties(year)["county_code"]) for year in years}
    wanted: dict[str, str] = {}
    for name, outcome in expected.items():
        year, county = returns.files[name]["year"], returns.files[name]["county"]
        if county not in reporting[year]:
            continue
        key = f"{year}/{county}"
        if wanted.get(key) != "accepted":  # one accepted form puts the county's return in force
            wanted[key] = outcome
    assert statuses == wanted, "marts.mart_return_status differs from the returns landed"
    print(f"  nothing lost: {counts}")


# 7 min 14 s on a quiet machine, most of it Airflow's own work per task on the surviving worker (about
# 100 tasks, the dbt group's sensors in dependency order) and the lost tasks' heartbeat timeout and retry
# delay: the one test of make test that runs the nightly on the scheduler, as production does.
@pytest.mark.slow
def test_the_scheduler_finishes_the_nightly_when_a_celery_worker_is_killed(
        celery: Settings, generated_returns: Returns,  # noqa: F811 (the fixture imported above)
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick variant: four counties, one check batch each, the killed worker's checks retried."""
    monkeypatch.setenv("HRSS_BATCH_SUBMISSIONS", "1")
    _run_killing_a_worker(celery, generated_returns, generated_returns.pick(QUICK_COUNTIES, offset=0))


@pytest.mark.soak
def test_soak_the_scheduler_finishes_a_province_when_a_celery_worker_is_killed(
        celery: Settings, generated_returns: Returns,  # noqa: F811 (the fixture imported above)
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The soak variant: every generated return of a province (two survey years with HRSS_SOAK=full)."""
    names = sorted(generated_returns.files)
    submissions = sum(len(generated_returns.files[name]["forms"]) for name in names)  # one per form
    monkeypatch.setenv("HRSS_BATCH_SUBMISSIONS", str(math.ceil(submissions / FULL_BATCHES)))
    _run_killing_a_worker(celery, generated_returns, names)
