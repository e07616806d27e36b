"""Run metrics: what each stage of a DAG run took in and let out, and how long it took.

Every stage task writes one row of ``ops.stage_run`` as it ends (``airflow.tasks.stage`` calls
``record``): files in, accepted, quarantined, rows in and out, seconds, and for the dbt build the nodes
built and tested. A retry replaces its row (the key is run, stage and map index), so a rerun records
the same numbers. dbt publishes the rows as ``marts.mart_pipeline_runs``.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from hrss_warehouse.config import Settings

log = logging.getLogger(__name__)

TABLE = "ops.stage_run"
MEASURES = ("files_in", "accepted", "quarantined", "rows_in", "rows_out", "dbt_nodes_built",
            "dbt_nodes_tested")


def _rows(entries: list[dict]) -> int:
    return sum(int(e.get("rows", 0)) for e in entries)


def measures(stage: str, args: tuple, result: Any) -> dict[str, int]:
    """The numbers a stage's arguments and return value tell, by the stage (task body) name."""
    if stage == "discover":  # result and args[0] of register: a land.Scan as a dict
        return {"files_in": len(result["files"])}
    if stage == "register":
        return {"files_in": len(args[0]["files"]), "rows_out": sum(len(b["submission_ids"]) for b in result)}
    if stage == "parse_and_check":
        return {"files_in": len(args[0]["submission_ids"]), "accepted": len(result["accepted"]),
                "quarantined": len(result["quarantined"]), "rows_in": _rows(result["submissions"]),
                "rows_out": _rows(result["rows_files"])}
    if stage == "load":
        return {"accepted": result["accepted"], "quarantined": result["quarantined"],
                "rows_in": _rows(args[0]["rows_files"]), "rows_out": result["rows"]}
    if stage == "publish":
        return {"rows_out": result["tables"]}
    if stage == "reports":
        return {"files_in": result["submissions"], "rows_out": len(result["reports"])}
    if stage == "reprocess":
        return {"files_in": result["submissions"], "rows_out": result["rows_loaded"]}
    if stage == "load_divisions":
        return {"rows_out": int(result)}
    if stage == "dbt_build":
        return dict(result)
    return {}


def record(settings: Settings, *, dag_id: str, run_id: str, stage: str, map_index: int, try_number: int,
           started_at: datetime, finished_at: datetime, outcome: str, values: dict[str, int],
           error: str | None = None) -> None:
    """Write (or replace, on a retry) the row of one stage task."""
    from hrss_warehouse.config import LOADER
    from hrss_warehouse.db import connect

    columns = ["dag_id", "run_id", "stage", "map_index", "try_number", "outcome", "started_at",
               "finished_at", "seconds", *MEASURES, "error"]
    row = [dag_id, run_id, stage, map_index, try_number, outcome, started_at, finished_at,
           round((finished_at - started_at).total_seconds(), 3), *(values.get(m) for m in MEASURES),
           (error or "")[:2000] or None]
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[4:])
    with connect(settings, role=LOADER) as conn:
        conn.execute(f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(row))})"
                     f" ON CONFLICT (dag_id, run_id, stage, map_index) DO UPDATE SET {updates}", row)
        conn.commit()


def dbt_build_values(states: dict[str, str], manifest: dict) -> dict[str, int]:
    """Nodes built and tested by a run's Cosmos dbt task group, from its task states and the manifest.

    The group runs one ``dbt build`` (Cosmos' watcher mode); a ``<model>_run`` / ``<seed>_seed`` task
    (``<model>.run`` / ``<seed>.seed`` beside a ``.test`` task when the node has data tests of its own)
    succeeds when that build built its node; a ``<test>_test`` task stands for a test over several models.
    """
    built = {found.group(1) for task, state in states.items()
             if state == "success" and (found := re.fullmatch(r"[^.]+\.(\w+)[._](run|seed)", task))}
    own_tests = 0
    for node in manifest["nodes"].values():
        parents = node.get("depends_on", {}).get("nodes", [])
        if node["resource_type"] in ("test", "unit_test") and len(parents) == 1:
            own_tests += parents[0].rsplit(".", 1)[-1] in built
    detached = sum(1 for task, state in states.items() if state == "success" and task.endswith("_test"))
    return {"dbt_nodes_built": len(built), "dbt_nodes_tested": own_tests + detached}


def _record_dbt_build(ti: Any, until: datetime) -> None:
    """At publish: one row for the run's dbt task group (it has no task body of ours to record it)."""
    import json

    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    from hrss_warehouse.config import DBT_MANIFEST
    from hrss_warehouse.db import connect

    by_run = RuntimeTaskInstance.get_task_states(dag_id=ti.dag_id, task_group_id="dbt_build",
                                                 run_ids=[ti.run_id])
    values = dbt_build_values(by_run.get(ti.run_id, {}), json.loads(DBT_MANIFEST.read_text()))
    settings = Settings.from_env()
    with connect(settings) as conn:
        prepared = conn.execute(f"SELECT finished_at FROM {TABLE} WHERE dag_id = %s AND run_id = %s"
                                " AND stage = 'prepare_build'", (ti.dag_id, ti.run_id)).fetchone()
    record(settings, dag_id=ti.dag_id, run_id=ti.run_id, stage="dbt_build", map_index=-1,
           try_number=1, started_at=prepared[0] if prepared else until, finished_at=until,
           outcome="success", values=values)


def stage_error(dag_id: str, run_id: str, task_id: str, map_index: int | None) -> str | None:
    """The error a failed stage task recorded, if it recorded one (a dbt task records none)."""
    from hrss_warehouse.db import connect

    try:
        with connect(Settings.from_env()) as conn:
            row = conn.execute(f"SELECT error FROM {TABLE} WHERE dag_id = %s AND run_id = %s AND stage = %s"
                               " AND map_index = %s AND outcome = 'failed'",
                               (dag_id, run_id, task_id, -1 if map_index is None else map_index)).fetchone()
    except Exception as exc:  # the alert must go out even when the warehouse is what failed
        log.warning("no error line for %s.%s from %s: %s", dag_id, task_id, TABLE, exc)
        return None
    return row[0] if row else None


def record_task(stage: str, args: tuple, result: Any, started_at: datetime,
                error: BaseException | None) -> None:
    """Record the stage task running now (its run and map index from the Airflow context)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowRuntimeError

    try:
        context = get_current_context()
    except (AirflowRuntimeError, RuntimeError):
        log.info("run metrics not recorded for %s: not running as an Airflow task", stage)
        return
    ti = context["ti"]
    # The stage's work is done (or its own error is what the task must report): metrics that cannot
    # be written are logged, never allowed to fail the task and so repeat the stage.
    try:
        if error is not None:
            _record(ti, stage, started_at, {}, error)
            return
        if stage == "publish":
            _record_dbt_build(ti, started_at)
        _record(ti, stage, started_at, measures(stage, args, result), None)
    except Exception as exc:
        log.warning("run metrics of stage %s not recorded in %s: %s: %s", stage, TABLE, type(exc).__name__,
                    exc)


def _record(ti: Any, stage: str, started_at: datetime, values: dict[str, int],
            error: BaseException | None) -> None:
    record(Settings.from_env(), dag_id=ti.dag_id, run_id=ti.run_id, stage=stage,
           map_index=ti.map_index if ti.map_index is not None else -1, try_number=ti.try_number or 1,
           started_at=started_at, finished_at=datetime.now(UTC),
           outcome="success" if error is None else "failed", values=values,
           error=None if error is None else f"{type(error).__name__}: {error}")
