"""Run metrics and `hrss status`: the rows the stage tasks write to ops.stage_run are published as
marts.mart_pipeline_runs (one row per run and stage, mapped tasks summed, readable by bi_reader), and
`hrss status` shows the warehouse, registry, landing, last run, marts and missing returns on one screen."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import transform_dataset as ds

from hrss_warehouse import ops, publish, transform
from hrss_warehouse.config import Settings
from hrss_warehouse.warehouse import connect

T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # 02:00 Asia/Shanghai
RUN = "scheduled__2026-03-02T18:00:00+00:00"


def _stage(settings: Settings, stage: str, map_index: int, start_s: float, end_s: float,
           outcome: str = "success", **values: int) -> None:
    ops.record(settings, dag_id="jcpt_nightly", run_id=RUN, stage=stage, map_index=map_index, try_number=1,
               started_at=T0 + timedelta(seconds=start_s), finished_at=T0 + timedelta(seconds=end_s),
               outcome=outcome, values=values, error="KeyError: 'C05'" if outcome == "failed" else None)


@pytest.fixture(scope="module")
def published(settings: Settings) -> None:
    _stage(settings, "discover", -1, 0, 1, files_in=3)
    _stage(settings, "register", -1, 1, 3, files_in=3, rows_out=3)
    _stage(settings, "parse_and_check", 0, 3, 10, files_in=2, accepted=2, quarantined=0, rows_in=50,
           rows_out=50)
    # Batch 1 failed once; its retry replaces the failed row.
    _stage(settings, "parse_and_check", 1, 3, 6, outcome="failed")
    _stage(settings, "parse_and_check", 1, 40, 48, files_in=1, accepted=0, quarantined=1, rows_in=20,
           rows_out=0)
    _stage(settings, "dbt_build", -1, 50, 170, dbt_nodes_built=40, dbt_nodes_tested=90)
    with connect(settings) as conn:
        ds.create_inputs(conn)
    transform.build(settings, full_refresh=True)
    publish.publish(settings)


def test_run_metrics_are_published_for_bi(settings: Settings, published: None) -> None:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        rows = conn.execute(
            "SELECT stage, task_count, outcome, seconds, task_seconds, files_in, accepted, quarantined,"
            " rows_in, rows_out, dbt_nodes_built, dbt_nodes_tested FROM mart_pipeline_runs"
            " WHERE dag_id = 'jcpt_nightly' AND run_id = %s ORDER BY started_at, stage", (RUN,)).fetchall()
    d = Decimal
    assert rows == [
        ("discover", 1, "success", d("1.000"), d("1.000"), 3, None, None, None, None, None, None),
        ("register", 1, "success", d("2.000"), d("2.000"), 3, None, None, None, 3, None, None),
        # Two batches: wall clock 3 s .. 48 s, their own seconds 7 + 8.
        ("parse_and_check", 2, "success", d("45.000"), d("15.000"), 3, 2, 1, 70, 50, None, None),
        ("dbt_build", 1, "success", d("120.000"), d("120.000"), None, None, None, None, None, 40, 90),
    ]


def _hrss_status(settings: Settings) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port))
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    return subprocess.run([str(Path(sys.executable).with_name("hrss")), "status"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_hrss_status_shows_one_screen(settings: Settings, published: None) -> None:
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    for name in ("150206_2017.xlsx", "150207_2017.csv", "150208_2017.xlsx.part"):
        (settings.landing_dir / name).write_bytes(b"x")
    try:
        result = _hrss_status(settings)
    finally:
        for entry in settings.landing_dir.iterdir():
            entry.unlink()
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) if not line.startswith("last run") else ("last run", line[8:].strip())
                 for line in result.stdout.splitlines())
    assert lines["warehouse"].startswith("running at")
    assert lines["registry"] == "not loaded"  # reference.registry_version does not exist here
    assert lines["landing"].startswith("2 file(s) waiting")  # the upload in progress is not counted
    assert lines["last run"].startswith("none") or ": " in lines["last run"]
    assert lines["marts"].startswith("published, built ") and "min old)" in lines["marts"]
    # transform_dataset: survey year 2018's reporting counties, one with only a quarantined return.
    assert lines["missing"].startswith("survey year 2018: ")


def test_hrss_status_says_the_warehouse_is_down(settings: Settings, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(tmp_path / "home"), HRSS_PG_PORT=str(settings.port + 7))
    result = subprocess.run([str(Path(sys.executable).with_name("hrss")), "status"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.startswith("warehouse") and "  down: " in result.stdout.splitlines()[0]
    assert "Traceback" not in result.stderr
