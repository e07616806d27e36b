"""End to end: `hrss run` drives jcpt_nightly through Airflow's own dag.test() over fixture files,
against the test warehouse: files accepted and quarantined, marts published, Asset events recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from hrss_warehouse.config import AIRFLOW_DB, PROJECT_ROOT, Settings

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"


def _hrss(settings: Settings, *args: str, timeout: float = 1200,
          **extra_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port), **extra_env)
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    return subprocess.run([str(Path(sys.executable).with_name("hrss")), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=settings.home)


def _unique_copy(source: Path, target: Path) -> None:
    """Copy a fixture workbook with a new zip comment: same content, new checksum, so that no test
    earlier in the session has registered these bytes already (a re-send would be recognised)."""
    shutil.copy(source, target)
    with zipfile.ZipFile(target, "a") as archive:
        archive.comment = f"hrss test {uuid.uuid4()}".encode()


def _last_submission_id(settings: Settings) -> int:
    from hrss_warehouse.db import connect

    with connect(settings) as conn:
        if conn.execute("SELECT to_regclass('raw.submission')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT coalesce(max(submission_id), 0) FROM raw.submission").fetchone()[0]


def test_missing_landing_folder_is_named(settings: Settings, tmp_path: Path) -> None:
    result = _hrss(settings, "run", "--landing", str(tmp_path / "nowhere"), timeout=120)
    assert result.returncode == 2
    assert "nowhere: no such folder" in result.stderr


@pytest.mark.slow
def test_hrss_run_over_an_empty_landing_folder(settings: Settings, dbt_manifest: Path,
                                                tmp_path: Path) -> None:
    """The quick variant: the real dag.test() path, nothing to load, every later task skipped; the
    entries left in landing are counted and named in the summary."""
    landing = tmp_path / "empty"
    landing.mkdir()
    (landing / ".~lock.150206_2017.xlsx#").write_bytes(b"LibreOffice")
    (landing / "~$150206_2017.xlsx").write_bytes(b"Excel")
    (landing / "150206_2017.xlsx").symlink_to(FIXTURES / "pass" / "good" / "150206_2017.xlsx")
    result = _hrss(settings, "run", "--landing", str(landing), timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    summary = result.stdout[result.stdout.rfind("jcpt_nightly run "):]
    assert ": success in " in summary and "files found: 0, left in landing: 3" in summary
    for name, reason in ((".~lock.150206_2017.xlsx#", "lock file"), ("~$150206_2017.xlsx", "lock file"),
                         ("150206_2017.xlsx", "symbolic link, never followed")):
        assert f"left {landing / name}: {reason}" in summary
    assert len(list(landing.iterdir())) == 3
    assert "marts not published" in summary


@pytest.mark.slow
def test_a_failed_task_fails_hrss_run_and_its_summary_names_it(settings: Settings, dbt_manifest: Path,
                                                               tmp_path: Path) -> None:
    """The run's summary task (a teardown after every task) records a failed register and the tasks it
    stopped, and leaves the run failed: `hrss run` exits 1. The disk fills at the first archive write
    (the fault hook of register), so nothing is loaded and the file stays in landing."""
    landing = tmp_path / "full-disk"
    landing.mkdir()
    _unique_copy(FIXTURES / "pass" / "good" / "150206_2017.xlsx", landing / "150206_2017.xlsx")
    result = _hrss(settings, "run", "--landing", str(landing), timeout=600, HRSS_FAULT_ENOSPC_AFTER_BYTES="0")
    summary = result.stdout[result.stdout.rfind("jcpt_nightly run "):]
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-4000:]
    assert ": failed in " in summary and " upstream_failed" in summary, summary
    assert "failed tasks: register (their logs are above)" in summary, summary
    assert "marts not published" in summary
    assert [p.name for p in landing.iterdir()] == ["150206_2017.xlsx"]


@pytest.mark.soak
def test_hrss_run_loads_fixture_files(settings: Settings, dbt_manifest: Path,
                                      tmp_path: Path) -> None:
    from hrss_warehouse.db import connect
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    landing = tmp_path / "landing"
    landing.mkdir()
    _unique_copy(FIXTURES / "pass" / "good" / "150206_2017.xlsx", landing / "150206_2017.xlsx")
    # A later revision breaking C05: quarantined with its rule id.
    _unique_copy(FIXTURES / "fail" / "C05" / "150206_2017.xlsx", landing / "150206_2017_r2.xlsx")
    before = _last_submission_id(settings)

    started = time.monotonic()
    result = _hrss(settings, "run", "--landing", str(landing))
    seconds = time.monotonic() - started
    summary = result.stdout[result.stdout.rfind("jcpt_nightly run "):]
    print(f"\nhrss run (dag.test) took {seconds:.0f} s\n{summary}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert ": success in " in summary
    assert "files found: 2" in summary
    assert "quarantined 150206_2017_r2.xlsx" in summary and "C05" in summary
    assert "marts published" in summary
    assert not list(landing.iterdir()), "the landing folder must be emptied (archive or quarantine)"

    with connect(settings) as conn:
        outcomes = conn.execute("SELECT file_name, outcome, failed_rules, in_force"
                                " FROM marts.mart_submissions WHERE submission_id > %s"
                                " ORDER BY file_name, form", (before,)).fetchall()
    assert {(name, outcome) for name, outcome, _, _ in outcomes} == {
        ("150206_2017.xlsx", "accepted"), ("150206_2017_r2.xlsx", "quarantined")}
    assert all("C05" in failed for name, _, failed, _ in outcomes if name.endswith("_r2.xlsx"))

    # publish emitted an event for every mart Asset.
    with connect(settings, database=AIRFLOW_DB) as conn:
        events = conn.execute(
            "SELECT count(DISTINCT a.uri) FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.uri LIKE 'postgres://hrss-warehouse:5432/hrss/marts/%%'").fetchone()[0]
    from hrss_warehouse.airflow.orchestration import published_marts

    assert events == len(published_marts())

    # OpenLineage (file transport): this run's events chain the landed file to the published mart
    # through raw.*, the one dbt build (Cosmos' producer task: every model it read and wrote) and the
    # build schema.
    from lineage_chain import chain, edges, run_events

    from hrss_warehouse.local.airflow_env import lineage_file

    run_id = summary.split()[2].rstrip(":")
    events = run_events(lineage_file(settings), run_id)
    graph = edges(events)
    database = settings.conn_params()["dbname"]
    build = [e for e in events if e["job"]["name"].endswith("dbt_build.dbt_producer_watcher")]
    assert len(build) == 1, [e["job"]["name"] for e in events]
    written = {o["name"] for o in build[0]["outputs"]}
    assert f"{database}.marts_build.mart_coverage" in written and any(".staging." in n for n in written)
    assert f"{database}.raw.submission" in {i["name"] for i in build[0]["inputs"]}
    landed = next(node for node in graph if node[1].endswith("/150206_2017.xlsx"))
    built = chain(graph, landed, f"{database}.marts_build.mart_coverage")
    assert built is not None, sorted(graph)
    # publish swaps every built mart at once: its event leads each built mart to each published one
    published = [node for node in graph[built[-1]] if node[1] == f"{database}.marts.mart_coverage"]
    assert published, graph[built[-1]]
    names = [name for _, name in [*built, published[0]]]
    print("lineage chain:", " -> ".join(names))
    assert names[1] == f"{database}.raw.submission", names
