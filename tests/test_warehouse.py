"""The embedded warehouse: start is idempotent, survives a kill -9, and `url` prints only a DSN."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from hrss_warehouse import db
from hrss_warehouse.config import Settings
from hrss_warehouse.local import postgres


def _hrss(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hrss_warehouse.cli", *args],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=120)


def test_start_twice_is_harmless(settings: Settings) -> None:
    assert "already running" in postgres.start(settings)
    assert postgres.status(settings).running


def test_url_prints_only_a_dsn(settings: Settings) -> None:
    result = _hrss("warehouse", "url")
    assert result.returncode == 0
    assert result.stdout.strip() == settings.dsn()
    assert len(result.stdout.strip().splitlines()) == 1
    with psycopg.connect(result.stdout.strip()) as conn:
        assert conn.execute("select current_database()").fetchone()[0] == "hrss"


def test_listens_on_loopback_tcp(settings: Settings) -> None:
    if not settings.embedded:
        pytest.skip("external warehouse")
    with psycopg.connect(settings.dsn()) as conn:
        row = conn.execute("select inet_server_addr()::text, inet_server_port()").fetchone()
    assert row == ("127.0.0.1/32", settings.port) or row == ("127.0.0.1", settings.port)


def test_restart_after_kill_9(settings: Settings) -> None:
    if not settings.embedded:
        pytest.skip("external warehouse")
    pid = int((settings.pgdata / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while postgres.status(settings).running and time.monotonic() < deadline:
        time.sleep(0.1)
    state = postgres.status(settings)
    assert not state.running and "dead" in state.detail
    result = _hrss("warehouse", "start")
    assert result.returncode == 0, result.stderr
    assert postgres.status(settings).running
    with db.connect(settings) as conn:
        assert conn.execute("select 1").fetchone() == (1,)


def test_stop_then_start(settings: Settings) -> None:
    if not settings.embedded:
        pytest.skip("external warehouse")
    assert _hrss("warehouse", "stop").returncode == 0
    stopped = _hrss("warehouse", "status")
    assert stopped.returncode == 3 and "stopped" in stopped.stdout
    down = _hrss("warehouse", "url")  # needs no server
    assert down.returncode == 0
    assert postgres.start(settings).startswith("warehouse started")


def test_connect_to_stopped_warehouse_says_what_to_do(settings: Settings) -> None:
    if not settings.embedded:
        pytest.skip("external warehouse")
    postgres.stop(settings)
    try:
        with pytest.raises(db.WarehouseError, match="hrss warehouse start"):
            db.connect(settings).__enter__()
    finally:
        postgres.start(settings)


def test_server_does_not_run_as_root(settings: Settings) -> None:
    if not settings.embedded or os.geteuid() != 0:
        pytest.skip("only meaningful for the embedded server started as root")
    import psutil

    pid = int((settings.pgdata / "postmaster.pid").read_text().splitlines()[0])
    assert psutil.Process(pid).username() == postgres.SERVICE_USER
