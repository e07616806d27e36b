"""The run's own record of what it did: the last task of jcpt_nightly gathers every task's state and the
return values `hrss run` summarises, through the Task SDK, and writes them to
``$HRSS_HOME/reports/runs/<run_id>.json``.

Why a task and a file, and not a query after the run: `hrss run` runs the DAG through ``dag.test()`` in
its own process, with no API server to ask (Airflow's REST API lives in the API server), and Airflow's
metadata tables (``TaskInstance``, ``XComModel``, ``DagRun``) are internals that change between versions.
A task sees its run through the Task SDK's public interface (``ti.get_task_states``, ``ti.xcom_pull``),
which holds for ``dag.test()``, the LocalExecutor and Celery workers alike; the record it writes is the
project's own format, so `hrss run` (and anyone else) reads it without Airflow at all.

The task is a teardown: it runs once every other task of the run is done, whatever their states, and
Airflow leaves teardowns out of the run's own state, so a failed load still fails the run (and mails).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrss_warehouse.config import Settings

TASK_ID = "run_summary"
# the tasks whose return values the summary shows (files found and left, batches, rows, reports)
SUMMARISED_TASKS = ("discover", "register", "load", "reports")


@dataclass(frozen=True)
class RunRecord:
    """One run's tasks and the return values of ``SUMMARISED_TASKS``, as the summary task found them."""

    dag_id: str
    run_id: str
    task_states: dict[str, str] = field(default_factory=dict)  # task_id or task_id[map_index] -> state
    results: dict[str, list[Any]] = field(default_factory=dict)  # task_id -> return values by map index


def record_path(settings: Settings, run_id: str) -> Path:
    # a run id holds ':' and '+' (manual__2026-12-04T02:00:00+00:00): kept readable, never a path
    return settings.reports_dir / "runs" / f"{re.sub(r'[^A-Za-z0-9._+:-]', '_', run_id)}.json"


def read(settings: Settings, run_id: str) -> RunRecord | None:
    """The record the run's summary task wrote, or None when it wrote none."""
    path = record_path(settings, run_id)
    if not path.exists():
        return None
    return RunRecord(**json.loads(path.read_text(encoding="utf-8")))


def _task_key(state_key: str, task_ids: set[str]) -> str:
    """The Task SDK names an expanded task instance ``task_id_<map_index>``; the summary ``task_id[i]``."""
    prefix, _, index = state_key.rpartition("_")
    if state_key in task_ids or prefix not in task_ids or not index.isdigit():
        return state_key
    return f"{prefix}[{index}]"


def gather(ti: Any, dag: Any) -> RunRecord:
    """Every other task's state in this run and the summarised return values, through the Task SDK."""
    task_ids = set(dag.task_ids)
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    task_states = {_task_key(key, task_ids): str(state) for key, state in states.items() if key != ti.task_id}
    results = {}
    for task_id in SUMMARISED_TASKS:
        # a list of task ids: always a list back, one value per map index (None when the task returned none)
        values = [value for value in ti.xcom_pull(task_ids=[task_id]) if value is not None]
        if values:
            results[task_id] = values
    return RunRecord(ti.dag_id, ti.run_id, task_states, results)


def write(settings: Settings, record: RunRecord) -> Path:
    """Write the record whole (a temporary file renamed): a reader never sees half of it."""
    path = record_path(settings, record.run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    text = json.dumps(record.__dict__, default=str, ensure_ascii=False, indent=1)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def record_run(ti: Any, dag: Any) -> str:
    """The body of the summary task: gather the run and write its record; returns the record's path."""
    from hrss_warehouse.config import settings

    return str(write(settings(), gather(ti, dag)))


def after_every_task(summary: Any) -> None:
    """Make the summary task (an XComArg of the teardown) wait for every other task of its DAG: a task
    downstream of the last one only could start while a failed branch's siblings still run."""
    task = summary.operator
    task.set_upstream([other for other in task.dag.tasks if other is not task])
