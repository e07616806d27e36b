"""Run one of the project's DAGs once through Airflow's dag.test() and write its run id and task states
as JSON to RESULT_FILE (Airflow's and OpenLineage's log lines share stdout). Run in a fresh interpreter
by test_alerts.py (Airflow's environment must be set before Airflow is imported); the alert connection
comes from HRSS_ALERT_SMTP / HRSS_ALERT_TO.

    alert_run.py DAG_ID RESULT_FILE
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hrss_warehouse.config import DAGS_DIR, Settings
from hrss_warehouse.local import airflow_env

settings = Settings.from_env()
airflow_env.migrate(settings)
airflow_env.apply(settings)

from airflow.dag_processing.dagbag import DagBag  # noqa: E402

dag_id = sys.argv[1]
bag = DagBag(dag_folder=DAGS_DIR / f"{dag_id}.py", safe_mode=False)
assert not bag.import_errors, bag.import_errors
run = bag.get_dag(dag_id).test()
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
Path(sys.argv[2]).write_text(json.dumps({"run_id": run.run_id, "state": str(run.state), "states": states}))
