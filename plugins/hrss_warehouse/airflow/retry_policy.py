"""Airflow's retry policy for every task of the project: only transient database errors are retried.

A task lost with its Celery worker (killed, machine gone) raised no exception, so this policy is not
asked: the scheduler finds it by its missing heartbeat and retries it while it has retries left
(``tests/dags/test_celery_nightly.py``).

Imported by the DAG files through ``orchestration.default_args()`` (never by ``hrss`` before Airflow's
environment is set: importing ``airflow.sdk`` reads Airflow's configuration).
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.sdk import RetryDecision, RetryPolicy


def is_transient(exc: BaseException) -> bool:
    """Whether a failure is the warehouse being unreachable or busy, which a retry can fix."""
    psycopg = sys.modules.get("psycopg")  # no psycopg loaded means no psycopg error to look for
    transient: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    if psycopg is not None:
        # OperationalError covers lost connections, admin shutdown, deadlocks and serialization failures.
        transient += (psycopg.OperationalError,)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, transient):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class TransientDatabaseErrorsOnly(RetryPolicy):
    """Retry a warehouse that blinked (restart, failover, dropped connection), also when a stage wrapped
    the database error in its own; fail at once on anything else (a validation failure, a SQL error).

    A class of our own rather than ``ExceptionRetryPolicy``: its rules match the raised exception only,
    and a stage's ``WarehouseError`` carries the connection error as its cause.
    """

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:
        if is_transient(exception):
            return RetryDecision.retry(reason=f"transient database error ({type(exception).__name__})")
        return RetryDecision.fail(reason=f"not a transient database error ({type(exception).__name__}): "
                                         "retrying cannot fix it")

    def serialize(self) -> dict[str, Any]:
        return {"__type": type(self).__name__}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> TransientDatabaseErrorsOnly:
        return cls()
