"""Failure and deadline alerts by mail, through the SMTP provider's notifier.

Every DAG sends one mail when a task fails and one when a run fails (``DAG_ALERTS`` and
``TASK_ALERTS``, used by the DAGs' shared arguments); ``jcpt_nightly`` also sends one when its marts
are not published by the deadline (``publish_deadline``). Where the mail goes is the Airflow connection
``hrss_alerts`` (type smtp: host, port, login, password; extra ``to`` the recipients, ``from_email``
the sender): `hrss airflow start` defines it from ``HRSS_ALERT_SMTP`` / ``HRSS_ALERT_TO``, a deployment
defines it like any connection (``AIRFLOW_CONN_HRSS_ALERTS`` or a secrets backend). Without that
connection the alert is written to the task or processor log with a line saying it was not mailed.
"""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from hrss_warehouse.config import ALERT_CONN_ID, ConfigError, Settings
from hrss_warehouse.config import ALERT_SENDER as DEFAULT_SENDER
from hrss_warehouse.operations import metrics as ops

log = logging.getLogger(__name__)

PUBLISH_TASK = "publish"
# Rule ids of the contract (S01, C05, R01, H02, ...) as they appear in an error message.
RULE_ID = re.compile(r"\b[SCRHV]\d{2}\b")


def publish_deadline_interval() -> timedelta:
    return timedelta(seconds=Settings.from_env().publish_deadline_s)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def task_alert(context: Any) -> tuple[str, list[tuple[str, str]]]:
    """Subject and fields of the mail for a failed task (or a run failed at that task)."""
    ti = context["ti"]
    task = ti.task_id if (ti.map_index is None or ti.map_index < 0) else f"{ti.task_id}[{ti.map_index}]"
    error = ops.error_line(context.get("exception") or context.get("reason") or "")
    rules = sorted(set(RULE_ID.findall(error)))
    fields = [("DAG", ti.dag_id), ("task", task), ("run", ti.run_id), ("try", str(ti.try_number)),
              ("rule ids", ", ".join(rules) or "none named"), ("error", _first_line(error) or "(no message)"),
              ("log", ti.log_url)]
    return f"[hrss] {ti.dag_id}: task {task} failed (run {ti.run_id})", fields


def run_alert(context: Any) -> tuple[str, list[tuple[str, str]]]:
    """Subject and fields of the mail for a failed run (the last task that failed, when known)."""
    dag_id = context["dag"].dag_id
    if "ti" in context:
        ti = context["ti"]
        # The run's context carries no exception: the failed stage recorded its error line.
        error = ops.stage_error(dag_id, ti.run_id, ti.task_id, ti.map_index)
        _, fields = task_alert({**context, "exception": error or context.get("reason")})
        fields = [(k, v) for k, v in fields if k != "try"]
        fields.insert(3, ("reason", str(context.get("reason") or "")))
        run_id = ti.run_id
    else:
        run_id = context["run_id"]
        fields = [("DAG", dag_id), ("run", run_id), ("reason", str(context.get("reason") or ""))]
    return f"[hrss] {dag_id}: run {run_id} failed", fields


def deadline_alert(context: dict, unfinished: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    run = context["dag_run"]
    still = ", ".join(f"{task} ({state})" for task, state in unfinished) or "nothing (the run is finishing)"
    fields = [("DAG", run["dag_id"]), ("run", run["dag_run_id"]),
              ("deadline", str(context["deadline"]["deadline_time"])),
              ("error", f"{PUBLISH_TASK} has not finished by the deadline"), ("still running", still),
              ("log", _run_url(run["dag_id"], run["dag_run_id"]))]
    return f"[hrss] {run['dag_id']}: marts not published by the deadline (run {run['dag_run_id']})", fields


def _run_url(dag_id: str, run_id: str) -> str:
    from urllib.parse import quote

    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")
    return f"{base}/dags/{dag_id}/runs/{quote(run_id)}"


def render(fields: list[tuple[str, str]]) -> tuple[str, str]:
    """The mail body as HTML (a table) and the same lines as plain text (for the log)."""
    rows = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>"
                   + (f"<a href='{html.escape(v)}'>{html.escape(v)}</a>" if v.startswith("http")
                      else html.escape(v)) + "</td></tr>" for k, v in fields)
    return f"<table>{rows}</table>", "; ".join(f"{k}: {v}" for k, v in fields)


class AlertNotifier(SmtpNotifier):
    """The SMTP provider's notifier, addressed by the ``hrss_alerts`` connection, with our message."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        if kind not in ("task", "run"):
            raise ValueError(f"unknown alert kind {kind!r}")
        super().__init__(to=[], smtp_conn_id=ALERT_CONN_ID, **kwargs)
        self.kind = kind

    def render_template_fields(self, context: Any, jinja_env: Any = None) -> None:
        # Our subject and body are composed from the context, never templated: an error message
        # holding "{{" must reach the mail as it is.
        return

    def _address(self, conn: Any, subject: str, fields: list[tuple[str, str]]) -> None:
        extra = conn.extra_dejson
        self.to = [r.strip() for r in str(extra.get("to", "")).split(",") if r.strip()]
        if not self.to:
            raise ConfigError(f"Airflow connection {ALERT_CONN_ID} has no recipients (extra 'to')")
        self.from_email = extra.get("from_email") or DEFAULT_SENDER
        self.subject = subject
        self.html_content = render(fields)[0]

    def compose(self, context: Any) -> tuple[str, list[tuple[str, str]]]:
        return task_alert(context) if self.kind == "task" else run_alert(context)

    def notify(self, context: Any) -> None:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        subject, fields = self.compose(context)
        try:
            conn = BaseHook.get_connection(ALERT_CONN_ID)
        except AirflowNotFoundException:
            log.warning("alert not mailed (no Airflow connection %s): %s | %s", ALERT_CONN_ID, subject,
                        render(fields)[1])
            return
        self._address(conn, subject, fields)
        log.info("mailing alert to %s: %s", ", ".join(self.to), subject)
        super().notify(context)


TASK_ALERTS = AlertNotifier("task")
DAG_ALERTS = AlertNotifier("run")


# -- the publish deadline (runs in the triggerer) ------------------------------------------------
def _unfinished(dag_id: str, run_id: str) -> tuple[list[tuple[str, str]], bool]:
    """Tasks of the run not finished yet, and whether publish has succeeded."""
    from hrss_warehouse.config import AIRFLOW_DB, Settings
    from hrss_warehouse.db import connect

    with connect(Settings.from_env(), database=AIRFLOW_DB) as conn:
        rows = conn.execute(
            "SELECT task_id, map_index, coalesce(state, 'none') FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index", (dag_id, run_id)).fetchall()
    finished = {"success", "failed", "skipped", "upstream_failed", "removed"}
    unfinished = [(task if index < 0 else f"{task}[{index}]", state) for task, index, state in rows
                  if state not in finished]
    published = any(task == PUBLISH_TASK and state == "success" for task, _, state in rows)
    return unfinished, published


async def publish_deadline_missed(context: dict, **_: Any) -> None:
    """The DeadlineAlert callback: mail what is still running, unless publish made it in time."""
    import asyncio

    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    run = context["dag_run"]
    unfinished, published = await asyncio.to_thread(_unfinished, run["dag_id"], run["dag_run_id"])
    subject, fields = deadline_alert(context, unfinished)
    if published:
        log.info("deadline passed after publish: no alert for %s (still running: %s)", run["dag_run_id"],
                 unfinished)
        return
    try:
        conn = await BaseHook.aget_connection(ALERT_CONN_ID)
    except AirflowNotFoundException:
        log.warning("alert not mailed (no Airflow connection %s): %s | %s", ALERT_CONN_ID, subject,
                    render(fields)[1])
        return
    notifier = AlertNotifier("run")
    notifier._address(conn, subject, fields)
    log.info("mailing deadline alert to %s: %s", ", ".join(notifier.to), subject)
    await notifier.async_notify(context)


def publish_deadline():
    """The DeadlineAlert of jcpt_nightly: publish done by the run's logical date + 4 h (06:00 local)."""
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                         interval=publish_deadline_interval(),
                         callback=AsyncCallback(publish_deadline_missed), name="marts published by 06:00")
