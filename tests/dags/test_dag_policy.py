"""DAG policy (after mozilla/telemetry-airflow's test_dag_validity): every DAG has an owner, retries
with backoff, tags and documentation; schedules, concurrency and the retry policy are as designed."""

from __future__ import annotations

import json
from pathlib import Path

from hrss_warehouse.airflow import orchestration as orc
from hrss_warehouse.airflow import run_summary
from hrss_warehouse.config import WAREHOUSE_LOAD_POOL


def test_no_import_errors(dag_report: dict) -> None:
    assert dag_report["import_errors"] == {}
    assert sorted(dag_report["dags"]) == ["jcpt_nightly", "jcpt_reprocess", "reference_divisions"]


def test_owner_tags_docs_on_every_dag(dag_report: dict) -> None:
    for dag_id, dag in dag_report["dags"].items():
        assert dag["owner"] == orc.OWNER, dag_id
        assert all(t["owner"] == orc.OWNER for t in dag["tasks"]), dag_id
        assert set(orc.TAGS) <= set(dag["tags"]), f"{dag_id}: tags {dag['tags']}"
        assert len(dag["doc_md"].strip()) > 100, f"{dag_id}: doc_md missing or too short"
        assert dag["tasks"], f"{dag_id}: no tasks"


def test_retries_with_backoff_except_dbt(dag_report: dict) -> None:
    for dag_id, dag in dag_report["dags"].items():
        assert int(dag["default_args"]["retries"]) >= 1, dag_id
        for task in dag["tasks"]:
            if task["class"].startswith("Dbt"):
                # A failing model or data test is a validation failure: never retried.
                assert task["retries"] == 0, f"{dag_id}.{task['task_id']}"
            else:
                assert task["retries"] >= 1 and task["retry_exponential_backoff"] > 1, \
                    f"{dag_id}.{task['task_id']}"


def test_every_task_retries_only_transient_database_errors(dag_report: dict) -> None:
    for dag_id, dag in dag_report["dags"].items():
        for task in dag["tasks"]:
            assert task["retry_policy"] == "TransientDatabaseErrorsOnly", f"{dag_id}.{task['task_id']}"


def test_loads_wait_in_the_one_slot_pool(dag_report: dict) -> None:
    # A waiting load holds a pool slot request, not a worker slot (the advisory lock stays underneath).
    loads = {("jcpt_nightly", "load"), ("jcpt_reprocess", "reprocess")}
    for dag_id, dag in dag_report["dags"].items():
        for task in dag["tasks"]:
            wanted = WAREHOUSE_LOAD_POOL if (dag_id, task["task_id"]) in loads else "default_pool"
            assert task["pool"] == wanted, f"{dag_id}.{task['task_id']}: pool {task['pool']}"


def test_one_run_at_a_time(dag_report: dict) -> None:
    # Runs of the same DAG would interleave loads and publishes (#8 concurrency).
    for dag_id, dag in dag_report["dags"].items():
        assert dag["max_active_runs"] == 1, dag_id
        assert dag["catchup"] is False, dag_id


def test_nightly_schedule_and_shape(dag_report: dict, dbt_manifest: Path) -> None:
    dag = dag_report["dags"]["jcpt_nightly"]
    assert (dag["timetable"], dag["cron"], dag["timezone"]) == ("CronTriggerTimetable", "0 2 * * *",
                                                                "Asia/Shanghai")
    tasks = {t["task_id"]: t for t in dag["tasks"]}
    # every task leads to the run's summary (test_the_nightly_ends_with_its_summary): the flow without it
    for task in tasks.values():
        task["downstream"] = [d for d in task["downstream"] if d != run_summary.TASK_ID]
    assert tasks["parse_and_check"]["mapped"] and tasks["load"]["mapped"]
    assert tasks["register"]["downstream"] == ["parse_and_check", "reports"]
    dbt_tasks = {tid for tid in tasks if tid.startswith("dbt_build.")}
    # ExecutionMode.WATCHER: one `dbt build` (the producer), then one task per model, seed and test
    # group that shows what that build did to it (the group's bookkeeping task is an EmptyOperator).
    assert {tasks[tid]["class"] for tid in dbt_tasks} <= {
        "DbtProducerWatcherOperator", "DbtRunWatcherOperator", "DbtSeedWatcherOperator",
        "DbtTestWatcherOperator", "EmptyOperator"}
    producers = [tid for tid in dbt_tasks if tasks[tid]["class"] == "DbtProducerWatcherOperator"]
    assert producers == ["dbt_build.dbt_producer_watcher"]
    manifest = json.loads(dbt_manifest.read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    missing = {m for m in models if not {f"dbt_build.{m}_run", f"dbt_build.{m}.run"} & set(tasks)}
    assert not missing, f"models without their own task: {sorted(missing)}"
    # a model's own data tests show as its `.test` task
    tested = {n["depends_on"]["nodes"][0].rsplit(".", 1)[-1] for n in manifest["nodes"].values()
              if n["resource_type"] == "test" and len(n["depends_on"]["nodes"]) == 1}
    assert {m for m in tested & models if f"dbt_build.{m}.test" not in tasks} == set()
    # the model tasks read what the build reported: the first ones wait for it to have run, whatever its
    # outcome (a build that never ran skips them: they would wait for its report forever)
    # (an ephemeral model is an EmptyOperator in the group: it waits for the build too, or the sensors
    # after it would start first)
    rendered = dbt_tasks - {*producers, f"{producers[0]}_done"}
    first = [tid for tid in rendered if not set(tasks[tid]["upstream"]) & rendered]
    assert first and all(tasks[tid]["upstream"] == producers and tasks[tid]["trigger_rule"] == "one_done"
                         for tid in first), first
    # publish waits for the whole build, then the reports; it updates the mart Assets.
    assert set(tasks["publish"]["upstream"]) <= dbt_tasks and tasks["publish"]["downstream"] == ["reports"]
    assert tasks["reports"]["downstream"] == ["export_sdmx"]  # the optional SDMX export comes last
    assert tasks["publish"]["outlets"] == sorted(a.uri for a in orc.mart_assets())
    assert len(tasks["publish"]["outlets"]) == len(orc.published_marts()) >= 10


def test_the_nightly_ends_with_its_summary(dag_report: dict) -> None:
    # `hrss run` prints what this task recorded: it must see every other task finished, and as a teardown
    # it leaves the run's state to the others (a failed load still fails the run and mails).
    tasks = {t["task_id"]: t for t in dag_report["dags"]["jcpt_nightly"]["tasks"]}
    summary = tasks.pop(run_summary.TASK_ID)
    assert summary["teardown"] and summary["downstream"] == []
    assert set(summary["upstream"]) == set(tasks)
    assert not any(task["teardown"] for task in tasks.values())


def test_reprocess_is_yearly_by_data_interval(dag_report: dict) -> None:
    dag = dag_report["dags"]["jcpt_reprocess"]
    assert (dag["timetable"], dag["cron"], dag["timezone"]) == ("CronDataIntervalTimetable", "0 0 1 1 *",
                                                                "Asia/Shanghai")
    assert dag["params"] == ["counties", "dry_run"]
    tasks = {t["task_id"]: t for t in dag["tasks"]}
    # a dry run, or nothing changed: build and publish are skipped
    assert tasks["changes_made"]["class"].startswith("_ShortCircuit")
    assert tasks["changes_made"]["upstream"] == ["reprocess"]
    assert tasks["publish"]["outlets"] == sorted(a.uri for a in orc.mart_assets())


def test_survey_year_is_the_local_year_of_the_interval_start() -> None:
    import pendulum

    from hrss_warehouse.airflow import tasks as task_bodies

    # 1 Jan 2016 00:00 in Shanghai is still 2015 in UTC: the local year counts.
    start = pendulum.datetime(2016, 1, 1, tz="Asia/Shanghai").in_timezone("UTC")
    assert task_bodies.survey_year_of(start) == 2016


def test_reference_divisions(dag_report: dict) -> None:
    dag = dag_report["dags"]["reference_divisions"]
    assert dag["timetable"] == "NullTimetable"
    assert [t["outlets"] for t in dag["tasks"]] == [[orc.division_asset().uri]]


def test_every_task_and_run_failure_is_mailed(dag_report: dict) -> None:
    for dag_id, dag in dag_report["dags"].items():
        assert dag["on_failure_callback"] == ["hrss_warehouse.airflow.alerts.AlertNotifier:run"], dag_id
        for task in dag["tasks"]:
            callbacks = task["on_failure_callback"]
            if task["class"] == "DbtProducerWatcherOperator":
                # Cosmos puts its own callback first (it keeps the build's XCom for a retry of the group)
                callbacks = [c for c in callbacks if c != "builtins.function:"]
            assert callbacks == ["hrss_warehouse.airflow.alerts.AlertNotifier:task"], \
                f"{dag_id}.{task['task_id']}"


def test_the_nightly_must_publish_by_six(dag_report: dict) -> None:
    # Its run of 02:00 local (the logical date) must have published by 06:00 Asia/Shanghai.
    assert dag_report["dags"]["jcpt_nightly"]["deadlines"] == [{
        "reference": "DagRunLogicalDateDeadline", "interval_s": 4 * 3600.0,
        "callback": "hrss_warehouse.airflow.alerts.publish_deadline_missed",
        "callback_kind": "AsyncCallback"}]
    assert dag_report["dags"]["jcpt_nightly"]["cron"] == "0 2 * * *"
