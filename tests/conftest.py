"""Shared fixtures: one real embedded PostgreSQL per test session, a clean warehouse per module.

The test warehouse lives under $HRSS_TEST_HOME (default ./.hrss-test, wiped at session start) on
port $HRSS_TEST_PG_PORT (default 55433), so tests never touch the demo's warehouse under ./.hrss.
With HRSS_WAREHOUSE_DSN set, tests use that external PostgreSQL instead.

Every test module that uses the warehouse starts from empty project schemas and empty landing,
archive and quarantine folders: modules build their own inputs (hand-written rows, fixture files,
generated returns) and must not see each other's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hrss_warehouse.config import PROJECT_ROOT, Settings

_active: dict[str, object] = {}


def _test_home() -> Path:
    return Path(os.environ.get("HRSS_TEST_HOME", PROJECT_ROOT / ".hrss-test")).resolve()


# Anything that imports Airflow in-process must find its home inside the test home, never ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", str(_test_home() / "airflow"))


def reset_warehouse(settings: Settings) -> None:
    """Drop every project schema and stored file, then bootstrap again."""
    from warehouse_reset import drop_project_schemas

    drop_project_schemas(settings)
    for folder in (settings.landing_dir, settings.archive_dir, settings.quarantine_dir,
                   settings.reports_dir, settings.home / "work"):
        shutil.rmtree(folder, ignore_errors=True)
    settings.ensure_dirs()


@pytest.fixture(scope="session")
def settings() -> Iterator[Settings]:
    from hrss_warehouse import warehouse

    home = _test_home()
    os.environ["HRSS_HOME"] = str(home)
    os.environ["HRSS_PG_PORT"] = os.environ.get("HRSS_TEST_PG_PORT", "55433")
    stale = Settings.from_env()
    if stale.embedded and stale.pgdata.exists():
        warehouse.stop(stale)
    shutil.rmtree(home, ignore_errors=True)
    current = Settings.from_env()
    warehouse.start(current)
    _active["settings"] = current
    yield current
    _active.clear()
    warehouse.stop(current)


@pytest.fixture
def empty_warehouse(settings: Settings) -> Settings:
    """Empty project schemas (the registry's included) for this one test, not just for its module."""
    reset_warehouse(settings)
    return settings


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Reset the warehouse before the first test of each module that uses it."""
    module = item.module.__name__ if item.module else None
    if "settings" not in item.fixturenames or _active.get("module") == module:
        return
    _active["module"] = module
    if "settings" in _active:
        reset_warehouse(_active["settings"])
