"""The nightly on a distributed executor, for real: `hrss airflow start` with HRSS_AIRFLOW_EXECUTOR=celery
runs Redis (Debian's redis-server), the api-server, scheduler, dag-processor, triggerer and two Celery
workers; the SCHEDULER runs jcpt_nightly (triggered through the REST API, not dag.test()), its tasks land
on both workers, one worker is SIGKILLed (with its task processes) while it runs a batch, and the run
still ends with the marts published and every landed file accounted for. The run is given a publish
deadline of a few seconds, so the DeadlineAlert mails what is still running to a real SMTP server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import lineage_chain
import psutil
import pytest
from smtp_sink import SmtpSink, body
from test_alerts import RECIPIENT, free_port
from test_backfill import Api

from hrss_warehouse import airflow_env, generate
from hrss_warehouse.config import AIRFLOW_DB, Settings
from hrss_warehouse.warehouse import connect

API_PORT = 55486  # away from the default 8080 and from test_backfill's port
DAG_ID = "jcpt_nightly"
# Quick (make test): four counties' workbooks, one batch each; full (make soak): a whole province's
# returns (50 files), batches of three counties.
SIZES = {"quick": (4, 3), "full": (None, 9)}
RETRYABLE = ("parse_and_check", "load")  # stages that retry a killed try (dbt tasks never retry)
HEARTBEAT_TIMEOUT_S = 60
DEADLINE_S = 20
WAIT_S = 3600


@pytest.fixture(scope="module")
def redis() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed: the Celery tests need Debian's redis-server "
                    "(make system-deps)")


def _land(landing: Path, scratch: Path, files: int | None) -> list[str]:
    generated = scratch / "returns"
    generate.generate(generated, ["50"], [2017], seed=3)
    names = sorted(p.name for p in generated.iterdir())
    if files is not None:
        names = [n for n in names if n.endswith("_2017.xlsx")][:files]
    for name in names:
        shutil.copy(generated / name, landing / name)
    return names


def _task_instances(settings: Settings, run_id: str) -> list[dict]:
    with connect(settings, database=AIRFLOW_DB) as conn:
        cur = conn.execute("SELECT task_id, map_index, state, try_number, hostname, start_date, end_date"
                           " FROM task_instance WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id))
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _earlier_tries(settings: Settings, run_id: str) -> list[dict]:
    with connect(settings, database=AIRFLOW_DB) as conn:
        cur = conn.execute("SELECT task_id, map_index, state, try_number, hostname, start_date, end_date"
                           " FROM task_instance_history WHERE dag_id = %s AND run_id = %s", (DAG_ID, run_id))
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _kill_a_worker_mid_batch(settings: Settings, run_id: str,
                             deadline: float) -> tuple[str, list[dict], float]:
    """SIGKILL the process group of the first worker seen running a retryable batch task."""
    while time.monotonic() < deadline:
        for ti in _task_instances(settings, run_id):
            host = ti["hostname"] or ""
            worker = next((w for w in airflow_env.CELERY_WORKERS if host.endswith(f"-{w}")), None)
            if ti["state"] == "running" and ti["task_id"] in RETRYABLE and worker:
                record = airflow_env._recorded(settings, f"celery-{worker}")
                assert record is not None, f"{worker} is not running"
                victims = [t for t in _task_instances(settings, run_id)
                           if t["state"] == "running" and (t["hostname"] or "").endswith(f"-{worker}")]
                os.killpg(record.pid, signal.SIGKILL)  # the worker, its pool and its task processes
                return worker, victims, time.monotonic()
        time.sleep(0.5)
    pytest.fail("no batch task ran on a Celery worker in time")


@pytest.mark.parametrize("size", [pytest.param("quick", marks=pytest.mark.slow),
                                  pytest.param("full", marks=pytest.mark.soak)])
def test_the_scheduler_runs_the_nightly_on_two_celery_workers_and_survives_a_killed_one(
        settings: Settings, redis: None, dbt_manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        size: str) -> None:
    from hrss_warehouse import reference

    files, batch_submissions = SIZES[size]
    reference.load_divisions(settings)
    landing = tmp_path / "landing"
    landing.mkdir()
    landed = _land(landing, tmp_path, files)
    smtp_port = free_port()
    for key, value in {
        "HRSS_AIRFLOW_EXECUTOR": "celery", "HRSS_REDIS_PORT": str(free_port()),
        "HRSS_AIRFLOW_PORT": str(API_PORT), "HRSS_BATCH_SUBMISSIONS": str(batch_submissions),
        "HRSS_ALERT_SMTP": f"127.0.0.1:{smtp_port}", "HRSS_ALERT_TO": RECIPIENT,
        "HRSS_PUBLISH_DEADLINE_S": str(DEADLINE_S),
        # A killed worker's tasks are declared dead after a minute (default 5) and retried elsewhere.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
    }.items():
        monkeypatch.setenv(key, value)

    started = time.monotonic()
    with SmtpSink(smtp_port) as sink:
        running = airflow_env.start(settings, unpause=True)
        sessions = {os.getsid(r.pid) for r in running}
        try:
            assert {r.component for r in running} == {*airflow_env.COMPONENTS, *airflow_env.CELERY_COMPONENTS}
            api = Api(f"http://127.0.0.1:{API_PORT}", settings)
            deadline = time.monotonic() + WAIT_S
            while DAG_ID not in {d["dag_id"] for d in api.get("/api/v2/dags")["dags"]}:
                assert time.monotonic() < deadline, "the dag-processor never registered jcpt_nightly"
                time.sleep(3)
            assert api.get(f"/api/v2/dags/{DAG_ID}")["is_paused"] is False  # `make airflow` unpauses
            run = api.post(f"/api/v2/dags/{DAG_ID}/dagRuns", {
                "logical_date": datetime.now(UTC).isoformat(), "conf": {"landing": str(landing)}})
            run_id = run["dag_run_id"]
            run_started = time.monotonic()
            print(f"\nAirflow (Celery) up and run triggered after {run_started - started:.0f} s")

            killed_worker, victims, killed_at = _kill_a_worker_mid_batch(settings, run_id, deadline)
            print(f"SIGKILLed {killed_worker} at +{killed_at - run_started:.0f} s while it ran "
                  f"{[(v['task_id'], v['map_index'], v['try_number']) for v in victims]}")
            while api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"] not in ("success", "failed"):
                assert time.monotonic() < deadline, "the run did not finish in time"
                time.sleep(5)
            finished = time.monotonic()
            state = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            tis = _task_instances(settings, run_id)
            tries = _earlier_tries(settings, run_id)
            deadline_mails = sink.wait_for(lambda m: "not published by the deadline" in m["Subject"]
                                           and run_id in m["Subject"], 60)
        finally:
            stopped = airflow_env.stop(settings)
    print(f"run {run_id}: {state} in {finished - run_started:.0f} s (whole test so far "
          f"{finished - started:.0f} s)")

    failed = sorted((t["task_id"], t["map_index"]) for t in tis if t["state"] != "success")
    assert state == "success" and not failed, f"run {state}; tasks not successful: {failed}"
    # Tasks landed on both workers.
    hosts = {w for t in [*tis, *tries] for w in airflow_env.CELERY_WORKERS
             if (t["hostname"] or "").endswith(f"-{w}")}
    assert hosts == set(airflow_env.CELERY_WORKERS), hosts
    # Each task the killed worker was running failed there (its heartbeat stopped) and was retried on
    # the surviving worker.
    survivor = next(w for w in airflow_env.CELERY_WORKERS if w != killed_worker)
    killed = [h for h in tries
              if (h["hostname"] or "").endswith(f"-{killed_worker}") and h["state"] == "failed"]
    assert {(v["task_id"], v["map_index"]) for v in victims} <= \
        {(k["task_id"], k["map_index"]) for k in killed}
    for earlier in killed:
        key = (earlier["task_id"], earlier["map_index"])
        final = next(t for t in tis if (t["task_id"], t["map_index"]) == key)
        assert final["try_number"] > earlier["try_number"], final
        assert final["hostname"].endswith(f"-{survivor}"), final
        print(f"  {key[0]}[{key[1]}] try {earlier['try_number']} on {killed_worker}: failed "
              f"{(earlier['end_date'] - earlier['start_date']).total_seconds():.0f} s after it started "
              f"(heartbeat timeout); try {final['try_number']} on {survivor} started "
              f"{(final['start_date'] - earlier['end_date']).total_seconds():.0f} s later and ran "
              f"{(final['end_date'] - final['start_date']).total_seconds():.0f} s")

    # Nothing lost: every landed file left the landing folder and is a registered, stored submission.
    assert not list(landing.iterdir())
    with connect(settings) as conn:
        stored = dict(conn.execute("SELECT file_name, bool_and(outcome IN ('accepted', 'quarantined'))"
                                   " FROM raw.submission GROUP BY file_name").fetchall())
        published = conn.execute("SELECT count(*) FROM marts.mart_submissions").fetchone()[0]
    assert set(landed) <= set(stored) and all(stored[name] for name in landed), stored
    assert published >= len(landed)

    # Lineage: the run's OpenLineage events (the default file transport) chain a landed file through
    # raw.* and the dbt models to the published marts.mart_coverage.
    events = lineage_chain.run_events(airflow_env.lineage_file(settings), run_id)
    graph = lineage_chain.edges(events)
    dbname = settings.conn_params()["dbname"]
    start = ("file", str((landing / landed[0]).resolve()))
    found = lineage_chain.chain(graph, start, f"{dbname}.marts.mart_coverage")
    assert found, f"no chain from {start}; {len(events)} events, datasets: {sorted(graph)[:40]}"
    names = [name for _, name in found]
    print("lineage: " + " -> ".join(names))
    assert f"{dbname}.raw.submission" in names and any(n.startswith(f"{dbname}.raw.jcpt_") for n in names)
    assert any(n.startswith(f"{dbname}.staging.") for n in names)
    assert f"{dbname}.marts_build.mart_coverage" in names

    # The deadline passed while the run was still going: one mail, naming what was still running.
    # (Unpausing also starts the latest missed 02:00 run, over the empty default landing folder: its
    # deadline, 06:00 today, may have passed too, and it has a mail of its own.)
    assert len(deadline_mails) == 1, [m["Subject"] for m in sink.mails]
    text = body(deadline_mails[0])
    assert "still running" in text and "publish" in text, text

    # Stop leaves nothing behind: Redis and both workers included.
    assert set(stopped) >= {"redis", f"celery-{survivor}"}
    survivors = []
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(proc.pid) in sessions and proc.info["status"] != psutil.STATUS_ZOMBIE:
                survivors.append(proc.info)
    assert not survivors, f"processes survived the stop: {survivors}"
