"""Everything the DAG files need beyond wiring: task bodies, retry policy, Cosmos configs, Assets.

DAG files import this module at parse time, so its top level stays light: no pandas, psycopg,
great_expectations or dbt (each stage module is imported inside the task that runs it), no
database access, no secrets. The task bodies are transactions: a rerun gives the same result.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pendulum

from hrss_warehouse.config import DAGS_DIR, DBT_PROJECT_DIR, SPEC_DIR, Settings

OWNER = "hrss-data-engineering"
TIMEZONE = "Asia/Shanghai"
TAGS = ["hrss", "jcpt"]
DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
DBT_PROFILES = DBT_PROJECT_DIR / "profiles.yml"
DBT_PROFILE = "hrss"
START_DATE = pendulum.datetime(2014, 1, 1, tz=TIMEZONE)  # the first survey year the spec covers
WAREHOUSE_HOST = "hrss-warehouse"  # a logical name: Asset URIs must not change with the deployment

# One slot: a second load waits in the scheduler's queue, not in a worker slot (the advisory lock stays
# as the safety net for loads from outside Airflow). `airflow_env.migrate` creates it.
WAREHOUSE_LOAD_POOL = "warehouse_load"

F = TypeVar("F", bound=Callable[..., Any])


def default_args() -> dict[str, Any]:
    """Every task's defaults: retries with backoff, which the retry policy lets only transient database
    errors use (a validation failure fails its task at once), and a mail on every task failure."""
    from hrss_warehouse import alerts, lineage
    from hrss_warehouse.retry_policy import TransientDatabaseErrorsOnly

    return {
        "owner": OWNER,
        "retries": 3,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "retry_policy": TransientDatabaseErrorsOnly(),
        "on_failure_callback": alerts.TASK_ALERTS,
        "pre_execute": lineage.forget_earlier_tasks,
    }


def alerting() -> dict[str, Any]:
    """DAG arguments that mail on every task failure and every run failure (see ``alerts``)."""
    from hrss_warehouse import alerts

    return {"default_args": default_args(), "on_failure_callback": alerts.DAG_ALERTS}


def publish_deadline() -> Any:
    """jcpt_nightly's DeadlineAlert: the marts published by 06:00 local, else a mail (see ``alerts``)."""
    from hrss_warehouse import alerts

    return alerts.publish_deadline()


def stage(func: F) -> F:
    """Record a stage's run metrics (``ops.stage_run``) whether it succeeds or fails; whether a failure
    is retried is the retry policy's call (``default_args``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from datetime import UTC, datetime

        from hrss_warehouse import ops

        started_at = datetime.now(UTC)
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            ops.record_task(func.__name__, args, None, started_at, exc)
            raise
        ops.record_task(func.__name__, args, result, started_at, None)
        return result

    return wrapper  # type: ignore[return-value]


class DbtManifestMissing(RuntimeError):
    """The DAG cannot render its dbt tasks; the message says how to produce the manifest."""


def settings() -> Settings:
    return Settings.from_env()


# -- task bodies -------------------------------------------------------------------------------
@stage
def discover(landing: str | None, min_age_s: float | None = None) -> dict:
    """The scan of the landing folder (``land.Scan.as_dict``); ``min_age_s`` None is the scheduled
    default (``HRSS_LANDING_MIN_AGE_S``, else 60 s)."""
    from hrss_warehouse import land

    current = settings()
    return land.scan(current, Path(landing) if landing else current.landing_dir, min_age_s).as_dict()


@stage
def register(scan: dict) -> list[dict]:
    from hrss_warehouse import land, lineage
    from hrss_warehouse import register as register_stage

    current = settings()
    found = land.Scan.from_dict(scan)
    batches = register_stage.register_files(current, found)
    lineage.report([lineage.file_uri(path) for path in found.files],
                   [lineage.table_uri(current, "raw", "submission")])
    return batches


@stage
def parse_and_check(batch: dict) -> dict:
    import logging

    from hrss_warehouse import check, pipeline

    result = check.parse_and_check_batch(settings(), batch)
    logging.getLogger(__name__).info("checked %s", pipeline.batch_words(result))  # the task log's line
    return result


@stage
def load(batch_result: dict) -> dict:
    from hrss_warehouse import lineage
    from hrss_warehouse import load as load_stage
    from hrss_warehouse.spec import load_spec

    current = settings()
    loaded = load_stage.load_batch(current, batch_result)
    tables = sorted({load_spec().raw_table(f["form"]) for f in batch_result["rows_files"]})
    lineage.report([lineage.table_uri(current, "raw", "submission")],
                   [lineage.table_uri(current, "raw", t) for t in tables])
    return loaded


@stage
def publish() -> dict:
    from hrss_warehouse import lineage
    from hrss_warehouse import publish as publish_stage
    from hrss_warehouse.transform import BUILD_SCHEMA

    current = settings()
    published = publish_stage.publish(current)
    marts = published_marts()
    lineage.report([lineage.table_uri(current, BUILD_SCHEMA, m) for m in marts],
                   [lineage.table_uri(current, publish_stage.PUBLISHED_SCHEMA, m) for m in marts])
    return published


@stage
def reports(batches: list[dict]) -> dict:
    from hrss_warehouse import report, transform

    ids = sorted({int(i) for batch in batches for i in batch["submission_ids"]})
    written = report.write_reports(settings(), ids)
    # Runs after publish only: the dbt docs describe the marts BI now reads (served in the Airflow UI).
    return {**written, "dbt_docs": str(transform.docs_generate(settings()))}


@stage
def export_sdmx(enabled: bool) -> dict:
    """The optional last task of jcpt_nightly (param `export_sdmx`): every published survey year as
    SDMX into $HRSS_HOME/exports/. Off by default, and says so in the task log."""
    import logging

    from hrss_warehouse import export

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
    from hrss_warehouse import reference

    return reference.load_divisions(settings())


def rebuild_wanted(reprocessed: dict) -> bool:
    """Whether a reprocessing changed anything the marts show (a dry run changes nothing)."""
    return not reprocessed["dry_run"] and bool(reprocessed["changed"])


def survey_year_of(data_interval_start: Any) -> int:
    """The survey year a yearly run stands for: the year its data interval starts in, local time."""
    return data_interval_start.in_timezone(TIMEZONE).year


# -- dbt through Cosmos ------------------------------------------------------------------------
# Cosmos runs every node in its own temporary copy of the project and passes the paths itself; that
# private copy also makes dbt's partial parsing safe, which saves seconds on every dbt task.
_COSMOS_OWNED_DBT_VARS = {"DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROJECT_DIR", "DBT_PROFILES_DIR",
                          "DBT_PARTIAL_PARSE"}


def dbt_env_interceptor(context: Any, operator: Any) -> None:
    """Give the dbt command the warehouse login at run time (never at parse time)."""
    from hrss_warehouse import transform

    env = {k: v for k, v in transform.dbt_env(settings()).items() if k not in _COSMOS_OWNED_DBT_VARS}
    operator.env = {**(operator.env or {}), **env}


@stage
def prepare_build() -> None:
    """Empty the build schema, so that publish can never take an earlier build's leftovers for this one."""
    from hrss_warehouse import transform

    transform.prepare_build_schema(settings())


def dbt_target() -> str:
    """The default target of the project's dbt profile."""
    match = re.search(r"^\s+target:\s*(\S+)", DBT_PROFILES.read_text(), flags=re.MULTILINE)
    if not match:
        raise DbtManifestMissing(f"{DBT_PROFILES} names no default target for profile {DBT_PROFILE!r}")
    return match.group(1).strip("'\"")


def dbt_group_args() -> dict[str, Any]:
    """Keyword arguments for a Cosmos ``DbtTaskGroup``: one task per model, rendered from the manifest."""
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior

    if not DBT_MANIFEST.exists():
        raise DbtManifestMissing(f"dbt manifest not found at {DBT_MANIFEST}; `make install` creates it "
                                 f"(it runs `dbt parse` in {DBT_PROJECT_DIR})")
    dbt = Path(sys.executable).with_name("dbt")
    return {
        "project_config": ProjectConfig(dbt_project_path=DBT_PROJECT_DIR, manifest_path=DBT_MANIFEST,
                                        install_dbt_deps=False),
        "profile_config": ProfileConfig(profile_name=DBT_PROFILE, target_name=dbt_target(),
                                        profiles_yml_filepath=DBT_PROFILES),
        "execution_config": ExecutionConfig(execution_mode=ExecutionMode.LOCAL,
                                            invocation_mode=InvocationMode.DBT_RUNNER,
                                            dbt_executable_path=dbt),
        # A test over several models (e.g. relationships) runs once all of them are built.
        "render_config": RenderConfig(load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD,
                                      should_detach_multiple_parents_tests=True, emit_datasets=False),
        "operator_args": {
            "interceptors": [dbt_env_interceptor],
            "append_env": True,
            # A dbt failure is a model or a data test failing (a validation failure): retrying cannot
            # fix it, and the run stays safe to repeat because publish has not swapped anything yet.
            "retries": 0,
        },
    }


# -- Assets ------------------------------------------------------------------------------------
def published_marts() -> list[str]:
    """The mart tables of the reporting contract (the interface table of survey_spec/marts.md)."""
    text = (SPEC_DIR / "marts.md").read_text(encoding="utf-8")
    table = re.search(r"^\| table \| grain \|.*?\n((?:\|.*\n)+)", text, flags=re.MULTILINE)
    if not table:
        raise ValueError(f"{SPEC_DIR / 'marts.md'} has no `| table | grain |` interface table")
    return re.findall(r"^\|\s*`([a-z_]+)`\s*\|", table.group(1), flags=re.MULTILINE)


def mart_assets() -> list:
    from airflow.sdk import Asset

    return [Asset(name=f"hrss.marts.{table}", uri=f"postgres://{WAREHOUSE_HOST}:5432/hrss/marts/{table}",
                  group="hrss_marts") for table in published_marts()]


def division_asset():
    from airflow.sdk import Asset

    return Asset(name="hrss.reference.division",
                 uri=f"postgres://{WAREHOUSE_HOST}:5432/hrss/reference/division", group="hrss_reference")


# -- `hrss run`: jcpt_nightly once through Airflow's own dag.test() ----------------------------
NIGHTLY_DAG_ID = "jcpt_nightly"
FAILED_STATES = {"failed", "upstream_failed"}


class RunError(RuntimeError):
    """The run could not start (bad landing folder, DAG import error); the message says why."""


@dataclass
class RunSummary:
    """What one `hrss run` did, for the readable summary and the exit code."""

    run_id: str
    state: str
    seconds: float
    task_states: dict[str, str] = field(default_factory=dict)  # task_id[map_index] -> state
    results: dict[str, list[Any]] = field(default_factory=dict)  # task_id -> return values
    submissions: list[dict] = field(default_factory=list)  # this run's rows of marts.mart_submissions

    @property
    def ok(self) -> bool:
        return self.state == "success" and not FAILED_STATES & set(self.task_states.values())

    def render(self, settings: Settings) -> str:
        counts = Counter(self.task_states.values())
        lines = [f"{NIGHTLY_DAG_ID} run {self.run_id}: {self.state} in {self.seconds:.1f} s "
                 f"({', '.join(f'{n} {state}' for state, n in sorted(counts.items()))})"]
        failed = sorted(t for t, s in self.task_states.items() if s == "failed")
        if failed:
            lines.append(f"  failed tasks: {', '.join(failed)} (their logs are above)")
        scans = self.results.get("discover", [])
        found = sum(len(scan["files"]) for scan in scans)
        # a found file still in landing after the register stage changed while it was read
        left = [{"path": p, "reason": "changed while it was read"} for scan in scans for p in scan["files"]
                if Path(p).exists() and self.task_states.get("register") == "success"]
        skipped = [entry for scan in scans for entry in scan["skipped"]] + left
        lines.append(f"  files found: {found - len(left)}, left in landing: {len(skipped)}")
        for entry in skipped:
            lines.append(f"    left {entry['path']}: {entry['reason']}")
        outcomes = Counter(s["outcome"] for s in self.submissions)
        if self.submissions:
            lines.append(f"  submissions: {outcomes.get('accepted', 0)} accepted, "
                         f"{outcomes.get('quarantined', 0)} quarantined")
            for sub in self.submissions:
                if sub["outcome"] == "quarantined":
                    form = f" {sub['form']}" if sub["form"] else ""
                    lines.append(f"    quarantined {sub['file_name']}{form}: "
                                 f"{', '.join(sub['failed_rules'] or []) or 'structural error'}")
        rows = sum(v for r in self.results.get("load", []) if isinstance(r, dict)
                   for k, v in r.items() if k.startswith("rows") and isinstance(v, int))
        lines.append(f"  rows loaded: {rows:,}")
        published = "published" if self.task_states.get("publish") == "success" else "not published"
        lines.append(f"  marts {published}: {', '.join(f'marts.{m}' for m in published_marts())}")
        written = next(iter(self.results.get("reports", [])), None) or {}
        lines.append(f"  reports: {len(written.get('reports', []))} in {settings.reports_dir}")
        lines.append(f"  data docs: {written.get('data_docs') or settings.docs_dir}")
        from hrss_warehouse import airflow_env, docs_plugin

        base_url = f"http://127.0.0.1:{airflow_env.api_port()}"
        lines.append(f"  in the Airflow UI ({base_url}, `make airflow`):")
        lines += [f"    {name}: {url}" for name, url in docs_plugin.links(base_url).items()]
        return "\n".join(lines)


def _run_outcome(run_id: str, started: float) -> RunSummary:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=NIGHTLY_DAG_ID, run_id=run_id).all()
        states = {(t.task_id if t.map_index < 0 else f"{t.task_id}[{t.map_index}]"): str(t.state)
                  for t in tis}
        from airflow.models.dagrun import DagRun

        run = session.query(DagRun).filter_by(dag_id=NIGHTLY_DAG_ID, run_id=run_id).one()
        results: dict[str, list[Any]] = {}
        xcoms = session.query(XComModel).filter_by(dag_id=NIGHTLY_DAG_ID, run_id=run_id, key="return_value")
        for row in sorted(xcoms, key=lambda r: (r.task_id, r.map_index)):
            results.setdefault(row.task_id, []).append(XComModel.deserialize_value(row))
        return RunSummary(run_id, str(run.state), time.monotonic() - started, states, results)


def _submissions(settings: Settings, batches: list[list[dict]]) -> list[dict]:
    from hrss_warehouse.warehouse import connect

    ids = sorted({int(i) for found in batches for batch in found for i in batch["submission_ids"]})
    if not ids:
        return []
    with connect(settings) as conn:
        cur = conn.execute("SELECT submission_id, file_name, form, outcome, failed_rules"
                           " FROM marts.mart_submissions WHERE submission_id = ANY(%s)"
                           " ORDER BY file_name, form", (ids,))
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def run_nightly(settings: Settings, landing: Path) -> RunSummary:
    """Run jcpt_nightly once over ``landing`` through ``dag.test()``, in this process."""
    from hrss_warehouse import airflow_env, land, reference, warehouse

    landing = landing.expanduser().resolve()
    if not landing.is_dir():
        raise RunError(f"--landing {landing}: no such folder")
    warehouse.start(settings)
    try:
        reference.ensure_loaded(settings)
    except reference.RegistryError as exc:
        raise RunError(str(exc)) from None
    airflow_env.migrate(settings)
    airflow_env.apply(settings)

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=DAGS_DIR / f"{NIGHTLY_DAG_ID}.py", safe_mode=False)
    if bag.import_errors:
        raise RunError("cannot import the nightly DAG:\n" + "\n".join(bag.import_errors.values()))
    dag = bag.get_dag(NIGHTLY_DAG_ID)
    # dag.test() has no triggerer to fire the publish deadline, and Airflow 3.3's dag.test() fails a run
    # that succeeds when its in-memory DAG carries a DeadlineAlert (it looks the alert up by id)
    dag.deadline = None
    started = time.monotonic()
    # a folder handed over by hand is finished: no minimum age unless HRSS_LANDING_MIN_AGE_S says so
    min_age_s = land.default_min_age_s(settings, scheduled=False)
    run = dag.test(run_conf={"landing": str(landing), "min_age_s": min_age_s})
    summary = _run_outcome(run.run_id, started)
    if summary.task_states.get("publish") == "success":
        summary.submissions = _submissions(settings, summary.results.get("register", []))
    return summary
