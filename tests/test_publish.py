"""Blue/green publishing: a tested build is swapped into `marts` in one transaction and BI reads it;
two publishes in a row keep bi_reader's access; a build that fails a dbt test publishes nothing and
leaves the previous marts readable. The run metrics of ops.stage_run are published with the marts
(mart_pipeline_runs), and `hrss status` reads the published state (built here once, as it is costly)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import transform_dataset as ds

from hrss_warehouse.config import Settings
from hrss_warehouse.db import connect
from hrss_warehouse.operations import metrics as ops
from hrss_warehouse.stages import publish, transform


def bi_query(settings, query: str) -> list[tuple]:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        return conn.execute(query).fetchall()


def published_build(settings) -> list[tuple]:
    """The invocation id of the published build (its record, which BI may not read)."""
    with connect(settings) as conn:
        return conn.execute("SELECT invocation_id FROM marts.build_info").fetchall()


T0 = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # 02:00 Asia/Shanghai
RUN = "scheduled__2026-03-02T18:00:00+00:00"


def _stage(settings: Settings, stage: str, map_index: int, start_s: float, end_s: float,
           outcome: str = "success", **values: int) -> None:
    ops.record(settings, dag_id="jcpt_nightly", run_id=RUN, stage=stage, map_index=map_index, try_number=1,
               started_at=T0 + timedelta(seconds=start_s), finished_at=T0 + timedelta(seconds=end_s),
               outcome=outcome, values=values, error="KeyError: 'C05'" if outcome == "failed" else None)


@pytest.fixture(scope="module")
def first_publish(settings) -> dict:
    # a nightly run's stage rows, as the stage tasks write them (see tests of mart_pipeline_runs below)
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
    return publish.publish(settings)


def test_publish_swaps_the_build_into_marts(settings, first_publish) -> None:
    assert first_publish["schema"] == "marts" and first_publish["tables"] >= 14
    assert published_build(settings) == [(first_publish["invocation_id"],)]
    assert bi_query(settings, "SELECT count(*) FROM marts.fct_platform_year")[0][0] > 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # yesterday's marts, now the build schema
        bi_query(settings, f"SELECT 1 FROM {transform.BUILD_SCHEMA}.fct_platform_year LIMIT 1")


def test_run_metrics_are_published_for_bi(settings: Settings, first_publish: dict) -> None:
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


def test_hrss_status_shows_one_screen(settings: Settings, first_publish: dict) -> None:
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
    assert "1 left in place: upload in progress" in [line.strip() for line in result.stdout.splitlines()]
    assert lines["last run"].startswith("none") or ": " in lines["last run"]
    assert lines["marts"].startswith("published, built ") and "min old)" in lines["marts"]
    # transform_dataset: survey year 2018's reporting counties, one with only a quarantined return.
    assert lines["missing"].startswith("survey year 2018: ")


def test_publishing_twice_without_a_build_is_refused(settings, first_publish) -> None:
    with pytest.raises(publish.PublishError, match="incomplete or failed a test"):
        publish.publish(settings)


def test_a_failing_test_leaves_yesterdays_marts(settings, first_publish) -> None:
    published = published_build(settings)
    with connect(settings) as conn:  # a flag that is neither 0 nor 1 fails an accepted_values test
        ds.add_submission(conn, (41, "420102", 2018, "JCPT-3", 2, "2019-04-02 10:00+08", "v2017", "accepted",
                                 [], []), [(41, dict(region_code="420102001001", has_platform=7))])
    try:
        with pytest.raises(transform.TransformError, match="accepted_values"):
            transform.build(settings)
        with pytest.raises(publish.PublishError, match="incomplete or failed a test"):
            publish.publish(settings)
        assert published_build(settings) == published
        assert bi_query(settings, "SELECT count(*) FROM mart_coverage")[0][0] > 0
    finally:
        with connect(settings) as conn:
            conn.execute("DELETE FROM raw.jcpt_village_rows WHERE submission_id = 41")
            conn.execute("DELETE FROM raw.submission WHERE submission_id = 41")
            conn.commit()


def test_a_second_publish_keeps_bi_reader_access(settings, first_publish) -> None:
    transform.build(settings)
    second = publish.publish(settings)
    assert second["replaced_invocation_id"] == first_publish["invocation_id"]
    assert published_build(settings) == [(second["invocation_id"],)]
    assert bi_query(settings, "SELECT count(*) FROM mart_return_status")[0][0] == 8
    # column descriptions reach PostgreSQL for BI tools (persist_docs)
    comment = bi_query(settings, "SELECT col_description('marts.mart_coverage'::regclass, 1)")[0][0]
    assert comment and "Survey year" in comment
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi_query(settings, "SELECT 1 FROM core.core_unit_year_rows LIMIT 1")
    for record in transform.BUILD_RECORDS:  # the build's records are published beside the marts, not for BI
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bi_query(settings, f"SELECT 1 FROM marts.{record} LIMIT 1")


def test_docs_describe_the_published_marts(settings, first_publish) -> None:
    index = transform.docs_generate(settings)
    assert index == settings.docs_dir / "dbt" / "index.html" and index.exists()
    catalog = json.loads((index.parent / "catalog.json").read_text())
    published = {node["metadata"]["name"] for node in catalog["nodes"].values()
                 if node["metadata"]["schema"] == "marts"}
    assert {"mart_coverage", "fct_platform_year", "dim_region"} <= published


def test_a_second_publisher_waits_then_says_who_holds_the_lock(settings, first_publish, monkeypatch) -> None:
    from hrss_warehouse import db

    monkeypatch.setattr(publish, "PUBLISH_WAIT_S", 1.0)
    held_by = (r"nothing was published: the warehouse 'publish' lock is held by PostgreSQL backend \d+ "
               r"\(hrss publish lock, pid \d+, connected since ")
    with db.warehouse_lock(settings, "publish"), pytest.raises(publish.PublishError, match=held_by):
        publish.publish(settings)
    assert published_build(settings)  # yesterday's marts stay published
    assert bi_query(settings, "SELECT count(*) FROM mart_coverage")[0][0] > 0


def test_bi_keeps_every_published_mart_while_a_full_build_runs(settings, first_publish) -> None:
    """A build writes only into the build schema: the published marts, views included, stay readable
    by BI between a build and its publish (a full build recreates every upstream relation)."""
    with connect(settings) as conn:
        published = {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'")}
    assert "mart_figure_vintages" in published
    transform.build(settings, full_refresh=True)
    with connect(settings) as conn:
        after_build = {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marts'")}
    assert after_build == published
    assert bi_query(settings, "SELECT count(*) FROM mart_figure_vintages")[0][0] >= 0
    publish.publish(settings)
