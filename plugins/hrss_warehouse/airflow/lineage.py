"""OpenLineage for our own task bodies: which files and tables a stage read and wrote.

Cosmos reports the dbt models' inputs and outputs itself; the Python stages report theirs to Airflow's
hook lineage collector, which the OpenLineage provider reads when the task ends. Tables are named the
way dbt's lineage names them (namespace ``postgres://host:port``, name ``database.schema.table``), so
the events join up: landed file → ``raw.*`` → dbt models → ``marts_build.*`` → published ``marts.*``.
Where the events go is the provider's transport (``airflow_env.lineage_transport``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hrss_warehouse.config import Settings


class _Stage:
    """The lineage context the collector keys entries by (one per reporting call)."""


def table_uri(settings: Settings, schema: str, table: str) -> str:
    params = settings.conn_params()
    return f"postgres://{params['host']}:{params['port']}/{params['dbname']}/{schema}/{table}"


def file_uri(path: str | Path) -> str:
    return Path(path).resolve().as_uri()


def report(inputs: list[str], outputs: list[str]) -> None:
    """Add these asset URIs as the running task's inputs and outputs (nothing outside a task)."""
    from airflow.sdk.lineage import get_hook_lineage_collector

    collector = get_hook_lineage_collector()
    context = _Stage()
    for uri in inputs:
        collector.add_input_asset(context=context, uri=uri)
    for uri in outputs:
        collector.add_output_asset(context=context, uri=uri)


def forget_earlier_tasks(context: Any = None) -> None:
    """Start each task with an empty hook lineage collector (every task's ``pre_execute``).

    The collector is a per-process singleton that nothing empties: a worker runs each task in a fresh
    process, but ``dag.test()`` (`hrss run`) runs them all in one, and every task's event would also
    carry the files and tables of the tasks before it.
    """
    from airflow.sdk.lineage import get_hook_lineage_collector

    get_hook_lineage_collector.cache_clear()
