"""What the DAG files declare besides their tasks: DAG arguments (owner, retries and their policy,
alerts, the publish deadline), the Cosmos arguments of the dbt task group, and the Assets.

DAG files import this module and ``tasks`` at parse time, so their top level stays light: no pandas,
psycopg, great_expectations or dbt (each stage module is imported inside the task that runs it), no
database access, no secrets.
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum

from hrss_warehouse.config import (
    DBT_LS_FILE,
    DBT_PROFILE,
    DBT_PROFILES,
    DBT_PROJECT_DIR,
    FIRST_SURVEY_YEAR,
    SPEC_DIR,
    TIMEZONE,
    WAREHOUSE_CONN_ID,
    settings,
)

OWNER = "hrss-data-engineering"
TAGS = ["hrss", "jcpt"]
START_DATE = pendulum.datetime(FIRST_SURVEY_YEAR, 1, 1, tz=TIMEZONE)
WAREHOUSE_HOST = "hrss-warehouse"  # a logical name: Asset URIs must not change with the deployment


def default_args() -> dict[str, Any]:
    """Every task's defaults: retries with backoff, which the retry policy lets only transient database
    errors use (a validation failure fails its task at once), and a mail on every task failure."""
    from hrss_warehouse.airflow import alerts, lineage
    from hrss_warehouse.airflow.retry_policy import TransientDatabaseErrorsOnly

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
    from hrss_warehouse.airflow import alerts

    return {"default_args": default_args(), "on_failure_callback": alerts.DAG_ALERTS}


def publish_deadline() -> Any:
    """jcpt_nightly's DeadlineAlert: the marts published by 06:00 local, else a mail (see ``alerts``)."""
    from hrss_warehouse.airflow import alerts

    return alerts.publish_deadline()


class DbtManifestMissing(RuntimeError):
    """The DAG cannot render its dbt tasks; the message says how to produce the manifest."""


# -- dbt through Cosmos ------------------------------------------------------------------------
# Cosmos runs dbt in its own temporary copy of the project and passes the paths itself; that private
# copy also makes dbt's partial parsing safe, which saves seconds on every dbt invocation.
_COSMOS_OWNED_DBT_VARS = {"DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROJECT_DIR", "DBT_PROFILES_DIR",
                          "DBT_PARTIAL_PARSE"}
# The keys of the profiles.yml target that say where to connect: in Airflow the connection
# `hrss_warehouse` says it instead (PostgresUserPasswordProfileMapping).
_CONNECTION_KEYS = {"type", "host", "port", "user", "password", "dbname", "sslmode"}
DBT_GROUP_ID = "dbt_build"


def dbt_env_interceptor(context: Any, operator: Any) -> None:
    """Give the dbt command the settings it reads besides its connection (the lock timeout) at run
    time, never at parse time; the connection itself comes from the Airflow connection."""
    from hrss_warehouse.stages import transform

    env = {k: v for k, v in transform.dbt_env(settings()).items()
           if k not in _COSMOS_OWNED_DBT_VARS and not k.startswith("HRSS_DBT_")}
    operator.env = {**(operator.env or {}), **env}


def dbt_target() -> tuple[str, dict[str, Any]]:
    """The default target of the project's dbt profile and its settings other than the connection
    (stage role, schema, threads, timeouts), as profiles.yml writes them (dbt renders the Jinja)."""
    import yaml

    profile = yaml.safe_load(DBT_PROFILES.read_text())[DBT_PROFILE]
    target = profile.get("target")
    if not target or target not in profile.get("outputs", {}):
        raise DbtManifestMissing(f"{DBT_PROFILES} names no default target for profile {DBT_PROFILE!r}")
    return target, {k: v for k, v in profile["outputs"][target].items() if k not in _CONNECTION_KEYS}


def dbt_group_args() -> dict[str, Any]:
    """Keyword arguments for a Cosmos ``DbtTaskGroup`` in ``ExecutionMode.WATCHER``: one ``dbt build``
    of the whole project (the producer task), and one task per model and one for its tests that show
    what that build did to them (consumer sensors), rendered from the precompiled ``dbt ls`` file."""
    from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    if not DBT_LS_FILE.exists():
        raise DbtManifestMissing(f"dbt node list not found at {DBT_LS_FILE}; `make install` creates it "
                                 f"(`hrss dbt parse`: dbt parse in {DBT_PROJECT_DIR})")
    target, profile_args = dbt_target()
    dbt = Path(sys.executable).with_name("dbt")
    return {
        "project_config": ProjectConfig(dbt_project_path=DBT_PROJECT_DIR, install_dbt_deps=False),
        "profile_config": ProfileConfig(
            profile_name=DBT_PROFILE, target_name=target,
            profile_mapping=PostgresUserPasswordProfileMapping(conn_id=WAREHOUSE_CONN_ID,
                                                               profile_args=profile_args)),
        "execution_config": ExecutionConfig(execution_mode=ExecutionMode.WATCHER,
                                            invocation_mode=InvocationMode.DBT_RUNNER,
                                            dbt_executable_path=dbt),
        # A model's data tests show as its own `.test` task; a test over several models (e.g.
        # relationships) as a task once all of them are built.
        "render_config": RenderConfig(load_method=LoadMode.DBT_LS_FILE, dbt_ls_path=DBT_LS_FILE,
                                      test_behavior=TestBehavior.AFTER_EACH,
                                      should_detach_multiple_parents_tests=True, emit_datasets=False),
        "operator_args": {
            "interceptors": [dbt_env_interceptor],
            "append_env": True,
            # A dbt failure is a model or a data test failing (a validation failure): retrying cannot
            # fix it, and the run stays safe to repeat because publish has not swapped anything yet.
            "retries": 0,
        },
    }


def dbt_build_group() -> Any:
    """The dbt task group of a DAG (call it inside the DAG).

    The model tasks read what the one ``dbt build`` reported about their model, so the first of them
    start once it has run, whatever its outcome (``one_done``: a failed build still shows which model
    failed; a build that never ran, its upstream failed or skipped, skips them). Cosmos lets them wait
    for it only in a ``DbtDag``: in a task group they would start beside it and wait in sensors, and
    ``dag.test()`` (``hrss run``), which runs one task at a time, would wait forever.
    """
    from cosmos import DbtTaskGroup
    from cosmos.constants import PRODUCER_WATCHER_TASK_ID

    group = DbtTaskGroup(group_id=DBT_GROUP_ID, **dbt_group_args())
    tasks = {task.task_id: task for task in _tasks_of(group)}
    producer = tasks[f"{DBT_GROUP_ID}.{PRODUCER_WATCHER_TASK_ID}"]
    # every first task of the group: the model, seed and test sensors, and the EmptyOperator Cosmos renders
    # for an ephemeral model (its sensors downstream would otherwise start before the build)
    for task in tasks.values():
        if task is not producer and not task.upstream_task_ids & tasks.keys():
            producer >> task
            task.trigger_rule = "one_done"
    return group


def _tasks_of(group: Any) -> list[Any]:
    found = []
    for child in group.children.values():
        found += _tasks_of(child) if hasattr(child, "children") else [child]
    return found


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


