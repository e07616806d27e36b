"""Helpers for the DAG tests: DAG files parsed in fresh subprocesses (as Airflow's DAG processor
does) with no warehouse configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hrss_warehouse.config import DAGS_DIR, PROJECT_ROOT

DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
FORBIDDEN_MODULES = ("pandas", "great_expectations", "psycopg", "dbt")
PARSE_BUDGET_S = 2.0
PROBE = Path(__file__).with_name("probe.py")


def parse_env(scratch: Path) -> dict[str, str]:
    """An environment with no warehouse and no Airflow database: a DAG file must parse anyway."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HRSS_", "AIRFLOW", "DBT_"))}
    env.update(
        HRSS_HOME=str(scratch / "hrss-home"),  # never created: parsing must not touch it
        AIRFLOW_HOME=str(scratch / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_DIR),
        AIRFLOW__COSMOS__CACHE_DIR=str(scratch / "cosmos"),
        AIRFLOW__COSMOS__ENABLE_TELEMETRY="False",
        TMPDIR=str(scratch),
        PYTHONPATH=str(PROJECT_ROOT / "plugins"),
    )
    return env


def probe(scratch: Path, *args: str) -> dict:
    """Run tests/dags/probe.py in a fresh interpreter and return its JSON report."""
    scratch.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, str(PROBE), *args], env=parse_env(scratch), cwd=scratch,
                            capture_output=True, text=True, timeout=180, check=False)
    if result.returncode != 0:
        pytest.fail(f"probe {args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])
