"""Parse DAG files the way Airflow's DAG processor does and print a JSON report on the last line.

    probe.py parse FILE       import errors, parse seconds, heavy modules loaded, network use
    probe.py describe FOLDER  every DAG and task as data, for the policy tests

Run in a fresh interpreter by tests/dags (never imported by pytest itself).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

FORBIDDEN_MODULES = ("pandas", "great_expectations", "psycopg", "dbt")
connections: list[str] = []


def _refuse(self, address, *args):
    # Any database or network access during parsing is a bug in the DAG file: record and refuse it.
    connections.append(repr(address))
    raise OSError(f"network access during DAG parsing: {address!r}")


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse

# What Airflow's DAG processor has loaded before it parses a file (its parsing child imports the
# processor module, hence the Task SDK runtime), so the timing below is the file's own cost.
import airflow.dag_processing.processor  # noqa: E402,F401
from airflow.dag_processing.dagbag import DagBag  # noqa: E402


def _bag(path: str) -> tuple[DagBag, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=path, safe_mode=False)
    return bag, time.perf_counter() - started, time.process_time() - cpu


def parse(path: str) -> dict:
    bag, seconds, cpu_seconds = _bag(path)
    return {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "stats": [{"file": s.file, "seconds": s.duration.total_seconds()} for s in bag.dagbag_stats],
        "forbidden_loaded": [m for m in FORBIDDEN_MODULES if m in sys.modules],
        "connections": connections,
        "home_created": Path(__import__("os").environ["HRSS_HOME"]).exists(),
    }


def _task(task) -> dict:
    return {
        "task_id": task.task_id,
        "class": type(task).__name__,
        "operator": getattr(task, "operator_name", type(task).__name__),
        "owner": task.owner,
        "retries": task.retries,
        "retry_exponential_backoff": float(task.retry_exponential_backoff or 0),
        "mapped": "Mapped" in type(task).__name__,
        "teardown": task.is_teardown,
        "pool": task.pool,
        "retry_policy": type(task.retry_policy).__name__ if task.retry_policy else None,
        "outlets": sorted(getattr(a, "uri", str(a)) for a in (task.outlets or [])),
        "upstream": sorted(task.upstream_task_ids),
        "trigger_rule": str(task.trigger_rule),
        "downstream": sorted(task.downstream_task_ids),
        "on_failure_callback": _callbacks(task.on_failure_callback),
    }


def _callbacks(callbacks) -> list[str]:
    """What a DAG's or task's failure callbacks are, by class (notifiers) and kind."""
    listed = callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []
    return sorted(f"{type(c).__module__}.{type(c).__name__}:{getattr(c, 'kind', '')}" for c in listed)


def _deadlines(dag) -> list[dict]:
    alerts = dag.deadline if isinstance(dag.deadline, list) else [dag.deadline] if dag.deadline else []
    return [{"reference": type(a.reference).__name__, "interval_s": a.interval.total_seconds(),
             "callback": a.callback.path, "callback_kind": type(a.callback).__name__} for a in alerts]


def describe(folder: str) -> dict:
    bag, _, _ = _bag(folder)
    dags = {}
    for dag_id, dag in bag.dags.items():
        timetable = dag.timetable
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "tags": sorted(dag.tags),
            "doc_md": dag.doc_md or "",
            "owner": dag.owner,
            "default_args": {k: str(v) for k, v in (dag.default_args or {}).items()},
            "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup,
            "timetable": type(timetable).__name__,
            "cron": getattr(timetable, "expression", None),
            "timezone": str(getattr(timetable, "timezone", "")),
            "start_date": dag.start_date.isoformat() if dag.start_date else None,
            "params": sorted(dag.params.keys()),
            "on_failure_callback": _callbacks(dag.on_failure_callback),
            "deadlines": _deadlines(dag),
            "tasks": [_task(t) for t in dag.tasks],
        }
    return {"import_errors": {str(k): str(v) for k, v in bag.import_errors.items()}, "dags": dags,
            "forbidden_loaded": [m for m in FORBIDDEN_MODULES if m in sys.modules],
            "connections": connections}


if __name__ == "__main__":
    mode, target = sys.argv[1], sys.argv[2]
    print(json.dumps(parse(target) if mode == "parse" else describe(target)))
