"""Airflow for real, after a rule change: returns of survey years 2015 and 2017 quarantined by rule C06
(hard), then the office makes C06 soft in its copy of the contract (HRSS_SPEC_DIR) and starts Airflow
(api-server, scheduler, dag-processor, triggerer); a backfill of jcpt_reprocess over 2015..2017 created
through the REST API the UI's backfill dialog calls (POST /api/v2/backfills) flips those returns to
accepted, rebuilds and publishes the marts, and BI sees the flipped outcomes; then `stop` leaves no
process behind."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
import urllib.request
import uuid
import zipfile
from datetime import datetime
from pathlib import Path

import psutil
import psycopg
import pytest
from spec_edit import spec_with_severity

from hrss_warehouse.config import PROJECT_ROOT, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.local import airflow_env
from hrss_warehouse.spec import load_spec

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
API_PORT = 55496  # away from the default 8080 that a developer's own Airflow may hold
WAIT_S = 4800  # two Cosmos dbt builds of ~60 tasks each: 40+ min on a busy shared 2-core machine
FLIPPED_RULE = "C06"
GOOD_2017 = "150206_2017.xlsx"
C06_2017 = "150206_2017_r2.xlsx"  # a corrected revision of the good return, quarantined by C06
C06_2015 = "150206_2015.xlsx"

pytestmark = pytest.mark.soak


class Api:
    def __init__(self, base: str, settings: Settings) -> None:
        self.base = base
        body = {"username": airflow_env.ADMIN_LOGIN, "password": airflow_env.admin_password(settings)}
        self.token = self._call("POST", "/auth/token", body, auth=False)["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None, auth: bool = True) -> dict:
        request = urllib.request.Request(self.base + path, method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")

    def get(self, path: str) -> dict:
        return self._call("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self._call("POST", path, body)

    def patch(self, path: str, body: dict) -> dict:
        return self._call("PATCH", path, body)


def _land(source: Path, landing: Path, name: str) -> None:
    # A new zip comment: same return, new checksum, so it is not a re-send of an earlier test's copy.
    shutil.copy(source, landing / name)
    with zipfile.ZipFile(landing / name, "a") as archive:
        archive.comment = f"hrss backfill test {uuid.uuid4()}".encode()


def _submissions_by_file(settings: Settings) -> dict[str, list[int]]:
    with connect(settings) as conn:
        rows = conn.execute("SELECT file_name, submission_id, outcome, failed_rules"
                            " FROM raw.submission").fetchall()
    by_file: dict[str, list[int]] = {}
    for name, sid, outcome, failed in rows:
        by_file.setdefault(name, []).append(sid)
        expected = ("accepted", []) if name == GOOD_2017 else ("quarantined", [FLIPPED_RULE])
        assert (outcome, list(failed)) == expected, (name, sid, outcome, failed)
    return by_file


def _xcom(api: Api, run_id: str, task_id: str) -> dict:
    xcom = api.get(f"/api/v2/dags/jcpt_reprocess/dagRuns/{run_id}/taskInstances/{task_id}"
                   "/xcomEntries/return_value")
    return xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])


def _task_states(api: Api, run_id: str) -> dict[str, str]:
    listing = api.get(f"/api/v2/dags/jcpt_reprocess/dagRuns/{run_id}/taskInstances?limit=100")
    assert listing["total_entries"] <= 100, "more task instances than one page: raise the limit"
    return {ti["task_id"]: ti["state"] for ti in listing["task_instances"]}


def _check_runs(api: Api, files: dict[str, list[int]]) -> dict[int, dict]:
    """The backfill's three runs, each reprocessing its year; returns the publish results by year."""
    runs = api.get("/api/v2/dags/jcpt_reprocess/dagRuns?run_type=backfill")["dag_runs"]
    failed = {r["dag_run_id"]: sorted(t for t, s in _task_states(api, r["dag_run_id"]).items()
                                      if s not in ("success", "skipped"))
              for r in runs if r["state"] != "success"}
    assert len(runs) == 3 and not failed, f"backfill runs not successful, with these tasks: {failed}"
    done, states, published = {}, {}, {}
    for run in runs:
        value = _xcom(api, run["dag_run_id"], "reprocess")
        year = value["survey_year"]
        done[year] = value
        states[year] = _task_states(api, run["dag_run_id"])
        if states[year].get("publish") == "success":
            published[year] = _xcom(api, run["dag_run_id"], "publish")
    assert sorted(done) == [2015, 2016, 2017]

    # 2016: no returns that year; the run succeeds, changes nothing and skips the rebuild.
    assert done[2016]["submissions"] == 0 and done[2016]["changed"] == []
    rebuild = {t: s for t, s in states[2016].items() if t not in ("reprocess", "changes_made")}
    assert rebuild and set(rebuild.values()) == {"skipped"}, states[2016]
    # 2015 and 2017: exactly the C06 returns flipped, quarantined -> accepted; the good one unchanged.
    for year, name in ((2015, C06_2015), (2017, C06_2017)):
        stored = files[name] + (files[GOOD_2017] if year == 2017 else [])
        assert done[year]["submissions"] == len(stored)
        changed = {c["submission_id"]: c for c in done[year]["changed"]}
        assert sorted(changed) == sorted(files[name]), done[year]
        for change in changed.values():
            assert change["before"]["outcome"] == "quarantined"
            assert change["before"]["failed_rules"] == [FLIPPED_RULE]
            assert change["after"]["outcome"] == "accepted" and change["after"]["failed_rules"] == []
        # The rebuild ran: every dbt task of the Cosmos group, then the publish swap.
        dbt_tasks = {t: s for t, s in states[year].items() if t.startswith("dbt_build.")}
        assert dbt_tasks and set(dbt_tasks.values()) == {"success"}, dbt_tasks
        assert states[year]["prepare_build"] == "success" and year in published, states[year]
    assert not set(files[GOOD_2017]) & {c["submission_id"] for c in done[2017]["changed"]}
    # max_active_runs 1: the runs published in year order, the 2017 build replacing 2015's.
    assert published[2017]["replaced_invocation_id"] == published[2015]["invocation_id"]
    return published


def _check_marts(settings: Settings, files: dict[str, list[int]], published: dict[int, dict]) -> None:
    """What BI sees, as bi_reader, once the backfill is done."""
    # The published marts are the 2017 run's build ...
    with connect(settings) as conn:  # the build's record, which BI may not read
        invocation, built_at = conn.execute(
            "SELECT invocation_id, built_at FROM marts.build_info").fetchone()
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        subs = {r[0]: r[1:] for r in conn.execute(
            "SELECT submission_id, outcome, failed_rules, in_force FROM marts.mart_submissions")}
        flags = dict(conn.execute(
            "SELECT submission_id, array_agg(DISTINCT flag) FROM marts.fct_platform_year,"
            " unnest(quality_flags) AS flag GROUP BY submission_id").fetchall())
    assert invocation == published[2017]["invocation_id"]
    assert built_at == datetime.fromisoformat(published[2017]["built_at"])
    # ... in which the flipped returns are accepted, without failed rules, and in force (the 2017 r2
    # revision now supersedes the good return, itself still accepted), their C06 rows flagged.
    for name in (C06_2015, C06_2017):
        for sid in files[name]:
            assert subs[sid] == ("accepted", [], True), (name, sid, subs[sid])
        assert any(FLIPPED_RULE in flags.get(sid, []) for sid in files[name]), (name, flags)
    for sid in files[GOOD_2017]:
        assert subs[sid] == ("accepted", [], False), (GOOD_2017, sid, subs[sid])


def test_backfill_after_a_rule_change_flips_outcomes_and_publishes(settings: Settings, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from hrss_warehouse import pipeline
    from hrss_warehouse.stages import reference

    # The ingest checks with the shipped contract, in which C06 is hard.
    monkeypatch.delenv("HRSS_SPEC_DIR", raising=False)
    load_spec.cache_clear()
    assert load_spec().rules[FLIPPED_RULE].is_hard
    reference.load_divisions(settings)
    landing = tmp_path / "landing"
    landing.mkdir()
    _land(FIXTURES / "pass" / "good" / GOOD_2017, landing, GOOD_2017)
    pipeline.ingest_folder(settings, landing)
    # Received after the good return, so that once accepted the r2 revision is the one in force.
    _land(FIXTURES / "fail" / "C06" / "150206_2017.xlsx", landing, C06_2017)
    _land(FIXTURES / "fail" / "v2014_C06" / "150206_2015.xlsx", landing, C06_2015)
    pipeline.ingest_folder(settings, landing)
    files = _submissions_by_file(settings)
    assert sorted(files) == sorted([GOOD_2017, C06_2017, C06_2015])

    # The rule change: the office's copy of the contract makes C06 soft. Every Airflow process (and so
    # every task) inherits the variable from this process's environment.
    edited = spec_with_severity(tmp_path / "spec", FLIPPED_RULE, "soft")
    monkeypatch.setenv("HRSS_SPEC_DIR", str(edited))
    load_spec.cache_clear()
    monkeypatch.setenv("HRSS_AIRFLOW_PORT", str(API_PORT))  # for the processes Airflow starts
    settings = dataclasses.replace(settings, airflow_port=API_PORT)
    started = time.monotonic()
    running = airflow_env.start(settings)
    pids = [r.pid for r in running]
    sessions = {os.getsid(pid) for pid in pids}
    try:
        print(f"\nAirflow up in {time.monotonic() - started:.0f} s")
        api = Api(f"http://127.0.0.1:{API_PORT}", settings)
        deadline = time.monotonic() + WAIT_S
        while "jcpt_reprocess" not in {d["dag_id"] for d in api.get("/api/v2/dags")["dags"]}:
            assert time.monotonic() < deadline, "the dag-processor never registered jcpt_reprocess"
            time.sleep(3)
        # The scheduler starts no run of a paused DAG, backfills included (new DAGs start paused).
        api.patch("/api/v2/dags/jcpt_reprocess", {"is_paused": False})
        backfill = api.post("/api/v2/backfills", {
            "dag_id": "jcpt_reprocess", "from_date": "2015-01-01T00:00:00+08:00",
            "to_date": "2017-01-01T00:00:00+08:00", "max_active_runs": 1,
            "reprocess_behavior": "completed", "dag_run_conf": {"dry_run": False}})
        started = time.monotonic()
        while not api.get(f"/api/v2/backfills/{backfill['id']}")["completed_at"]:
            assert time.monotonic() < deadline, "the backfill did not complete in time"
            time.sleep(5)
        print(f"backfill of 3 survey years done in {time.monotonic() - started:.0f} s")
        published = _check_runs(api, files)
    finally:
        stopped = airflow_env.stop(settings)
        load_spec.cache_clear()  # the edited contract must not outlive this test in this process
    assert sorted(stopped) == sorted(airflow_env.COMPONENTS)
    survivors = []
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(proc.pid) in sessions and proc.info["status"] != psutil.STATUS_ZOMBIE:
                survivors.append(proc.info)
    assert not survivors, f"processes survived the stop: {survivors}"

    _check_marts(settings, files, published)
