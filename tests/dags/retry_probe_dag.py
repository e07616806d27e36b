"""A two-task DAG with the project's default_args, run by retry_run.py: one task fails validation, one
meets a warehouse that blinks once. Each attempt leaves a mark in $HRSS_RETRY_PROBE_DIR."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from airflow.sdk import dag, task

from hrss_warehouse.airflow import orchestration as orc


def _attempt(name: str) -> int:
    path = Path(os.environ["HRSS_RETRY_PROBE_DIR"]) / name
    path.write_text(path.read_text() + "x" if path.exists() else "x")
    return len(path.read_text())


@dag(dag_id="hrss_retry_policy_probe", schedule=None, catchup=False,
     default_args={**orc.default_args(), "retry_delay": timedelta(0), "retry_exponential_backoff": 0})
def hrss_retry_policy_probe():
    @task
    def validation_failure() -> None:
        _attempt("validation_failure")
        raise ValueError("S03: header row does not match JCPT-2 v2017")

    @task
    def warehouse_blinks_once() -> str:
        import psycopg

        if _attempt("warehouse_blinks_once") == 1:
            # A real connection failure: nothing listens on port 1 of the loopback.
            psycopg.connect("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2")
        return "loaded"

    validation_failure()
    warehouse_blinks_once()


hrss_retry_policy_probe()
