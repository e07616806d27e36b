"""Airflow for real: `hrss airflow start` (api-server, scheduler, dag-processor, triggerer), a backfill
of jcpt_reprocess over three survey years created through the REST API the UI's backfill dialog calls
(POST /api/v2/backfills), waited to success, each run reprocessing its own year; then `stop` leaves
no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import psutil
import pytest

from hrss_warehouse import airflow_env
from hrss_warehouse.config import PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
API_PORT = 55496  # away from the default 8080 that a developer's own Airflow may hold
WAIT_S = 900

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


def test_backfill_reprocesses_each_survey_year(settings: Settings, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("land", "register", "check", "load", "report", "pipeline", "reference"):
        pytest.importorskip(f"hrss_warehouse.{name}", reason=f"stage module hrss_warehouse.{name} missing")
    from hrss_warehouse import pipeline, reference

    reference.load_divisions(settings)
    landing = tmp_path / "landing"
    landing.mkdir()
    _land(FIXTURES / "pass" / "good_v2014" / "150206_2015.xlsx", landing, "150206_2015.xlsx")
    _land(FIXTURES / "pass" / "good" / "150206_2017.xlsx", landing, "150206_2017.xlsx")
    pipeline.ingest_folder(settings, landing)

    monkeypatch.setenv("HRSS_AIRFLOW_PORT", str(API_PORT))
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
        runs = api.get("/api/v2/dags/jcpt_reprocess/dagRuns?run_type=backfill")["dag_runs"]
        assert sorted(r["state"] for r in runs) == ["success"] * 3, runs
        done = {}
        for run in runs:
            xcom = api.get(f"/api/v2/dags/jcpt_reprocess/dagRuns/{run['dag_run_id']}"
                           "/taskInstances/reprocess/xcomEntries/return_value")
            value = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
            done[value["survey_year"]] = value
        assert sorted(done) == [2015, 2016, 2017]
        assert done[2016]["submissions"] == 0  # no returns that year: succeeds, changes nothing
        assert done[2015]["submissions"] >= 1 and done[2017]["submissions"] >= 1
        assert all(v["changed"] == [] for v in done.values())  # nothing changed since the load
    finally:
        stopped = airflow_env.stop(settings)
    assert sorted(stopped) == sorted(airflow_env.COMPONENTS)
    survivors = []
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(proc.pid) in sessions and proc.info["status"] != psutil.STATUS_ZOMBIE:
                survivors.append(proc.info)
    assert not survivors, f"processes survived the stop: {survivors}"
