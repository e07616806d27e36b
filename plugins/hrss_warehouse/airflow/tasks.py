"""The bodies of the DAGs' tasks: each calls one stage with the settings of the environment and returns
plain data for XCom (``contracts``). Each is a transaction: a rerun gives the same result."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hrss_warehouse.airflow.orchestration import published_marts
from hrss_warehouse.config import TIMEZONE, settings
from hrss_warehouse.contracts import Batch, CheckedBatch, LoadCounts

F = TypeVar("F", bound=Callable[..., Any])


def stage(func: F) -> F:
    """Record a stage's run metrics (``ops.stage_run``) whether it succeeds or fails; whether a failure
    is retried is the retry policy's call (``default_args``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from datetime import UTC, datetime

        from hrss_warehouse.operations import metrics as ops

        started_at = datetime.now(UTC)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            ops.record_task(func.__name__, args, None, started_at, exc)
            raise
        ops.record_task(func.__name__, args, result, started_at, None)
        return result

    return wrapper  # type: ignore[return-value]


# -- task bodies -------------------------------------------------------------------------------
@stage
def discover(landing: str | None, min_age_s: float | None = None) -> dict:
    """The scan of the landing folder (``land.Scan.as_dict``); ``min_age_s`` None is the scheduled
    default (``HRSS_LANDING_MIN_AGE_S``, else 60 s)."""
    from hrss_warehouse.stages import land

    current = settings()
    return land.scan(current, Path(landing) if landing else current.landing_dir, min_age_s).as_dict()


@stage
def register(scan: dict) -> list[Batch]:
    from hrss_warehouse.airflow import lineage
    from hrss_warehouse.stages import land
    from hrss_warehouse.stages import register as register_stage

    current = settings()
    found = land.Scan.from_dict(scan)
    batches = register_stage.register_files(current, found)
    lineage.report([lineage.file_uri(path) for path in found.files],
                   [lineage.table_uri(current, "raw", "submission")])
    return batches


@stage
def parse_and_check(batch: Batch) -> CheckedBatch:
    import logging

    from hrss_warehouse import check, pipeline

    result = check.parse_and_check_batch(settings(), batch)
    logging.getLogger(__name__).info("checked %s", pipeline.batch_words(result))  # the task log's line
    return result


@stage
def load(batch_result: CheckedBatch) -> LoadCounts:
    from hrss_warehouse.airflow import lineage
    from hrss_warehouse.spec import load_spec
    from hrss_warehouse.stages import load as load_stage

    current = settings()
    loaded = load_stage.load_batch(current, batch_result)
    tables = sorted({load_spec().raw_table(f["form"]) for f in batch_result["rows_files"]})
    lineage.report([lineage.table_uri(current, "raw", "submission")],
                   [lineage.table_uri(current, "raw", t) for t in tables])
    return loaded


@stage
def publish() -> dict:
    from hrss_warehouse.airflow import lineage
    from hrss_warehouse.stages import publish as publish_stage
    from hrss_warehouse.stages.transform import BUILD_SCHEMA

    current = settings()
    published = publish_stage.publish(current)
    marts = published_marts()
    lineage.report([lineage.table_uri(current, BUILD_SCHEMA, m) for m in marts],
                   [lineage.table_uri(current, publish_stage.PUBLISHED_SCHEMA, m) for m in marts])
    return published


@stage
def reports(batches: list[Batch]) -> dict:
    from hrss_warehouse.stages import report, transform

    ids = sorted({int(i) for batch in batches for i in batch["submission_ids"]})
    written = report.write_reports(settings(), ids)
    # Runs after publish only: the dbt docs describe the marts BI now reads (served in the Airflow UI).
    return {**written, "dbt_docs": str(transform.docs_generate_if_changed(settings()))}


@stage
def export_sdmx(enabled: bool) -> dict:
    """The optional last task of jcpt_nightly (param `export_sdmx`): every published survey year as
    SDMX into $HRSS_HOME/exports/. Off by default, and says so in the task log."""
    import logging

    from hrss_warehouse.stages import export

    if not enabled:
        logging.getLogger(__name__).info("SDMX export not requested (param export_sdmx is off): "
                                         "nothing written")
        return {}
    result = export.export_sdmx(settings(), export.published_years(settings()))
    return {"folder": str(result.folder), "files": result.files}


@stage
def reprocess(survey_year: int, counties: list[str] | None, dry_run: bool) -> dict:
    from hrss_warehouse import pipeline

    return pipeline.reprocess_year(settings(), survey_year, counties=counties or None, dry_run=dry_run)


@stage
def load_divisions() -> int:
    from hrss_warehouse.stages import reference

    return reference.load_divisions(settings())


def rebuild_wanted(reprocessed: dict) -> bool:
    """Whether a reprocessing changed anything the marts show (a dry run changes nothing)."""
    return not reprocessed["dry_run"] and bool(reprocessed["changed"])


def survey_year_of(data_interval_start: Any) -> int:
    """The survey year a yearly run stands for: the year its data interval starts in, local time."""
    return data_interval_start.in_timezone(TIMEZONE).year


@stage
def prepare_build() -> None:
    """Empty the build schema, so that publish can never take an earlier build's leftovers for this one."""
    from hrss_warehouse.stages import transform

    transform.prepare_build_schema(settings())
