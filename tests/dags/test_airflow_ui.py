"""The data engineer's path through the Airflow UI, in headless Chromium: log in, open jcpt_reprocess,
start a Backfill of one survey year through the Trigger dialog with dry_run on, wait for it to finish,
and read the reprocess result in the run's task log. One stored 2017 return, so the result counts it.
Screenshots in $HRSS_HOME/reports/screens/."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import pytest
from browser import browser, chromium_or_skip

from hrss_warehouse.config import PROJECT_ROOT, Settings
from hrss_warehouse.local import airflow_env

FIXTURE = PROJECT_ROOT / "tests" / "fixtures" / "pass" / "good" / "150206_2017.xlsx"
YEAR = 2017
# The yearly run of survey year 2017 has its logical date at 2017-01-01 00:00 Asia/Shanghai, which is
# 2016-12-31 16:00 UTC (the UI's time zone): a range around it selects that run and no other.
FROM, TO = ("2016/12/31", "12:00"), ("2017/01/01", "12:00")
WAIT_S = 900


def _api(base: str, settings: Settings, path: str) -> dict | None:
    """GET from Airflow's REST API; None when the busy server did not answer in time (poll again)."""
    body = json.dumps({"username": airflow_env.ADMIN_LOGIN, "password": airflow_env.admin_password(settings)})
    login = urllib.request.Request(f"{base}/auth/token", data=body.encode(), method="POST",
                                   headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(login, timeout=120) as answer:
            token = json.loads(answer.read())["access_token"]
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())
    except TimeoutError:
        return None


def _type_datetime(page, field, when: tuple[str, str]) -> None:
    """The dialog's date-time field: a popover with a date box (YYYY/MM/DD) and a time box (HH:mm)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field.click()
    for placeholder, text in zip(("YYYY/MM/DD", "HH:mm"), when, strict=True):
        box = page.wait_for(f"the {placeholder} box", lambda placeholder=placeholder: [
            e for e in page.driver.find_elements(By.CSS_SELECTOR, f'input[placeholder="{placeholder}"]')
            if e.is_displayed()])[0]
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(text)
    box.send_keys(Keys.ESCAPE)


@pytest.fixture
def airflow(settings: Settings, airflow_server: str) -> str:
    """The shared test Airflow (tests/dags/conftest.py), with one 2017 return stored in the warehouse."""
    chromium_or_skip()
    from hrss_warehouse import pipeline
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    landing = settings.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    (landing / FIXTURE.name).write_bytes(FIXTURE.read_bytes())
    pipeline.ingest_folder(settings, landing)
    return airflow_server


def test_a_dry_run_backfill_started_in_the_ui_reports_its_result(airflow: str, settings: Settings) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    deadline = time.monotonic() + WAIT_S
    while "jcpt_reprocess" not in {d["dag_id"] for d in (_api(airflow, settings, "/api/v2/dags") or
                                                          {"dags": []})["dags"]}:
        assert time.monotonic() < deadline, "the dag-processor never registered jcpt_reprocess"
        time.sleep(3)
    with browser(settings.reports_dir / "screens") as page:
        driver = page.driver
        driver.get(f"{airflow}/")
        page.wait_for("the login form", lambda: driver.find_elements(By.NAME, "username"))
        driver.find_element(By.NAME, "username").send_keys(airflow_env.ADMIN_LOGIN)
        driver.find_element(By.NAME, "password").send_keys(airflow_env.admin_password(settings) + Keys.ENTER)
        page.wait_for("the home page", lambda: "/auth/login" not in driver.current_url)
        driver.get(f"{airflow}/dags/jcpt_reprocess")
        trigger = page.wait_for("the Trigger button", lambda: [
            b for b in driver.find_elements(By.CSS_SELECTOR, "button") if b.text.strip() == "Trigger"])
        trigger[0].click()
        page.wait_for("the Backfill choice", lambda: driver.find_elements(
            By.XPATH, "//*[normalize-space(text())='Backfill']"))[0].click()
        dates = page.wait_for("the date range (From, To)", lambda: [
            e for e in driver.find_elements(By.CSS_SELECTOR, "[data-testid=datetime-input]")
            if e.is_displayed()])
        _type_datetime(page, dates[0], FROM)
        _type_datetime(page, dates[1], TO)
        # All Runs: the year is reprocessed even when an earlier run of it exists.
        driver.find_element(By.XPATH, "//label[.//*[normalize-space(text())='All Runs']]").click()
        dry_run = driver.find_element(By.NAME, "element_dry_run")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", dry_run)
        dry_run.find_element(By.XPATH, "./ancestor::label[1]").click()
        page.wait_for("dry_run switched on", dry_run.is_selected, timeout_s=10)
        # Airflow 3's backfill dialog sends the form's params only with this box ticked; without it the
        # runs get the defaults (dry_run off) whatever the form shows.
        override = driver.find_element(
            By.XPATH, "//label[.//*[normalize-space(text())='Override parameters on existing runs']]")
        override.click()
        page.wait_for("the override box ticked", lambda: override.find_element(
            By.CSS_SELECTOR, "input[type=checkbox]").is_selected(), timeout_s=10)
        page.shot("airflow-backfill-dialog")
        run_backfill = [b for b in driver.find_elements(By.CSS_SELECTOR, "button")
                        if b.text.strip() == "Run Backfill"]
        assert run_backfill and run_backfill[0].is_enabled(), "the dialog does not offer Run Backfill"
        clicked_at = datetime.now(UTC)
        run_backfill[0].click()

        def finished() -> dict | None:
            path = "/api/v2/dags/jcpt_reprocess/dagRuns?run_type=backfill&order_by=-start_date&limit=1"
            runs = (_api(airflow, settings, path) or {"dag_runs": []})["dag_runs"]
            fresh = [r for r in runs if r["start_date"]
                     and datetime.fromisoformat(r["start_date"].replace("Z", "+00:00")) > clicked_at]
            return fresh[0] if fresh and fresh[0]["state"] in ("success", "failed") else None

        run = page.wait_for("the backfill run to finish", finished, timeout_s=WAIT_S)
        assert run["state"] == "success", run
        assert run["conf"].get("dry_run") is True, run["conf"]
        driver.get(f"{airflow}/dags/jcpt_reprocess/runs/{run['dag_run_id']}/tasks/reprocess")
        log = page.wait_for("the reprocess result in the task log", lambda: [
            line for line in driver.find_element(By.TAG_NAME, "body").text.splitlines()
            if "Returned value was" in line or ("survey_year" in line and str(YEAR) in line)])
        page.shot("airflow-backfill-result")
    result = " ".join(log)
    assert f"'survey_year': {YEAR}" in result and "'dry_run': True" in result, result
    assert "'changed': []" in result, result  # today's rules accept the stored return as before
