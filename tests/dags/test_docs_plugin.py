"""The Airflow UI links to the project's documents and a real Airflow API server serves them: dbt docs,
GX Data Docs, the latest summary.html and the feedback reports (plugin hrss_warehouse.airflow.docs_plugin).
The API server is the shared test Airflow (fixture ``airflow_server``), which the UI test drives too."""

from __future__ import annotations

import json
import urllib.request

import pytest

from hrss_warehouse.config import Settings
from hrss_warehouse.local import airflow_env


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.mark.slow
def test_the_api_server_serves_every_document_the_ui_links_to(settings: Settings,
                                                              airflow_server: str) -> None:
    from hrss_warehouse.check import gx_context

    gx_index = gx_context.build_data_docs()  # the real Data Docs of the suites
    assert gx_index.exists()
    # dbt docs need a built warehouse (tests/test_publish.py generates them); here only serving counts.
    (settings.docs_dir / "dbt").mkdir(parents=True, exist_ok=True)
    (settings.docs_dir / "dbt" / "index.html").write_text("<html>dbt docs of the published marts</html>")
    (settings.reports_dir / "feedback").mkdir(parents=True, exist_ok=True)
    (settings.reports_dir / "summary.html").write_text("<html>marts summary of the test run</html>")
    (settings.reports_dir / "feedback" / "150206_2017_JCPT-1.html").write_text("<html>feedback</html>")

    from hrss_warehouse.airflow import docs_plugin

    links = docs_plugin.links(airflow_server)
    expected = {"dbt docs": "dbt docs of the published marts", "GX Data Docs": "jcpt-1_v2017",
                "Marts summary": "marts summary of the test run",
                "Feedback reports": "150206_2017_JCPT-1.html"}
    assert set(links) == set(expected)
    for name, marker in expected.items():
        status, body = _get(links[name])
        assert status == 200, f"{name}: {links[name]} answered {status}"
        assert marker in body, f"{name}: {links[name]} lacks {marker!r}"

    # The UI's navigation gets a link to each page (the plugin's external views, through the REST API).
    login = urllib.request.Request(f"{airflow_server}/auth/token", method="POST", headers={
        "Content-Type": "application/json"}, data=json.dumps({
            "username": airflow_env.ADMIN_LOGIN, "password": airflow_env.admin_password(settings)}).encode())
    with urllib.request.urlopen(login, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    status, body = _get(f"{airflow_server}/api/v2/plugins", token)
    assert status == 200
    plugin = next(p for p in json.loads(body)["plugins"] if p["name"] == "hrss_docs")
    hrefs = {view["name"]: view["href"] for view in plugin["external_views"]}
    assert {name: f"{airflow_server}{href}" for name, href in hrefs.items()} == links
