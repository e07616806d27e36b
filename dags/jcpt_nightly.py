"""jcpt_nightly: the nightly load of the JCPT survey returns landed since the last run."""

from __future__ import annotations

from airflow.sdk import CronTriggerTimetable, Param, chain, dag, task, teardown

from hrss_warehouse.airflow import orchestration as orc
from hrss_warehouse.airflow import run_summary, tasks
from hrss_warehouse.config import TIMEZONE, WAREHOUSE_LOAD_POOL

DOC = """
### JCPT nightly load

Files landed in `$HRSS_HOME/landing` (or the `landing` param) are **discovered**, **registered**
(moved to the archive, one submission per file, re-sends recognised by checksum), then **parsed and
checked** in batches (one mapped task per batch, not per file): files that fail a hard rule go to the
quarantine with the rule ids. Accepted rows are **loaded** into `raw`, dbt **builds** the staging,
core and mart models in the build schema in one `dbt build` (the `dbt_producer_watcher` task; each
model's task and its `.test` task then show what the build did to it), **publish** swaps
the tested marts into `marts` (updating the `hrss.marts.*` Assets), and **reports** are written.

Retries happen only on transient database errors; a validation failure fails its task at once.
`hrss run --landing DIR` runs this DAG once through `dag.test()`.
"""


@dag(
    dag_id="jcpt_nightly",
    schedule=CronTriggerTimetable("0 2 * * *", timezone=TIMEZONE),
    start_date=orc.START_DATE,
    catchup=False,
    max_active_runs=1,
    **orc.alerting(),
    deadline=orc.publish_deadline(),
    tags=[*orc.TAGS, "nightly"],
    doc_md=DOC,
    params={"landing": Param("", type="string",
                             description="Folder to load from; empty means $HRSS_HOME/landing"),
            "min_age_s": Param(None, type=["null", "number"], minimum=0,
                               description="Leave files modified more recently in landing; empty means "
                                           "HRSS_LANDING_MIN_AGE_S, else 60 s"),
            "export_sdmx": Param(False, type="boolean",
                                 description="Also write the published figures as SDMX into "
                                             "$HRSS_HOME/exports/")},
)
def jcpt_nightly():
    @task(multiple_outputs=False)  # one XCom: the scan
    def discover(params: dict | None = None) -> dict:
        return tasks.discover(params["landing"], params.get("min_age_s"))

    @task
    def register(scan: dict) -> list[dict]:
        return tasks.register(scan)

    @task
    def parse_and_check(batch: dict) -> dict:
        return tasks.parse_and_check(batch)

    @task(pool=WAREHOUSE_LOAD_POOL)
    def load(batch_result: dict) -> dict:
        return tasks.load(batch_result)

    @task
    def prepare_build() -> None:
        tasks.prepare_build()

    @task(outlets=orc.mart_assets())
    def publish() -> dict:
        return tasks.publish()

    @task
    def reports(batches: list[dict]) -> dict:
        return tasks.reports(batches)

    @task
    def export_sdmx(params: dict | None = None) -> dict:
        return tasks.export_sdmx(params["export_sdmx"])

    @teardown
    @task(task_id=run_summary.TASK_ID)
    def record_run(ti: object = None, dag: object = None) -> str:  # Airflow passes the running task, DAG
        return run_summary.record_run(ti, dag)

    batches = register(discover())
    loaded = load.expand(batch_result=parse_and_check.expand(batch=batches))
    dbt_build = orc.dbt_build_group()
    chain(loaded, prepare_build(), dbt_build, publish(), reports(batches), export_sdmx())
    # last, after every task whatever its state: what `hrss run` prints (airflow/run_summary.py)
    run_summary.after_every_task(record_run())


jcpt_nightly()
