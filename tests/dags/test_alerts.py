"""Failure alerts through a real mail path: jcpt_nightly (through Airflow's dag.test) fails at a task,
and a real SMTP server (aiosmtpd on 127.0.0.1) receives the task's and the run's alert, addressed by the
`hrss_alerts` connection that HRSS_ALERT_SMTP / HRSS_ALERT_TO define. The quick variant fails the one task of
reference_divisions; the soak one fails a check stage of jcpt_nightly naming a rule id."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from smtp_sink import SmtpSink, body

from hrss_warehouse.config import PROJECT_ROOT, SPEC_DIR, Settings

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
RECIPIENT = "hrss-ops@example.org"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _alert_env(settings: Settings, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port),
               HRSS_ALERT_SMTP=f"127.0.0.1:{port}", HRSS_ALERT_TO=RECIPIENT)
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    return env


def _log_link(text: str) -> str:
    return re.search(r"href='([^']+)'", text).group(1)


def test_a_failed_task_of_a_small_dag_is_mailed_with_its_error_line_and_log(settings: Settings,
                                                                            tmp_path: Path) -> None:
    """The quick variant: reference_divisions fails for real because its table changed owner (as a DBA
    might do by mistake), so the loader role may not rebuild it; a SQL error is not retried."""
    from hrss_warehouse.db import connect
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    with connect(settings) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables"
                             " WHERE schemaname = 'reference' AND tablename = 'division'").fetchone()[0]
        conn.execute("ALTER TABLE reference.division OWNER TO current_user")
        conn.commit()
    port = free_port()
    try:
        with SmtpSink(port) as sink:
            result = subprocess.run([sys.executable, str(Path(__file__).with_name("alert_run.py")),
                                     "reference_divisions", str(tmp_path / "result.json")],
                                    env=_alert_env(settings, port), capture_output=True, text=True,
                                    timeout=600, check=False, cwd=settings.home)
            mails = sink.mails
    finally:
        with connect(settings) as conn:
            conn.execute(f"ALTER TABLE reference.division OWNER TO {owner}")
            conn.commit()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = json.loads((tmp_path / "result.json").read_text())
    run_id = run["run_id"]
    assert run["state"] == "failed" and run["states"] == {"load_divisions": "failed"}, run

    by_subject = {m["Subject"]: m for m in mails}
    task_mail = by_subject.get(f"[hrss] reference_divisions: task load_divisions failed (run {run_id})")
    run_mail = by_subject.get(f"[hrss] reference_divisions: run {run_id} failed")
    assert task_mail is not None and run_mail is not None, sorted(by_subject)
    assert len(mails) == 2, sorted(by_subject)  # one for the failed task, one for the failed run
    for mail in (task_mail, run_mail):
        assert mail["X-Envelope-To"] == RECIPIENT and mail["To"] == RECIPIENT
        text = html.unescape(body(mail))
        for field, value in (("DAG", "reference_divisions"), ("task", "load_divisions"), ("run", run_id),
                             ("rule ids", "none named")):
            assert f"<th align='left'>{field}</th><td>{value}</td>" in text, (field, text)
        # The error line reference.load_divisions raised, naming the file, the table and PostgreSQL's reason.
        assert "loading divisions.csv.gz into reference.division failed: must be owner of table division" \
            in text, text
        link = _log_link(text)
        assert link.startswith("http://127.0.0.1:") and "/dags/reference_divisions/runs/" in link
        assert link.rstrip("/").split("?")[0].endswith("/tasks/load_divisions"), link
    assert "try</th><td>1<" in html.unescape(body(task_mail))  # failed at once: not retried


def _spec_without_rule(folder: Path, rule_id: str) -> Path:
    """The shipped contract with one rule's block removed: its check still fires (the GX suites are
    generated from the shipped rules), and the stage that looks the rule up fails naming it."""
    folder.mkdir(parents=True)
    shutil.copy(SPEC_DIR / "forms.yaml", folder / "forms.yaml")
    text = (SPEC_DIR / "rules.yaml").read_text(encoding="utf-8")
    edited, found = re.subn(rf"^  - id: {rule_id}\n(?:    .*\n)*", "", text, count=1, flags=re.MULTILINE)
    assert found == 1
    (folder / "rules.yaml").write_text(edited, encoding="utf-8")
    return folder


@pytest.mark.soak  # a whole `hrss run` (about 140 s here): too costly for make test's budget
def test_a_failed_task_and_run_are_mailed(settings: Settings, dbt_manifest: Path, tmp_path: Path) -> None:
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    landing = tmp_path / "landing"
    landing.mkdir()
    shutil.copy(FIXTURES / "fail" / "C05" / "150206_2017.xlsx", landing / "150206_2017.xlsx")
    with zipfile.ZipFile(landing / "150206_2017.xlsx", "a") as archive:
        archive.comment = f"hrss alert test {uuid.uuid4()}".encode()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HRSS_"))}
    env.update(HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port),
               HRSS_SPEC_DIR=str(_spec_without_rule(tmp_path / "spec", "C05")),
               HRSS_ALERT_SMTP=f"127.0.0.1:{port}", HRSS_ALERT_TO=RECIPIENT)
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    with SmtpSink(port) as sink:
        hrss = str(Path(sys.executable).with_name("hrss"))
        result = subprocess.run([hrss, "run", "--landing", str(landing)], env=env, capture_output=True,
                                text=True, timeout=900, check=False,
                                cwd=settings.home)
        mails = sink.mails
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    run_id = re.search(r"jcpt_nightly run (\S+): failed", result.stdout).group(1)

    by_subject = {m["Subject"]: m for m in mails}
    task_mail = by_subject.get(f"[hrss] jcpt_nightly: task parse_and_check[0] failed (run {run_id})")
    run_mail = by_subject.get(f"[hrss] jcpt_nightly: run {run_id} failed")
    assert task_mail is not None and run_mail is not None, sorted(by_subject)
    for mail in (task_mail, run_mail):
        assert mail["X-Envelope-To"] == RECIPIENT and mail["To"] == RECIPIENT
        text = body(mail)
        assert "jcpt_nightly" in text and run_id in text
        assert "C05" in text, text  # the rule id, from the error line
        assert "KeyError" in text
        link = re.search(r"href='([^']+)'", text).group(1)
        # The task's log in the Airflow UI.
        assert link.startswith("http://127.0.0.1:") and "/dags/jcpt_nightly/runs/" in link
        assert link.rstrip("/").split("?")[0].endswith("/tasks/parse_and_check/mapped/0")
    assert len(mails) == 2, [m["Subject"] for m in mails]
