"""End to end on a warehouse with nothing loaded: the golden corpus (tests/golden/) goes through
`hrss warehouse start` and then either the commands a data engineer types by hand (`hrss ingest folder`,
`hrss dbt build --publish`) or `hrss run` (the nightly DAG through Airflow, one task per dbt model: four
minutes here, so `make soak`), with no `hrss reference load` first, and the marts are published.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from hrss_warehouse.config import PROJECT_ROOT, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.stages import reference

sys.path.insert(0, str(PROJECT_ROOT / "tests" / "golden"))
import write_golden

# golden files with distinct names, so that they can land in one folder together
END_TO_END = ("good_v2017", "good_v2014", "development_zone", "csv_utf8", "csv_utf8_bom", "csv_gb18030",
              "csv_gb18030_v2014_spellings", "hard_S07_shixiaqu", "hard_S02_extension")


def _version_rows(settings: Settings) -> list[tuple]:
    with connect(settings) as conn:
        if conn.execute("SELECT to_regclass('reference.registry_version')").fetchone()[0] is None:
            return []
        return conn.execute("SELECT registry_sha256, loaded_at FROM reference.registry_version").fetchall()


def _hrss(settings: Settings, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port))
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    return subprocess.run([str(Path(sys.executable).with_name("hrss")), *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=settings.home)


def _by_hand(settings: Settings, landing: Path) -> None:
    for command in (("ingest", "folder", "--landing", str(landing)), ("dbt", "build", "--publish")):
        result = _hrss(settings, *command, timeout=900)
        assert result.returncode == 0, (f"hrss {' '.join(command)}: "
                                        f"{result.stdout[-4000:]}{result.stderr[-4000:]}")


def _through_airflow(settings: Settings, landing: Path) -> None:
    result = _hrss(settings, "run", "--landing", str(landing), timeout=1800)
    summary = result.stdout[result.stdout.rfind("jcpt_nightly run "):]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "marts published" in summary, summary


@pytest.mark.parametrize("route", [
    pytest.param(_by_hand, id="by-hand", marks=pytest.mark.slow),
    pytest.param(_through_airflow, id="hrss-run", marks=pytest.mark.soak),
])
def test_a_fresh_warehouse_runs_the_golden_corpus_with_no_reference_load(
        route: Callable[[Settings, Path], None], empty_warehouse: Settings, dbt_manifest: Path,
        tmp_path: Path) -> None:
    settings = empty_warehouse
    assert _version_rows(settings) == []
    started = _hrss(settings, "warehouse", "start", timeout=300)
    assert started.returncode == 0, started.stderr
    cases = {case["id"]: case for case in write_golden.load_cases()}
    returns = write_golden.load_returns()
    landing = tmp_path / "landing"
    landing.mkdir()
    for case_id in END_TO_END:
        made = write_golden.write_case(cases[case_id], returns, tmp_path / "written")
        shutil.move(made, landing / made.name)

    route(settings, landing)
    assert [v for v, _ in _version_rows(settings)] == [reference.registry_sha256()]
    with connect(settings) as conn:
        found = conn.execute("SELECT file_name, outcome, failed_rules FROM marts.mart_submissions").fetchall()
    outcomes: dict[str, set] = {}
    for file_name, outcome, failed in found:
        outcomes.setdefault(file_name, set()).add((outcome, tuple(sorted(failed or []))))
    expected = {write_golden.file_name(cases[c], returns): {(cases[c]["expect"]["outcome"],
                                                            tuple(sorted(cases[c]["expect"]["hard"])))}
                for c in END_TO_END}
    assert outcomes == expected
