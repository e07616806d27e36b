"""Only transient database errors reach Airflow's retries (the retry policy of every task); everything
else fails the task at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hrss_warehouse.config import Settings
from hrss_warehouse.retry_policy import TransientDatabaseErrorsOnly, is_transient

POLICY = TransientDatabaseErrorsOnly()


def _unreachable_warehouse() -> None:
    # A real connection failure: nothing listens on port 1 of the loopback.
    psycopg.connect("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2")


def _raised(body) -> BaseException:
    try:
        body()
    except BaseException as exc:  # the exception is the value under test
        return exc
    raise AssertionError("the body raised nothing")


def _action(exc: BaseException) -> str:
    return POLICY.evaluate(exc, try_number=1, max_tries=4).action.value


def test_connection_failure_is_retried() -> None:
    assert _action(_raised(_unreachable_warehouse)) == "retry"


def test_wrapped_connection_failure_is_retried() -> None:
    from hrss_warehouse.warehouse import WarehouseError

    def stage_body() -> None:
        try:
            _unreachable_warehouse()
        except psycopg.OperationalError as exc:
            raise WarehouseError("cannot connect to the warehouse") from exc

    assert _action(_raised(stage_body)) == "retry"


def test_validation_failure_is_not_retried() -> None:
    assert _action(ValueError("S03: header row does not match JCPT-2 v2017")) == "fail"


def test_sql_error_is_not_retried() -> None:
    assert not is_transient(psycopg.errors.UndefinedTable("relation raw.x does not exist"))
    assert _action(psycopg.errors.UniqueViolation("dup")) == "fail"
    assert is_transient(psycopg.errors.SerializationFailure("could not serialize"))
    assert is_transient(psycopg.errors.AdminShutdown("terminating connection"))


@pytest.mark.slow
def test_a_real_run_retries_the_blink_and_never_the_validation_failure(settings: Settings,
                                                                         tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    counters = tmp_path / "attempts"
    counters.mkdir()
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("retry_run.py")), str(counters)],
                            env=env, capture_output=True, text=True, timeout=600, check=False,
                            cwd=settings.home)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    seen = json.loads((tmp_path / "result.json").read_text())
    assert seen["attempts"] == {"validation_failure": 1, "warehouse_blinks_once": 2}
    assert seen["states"] == {"validation_failure": "failed", "warehouse_blinks_once": "success"}
