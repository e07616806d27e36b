"""reference_divisions: load the NBS division registry into the warehouse."""

from __future__ import annotations

from airflow.sdk import dag, task

from hrss_warehouse.airflow import orchestration as orc
from hrss_warehouse.airflow import tasks

DOC = """
### Division registry

Loads the NBS statistical division registry (every edition the package ships) into
`reference.division`, which the checks (R01) and `dim_region` read. Idempotent. The nightly
load needs no run of it: it loads the committed registry itself on first use and whenever the
committed file changes (`reference.registry_version` records which one is loaded).
"""


@dag(
    dag_id="reference_divisions",
    schedule=None,
    start_date=orc.START_DATE,
    catchup=False,
    max_active_runs=1,
    **orc.alerting(),
    tags=[*orc.TAGS, "reference"],
    doc_md=DOC,
)
def reference_divisions():
    @task(outlets=[orc.division_asset()])
    def load_divisions() -> int:
        return tasks.load_divisions()

    load_divisions()


reference_divisions()
