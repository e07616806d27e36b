"""Shared fixtures: one real embedded PostgreSQL per test session.

The test warehouse lives under $HRSS_TEST_HOME (default ./.hrss-test, wiped at session start) on
port $HRSS_TEST_PG_PORT (default 55433), so tests never touch the demo's warehouse under ./.hrss.
With HRSS_WAREHOUSE_DSN set, tests use that external PostgreSQL instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from hrss_warehouse.config import PROJECT_ROOT, Settings


def _test_home() -> Path:
    return Path(os.environ.get("HRSS_TEST_HOME", PROJECT_ROOT / ".hrss-test")).resolve()


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
    yield current
    warehouse.stop(current)


@pytest.fixture
def admin_conn(settings: Settings):
    from hrss_warehouse.warehouse import connect

    with connect(settings) as conn:
        yield conn
