"""Each DAG file parses alone in a fresh interpreter with no warehouse configured: no import errors,
no network or database access, nothing written to $HRSS_HOME, no heavy modules, under 2 seconds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagcheck import DAG_FILES, FORBIDDEN_MODULES, PARSE_BUDGET_S, probe

EXPECTED_DAGS = {"jcpt_nightly.py": ["jcpt_nightly"], "jcpt_reprocess.py": ["jcpt_reprocess"],
                 "reference_divisions.py": ["reference_divisions"]}


def test_every_dag_file_is_expected() -> None:
    assert sorted(p.name for p in DAG_FILES) == sorted(EXPECTED_DAGS)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_alone(dag_file: Path, dbt_manifest: Path, tmp_path: Path) -> None:
    report = probe(tmp_path, "parse", str(dag_file))
    assert report["import_errors"] == {}, report["import_errors"]
    assert report["dag_ids"] == EXPECTED_DAGS[dag_file.name]
    assert report["connections"] == [], "a DAG file opened a network connection at parse time"
    assert not report["home_created"], "a DAG file wrote to $HRSS_HOME at parse time"
    # Imports of pandas, GX, psycopg and dbt belong inside tasks.
    assert report["forbidden_loaded"] == [], f"loaded at parse time: {report['forbidden_loaded']}"
    assert set(FORBIDDEN_MODULES) == {"pandas", "great_expectations", "psycopg", "dbt"}
    print(f"{dag_file.name}: parsed in {report['seconds']:.3f} s ({report['cpu_seconds']:.3f} s CPU)")
    # CPU time is the file's own cost; wall time also pays for whatever else the 2 cores are running.
    assert report["cpu_seconds"] < PARSE_BUDGET_S, f"{dag_file.name}: {report['cpu_seconds']:.2f} s CPU"
    contention = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    assert report["seconds"] < PARSE_BUDGET_S * contention, f"{dag_file.name}: {report['seconds']:.2f} s"
