"""jcpt_reprocess: re-run one survey year's archived returns through today's rules and mappings."""

from __future__ import annotations

from airflow.sdk import CronDataIntervalTimetable, Param, chain, dag, task

from hrss_warehouse.airflow import orchestration as orc
from hrss_warehouse.airflow import tasks
from hrss_warehouse.config import TIMEZONE, WAREHOUSE_LOAD_POOL

DOC = """
### Reprocess a survey year

The run whose data interval starts on 1 January of year *Y* reprocesses survey year *Y*: the archived
submissions of that year are re-parsed and re-checked with today's rules and mappings, reloaded, and
the marts rebuilt and published. To reprocess a range of years, open **Trigger → Backfill** and pick
the dates (e.g. 2015-01-01 to 2016-12-31 for survey years 2015 and 2016).

Params: `counties` limits the run to some county codes; `dry_run` reports what would change and
changes nothing. When no submission's outcome or rows changed (a dry run, a year without archived
submissions, a second reprocessing), the dbt build and publish are skipped: the run succeeds and
changes nothing.
"""


@dag(
    dag_id="jcpt_reprocess",
    schedule=CronDataIntervalTimetable("0 0 1 1 *", timezone=TIMEZONE),
    start_date=orc.START_DATE,
    catchup=False,
    max_active_runs=1,
    **orc.alerting(),
    tags=[*orc.TAGS, "reprocess"],
    doc_md=DOC,
    params={
        "counties": Param(None, type=["null", "array"], items={"type": "string"},
                          description="6-digit county codes to reprocess; empty means every county"),
        "dry_run": Param(False, type="boolean", description="Report what would change, change nothing"),
    },
)
def jcpt_reprocess():
    @task(pool=WAREHOUSE_LOAD_POOL)
    def reprocess(data_interval_start=None, params: dict | None = None) -> dict:
        year = tasks.survey_year_of(data_interval_start)
        return tasks.reprocess(year, params["counties"], params["dry_run"])

    @task.short_circuit
    def changes_made(result: dict) -> bool:
        return tasks.rebuild_wanted(result)

    @task
    def prepare_build() -> None:
        tasks.prepare_build()

    @task(outlets=orc.mart_assets())
    def publish() -> dict:
        return tasks.publish()

    dbt_build = orc.dbt_build_group()
    chain(changes_made(reprocess()), prepare_build(), dbt_build, publish())


jcpt_reprocess()
