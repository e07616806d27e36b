"""The Airflow UI links to the project's documents and a real Airflow API server serves them: dbt docs,
GX Data Docs, the latest summary.html and the feedback reports (plugin hrss_warehouse.airflow.docs_plugin)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hrss_warehouse.config import Settings
from hrss_warehouse.local import airflow_env

# The plugin module imports Airflow: keep its home inside the test home, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("HRSS_TEST_HOME", ".hrss-test")).resolve()
                                          / "airflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


@pytest.fixture(scope="module")
def api_server(settings: Settings) -> Iterator[str]:
    """A real `airflow api-server` of the test home on a free port; its base URL."""
    airflow_env.migrate(settings)
    port = _free_port()
    env = {**airflow_env.prepare(settings), "AIRFLOW__API__PORT": str(port),
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
           "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/"}
    log = (settings.log_dir / "test-docs-api-server.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "api-server"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              cwd=settings.home, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not (_port_open(port) and _get(f"{base}/api/v2/monitor/health")[0] == 200):
            assert server.poll() is None, f"the API server exited; see {log.name}"
            assert time.monotonic() < deadline, f"the API server did not answer; see {log.name}"
            time.sleep(2)
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_the_api_server_serves_every_document_the_ui_links_to(settings: Settings, api_server: str) -> None:
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

    links = docs_plugin.links(api_server)
    expected = {"dbt docs": "dbt docs of the published marts", "GX Data Docs": "jcpt-1_v2017",
                "Marts summary": "marts summary of the test run",
                "Feedback reports": "150206_2017_JCPT-1.html"}
    assert set(links) == set(expected)
    for name, marker in expected.items():
        status, body = _get(links[name])
        assert status == 200, f"{name}: {links[name]} answered {status}"
        assert marker in body, f"{name}: {links[name]} lacks {marker!r}"

    # The UI's navigation gets a link to each page (the plugin's external views, through the REST API).
    login = urllib.request.Request(f"{api_server}/auth/token", method="POST", headers={
        "Content-Type": "application/json"}, data=json.dumps({
            "username": airflow_env.ADMIN_LOGIN, "password": airflow_env.admin_password(settings)}).encode())
    with urllib.request.urlopen(login, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    status, body = _get(f"{api_server}/api/v2/plugins", token)
    assert status == 200
    plugin = next(p for p in json.loads(body)["plugins"] if p["name"] == "hrss_docs")
    hrefs = {view["name"]: view["href"] for view in plugin["external_views"]}
    assert {name: f"{api_server}{href}" for name, href in hrefs.items()} == links
