"""Run retry_probe_dag.py once through Airflow's dag.test() and print, as JSON on the last line, how
often each task ran and how it ended. Run in a fresh interpreter by test_retry_policy.py (Airflow's
environment must be set before Airflow is imported).

    retry_run.py COUNTER_DIR
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from hrss_warehouse import airflow_env
from hrss_warehouse.config import Settings

settings = Settings.from_env()
airflow_env.migrate(settings)
airflow_env.apply(settings)
counters = Path(sys.argv[1])
os.environ["HRSS_RETRY_PROBE_DIR"] = str(counters)
# dag.test() runs only a DAG of the configured DAG folder: a folder holding the probe alone.
dags = counters.parent / "probe_dags"
dags.mkdir(exist_ok=True)
shutil.copy(Path(__file__).with_name("retry_probe_dag.py"), dags / "retry_probe_dag.py")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

bag = DagBag(dag_folder=dags / "retry_probe_dag.py", safe_mode=False)
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("hrss_retry_policy_probe").test()
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
# the result goes to a file: Airflow's and OpenLineage's log lines share stdout
(counters.parent / "result.json").write_text(
    json.dumps({"states": states, "attempts": {p.name: len(p.read_text()) for p in counters.iterdir()}}))
