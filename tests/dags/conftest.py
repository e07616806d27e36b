"""Fixtures for the DAG tests: the dbt manifest Cosmos renders from, and the DAG folder as data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dagcheck import probe

from hrss_warehouse.config import DAGS_DIR, DBT_PROJECT_DIR, PROJECT_ROOT

# Tests here import airflow.sdk in-process: keep Airflow's home inside the test home, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("HRSS_TEST_HOME", PROJECT_ROOT / ".hrss-test"))
                                          .resolve() / "airflow"))


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The manifest `make install` writes with `dbt parse`; parsed here when a checkout lacks it."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        if not (DBT_PROJECT_DIR / "dbt_project.yml").exists():
            pytest.skip("dbt_project/ is not there yet: the DAGs render their dbt tasks from its manifest")
        from hrss_warehouse.stages import transform

        transform.parse()
    return manifest


@pytest.fixture(scope="session")
def dag_report(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every DAG of dags/ described as data (one subprocess for the whole folder)."""
    return probe(tmp_path_factory.mktemp("dagbag"), "describe", str(DAGS_DIR))
