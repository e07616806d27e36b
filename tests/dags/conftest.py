"""Fixtures for the DAG tests: the dbt manifest Cosmos renders from, the DAG folder as data, and one real
Airflow shared by the tests that need its API server."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagcheck import probe

from hrss_warehouse.config import DAGS_DIR, DBT_PROJECT_DIR, PROJECT_ROOT, Settings

# Tests here import airflow.sdk in-process: keep Airflow's home inside the test home, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(Path(os.environ.get("HRSS_TEST_HOME", PROJECT_ROOT / ".hrss-test"))
                                          .resolve() / "airflow"))


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The manifest `make install` writes with `dbt parse`; parsed here when a checkout lacks it."""
    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest.exists():
        if not (DBT_PROJECT_DIR / "dbt_project.yml").exists():
            pytest.skip("dbt_project/ is not there yet: the DAGs render their dbt tasks from its manifest")
        from hrss_warehouse.stages import transform

        transform.parse()
    return manifest


@pytest.fixture(scope="session")
def dag_report(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every DAG of dags/ described as data (one subprocess for the whole folder)."""
    return probe(tmp_path_factory.mktemp("dagbag"), "describe", str(DAGS_DIR))


AIRFLOW_SERVER = "airflow_server"
_airflow_running: dict[str, object] = {}  # while it runs: its settings and the environment it needs


def _uses_airflow_server(item: pytest.Item | None) -> bool:
    return item is not None and AIRFLOW_SERVER in getattr(item, "fixturenames", ())


@pytest.fixture(scope="session")
def airflow_server(settings: Settings) -> Iterator[str]:
    """One real Airflow of the test home (API server, scheduler, dag-processor, triggerer; the DAGs paused)
    at $HRSS_TEST_AIRFLOW_PORT, started once for every test that needs it: its base URL. Those tests run
    one after the other and Airflow stops after the last (hooks below), so no other test meets its
    scheduler on the shared metadata database, its port or its environment."""
    from hrss_warehouse.local import airflow_env

    port = int(os.environ.get("HRSS_TEST_AIRFLOW_PORT", "55497"))
    on_port = dataclasses.replace(settings, airflow_port=port)
    env = pytest.MonkeyPatch()
    env.setenv("HRSS_AIRFLOW_PORT", str(port))  # for the processes Airflow starts
    _airflow_running.update(settings=on_port, env=env)
    started = time.monotonic()
    try:
        airflow_env.start(on_port)
        print(f"\nAirflow up in {time.monotonic() - started:.0f} s")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop_airflow()


def _stop_airflow() -> None:
    from hrss_warehouse.local import airflow_env

    if _airflow_running:
        airflow_env.stop(_airflow_running.pop("settings"))
        _airflow_running.pop("env").undo()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that use the shared Airflow run together, where the first of them was collected."""
    users = [item for item in items if _uses_airflow_server(item)]
    if users:
        first = items.index(users[0])
        others = [item for item in items if not _uses_airflow_server(item)]
        items[:] = others[:first] + users + others[first:]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared Airflow after the last test that uses it, not at the end of the session."""
    if _uses_airflow_server(item) and not _uses_airflow_server(nextitem):
        _stop_airflow()
