"""Only transient database errors reach Airflow's retries; everything else fails the task at once."""

from __future__ import annotations

import psycopg
import pytest

from hrss_warehouse import orchestration as orc


def _unreachable_warehouse() -> None:
    # A real connection failure: nothing listens on port 1 of the loopback.
    psycopg.connect("host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2")


def test_connection_failure_is_retried() -> None:
    with pytest.raises(psycopg.OperationalError):
        orc.stage(_unreachable_warehouse)()


def test_wrapped_connection_failure_is_retried() -> None:
    from hrss_warehouse.warehouse import WarehouseError

    def stage_body() -> None:
        try:
            _unreachable_warehouse()
        except psycopg.OperationalError as exc:
            raise WarehouseError("cannot connect to the warehouse") from exc

    with pytest.raises(WarehouseError):
        orc.stage(stage_body)()


def test_validation_failure_is_not_retried() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    def stage_body() -> None:
        raise ValueError("S03: header row does not match JCPT-2 v2017")

    with pytest.raises(AirflowFailException, match="S03"):
        orc.stage(stage_body)()


def test_sql_error_is_not_retried() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    assert not orc.is_transient(psycopg.errors.UndefinedTable("relation raw.x does not exist"))
    with pytest.raises(AirflowFailException):
        orc.stage(lambda: (_ for _ in ()).throw(psycopg.errors.UniqueViolation("dup")))()
    assert orc.is_transient(psycopg.errors.SerializationFailure("could not serialize"))
    assert orc.is_transient(psycopg.errors.AdminShutdown("terminating connection"))
