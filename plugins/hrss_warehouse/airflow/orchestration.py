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
    DBT_MANIFEST,
    DBT_PROFILE,
    DBT_PROFILES,
    DBT_PROJECT_DIR,
    FIRST_SURVEY_YEAR,
    SPEC_DIR,
    TIMEZONE,
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
# Cosmos runs every node in its own temporary copy of the project and passes the paths itself; that
# private copy also makes dbt's partial parsing safe, which saves seconds on every dbt task.
_COSMOS_OWNED_DBT_VARS = {"DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROJECT_DIR", "DBT_PROFILES_DIR",
                          "DBT_PARTIAL_PARSE"}


def dbt_env_interceptor(context: Any, operator: Any) -> None:
    """Give the dbt command the warehouse login at run time (never at parse time)."""
    from hrss_warehouse.stages import transform

    env = {k: v for k, v in transform.dbt_env(settings()).items() if k not in _COSMOS_OWNED_DBT_VARS}
    operator.env = {**(operator.env or {}), **env}


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


