"""The warehouse client every stage imports: connections as a stage role, advisory locks, the idempotent
bootstrap of databases, schemas and roles, and the DDL of the raw schema.

Running the embedded server is ``local.postgres``'s job; this module works as well on an external
PostgreSQL (``HRSS_WAREHOUSE_DSN``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator

import psycopg
from psycopg import sql

from hrss_warehouse.config import AIRFLOW_DB, LOADER, SQL_DIR, WAREHOUSE_DB, Settings
from hrss_warehouse.spec import load_spec

log = logging.getLogger(__name__)

MAINTENANCE_DB = "postgres"
LOCK_NAMESPACE = 0x48525353  # "HRSS": the first key of every advisory lock the project takes
LOCK_POLL_S = 2.0


class WarehouseError(RuntimeError):
    """The warehouse cannot be reached or started; the message says what to do."""


@contextlib.contextmanager
def connect(settings: Settings, role: str | None = None, *, autocommit: bool = False,
            database: str = WAREHOUSE_DB) -> Iterator[psycopg.Connection]:
    """A connection to the warehouse, acting as ``role`` (SET ROLE) when given."""
    try:
        conn = psycopg.connect(settings.dsn(database), autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        hint = ("check HRSS_WAREHOUSE_DSN" if not settings.embedded
                else "start it with `hrss warehouse start`")
        raise WarehouseError(f"cannot connect to the warehouse ({hint}): {str(exc).strip()}") from exc
    try:
        if role:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
            if not autocommit:
                conn.commit()
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def warehouse_lock(settings: Settings, name: str, *, wait: bool = True,
                   timeout_s: float = 3600.0) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock ``name`` (e.g. 'load', 'publish') for the duration.

    With ``wait`` False, or after ``timeout_s``, a held lock raises WarehouseError naming the holder.
    """
    try:
        conn = psycopg.connect(settings.dsn(), autocommit=True, connect_timeout=10,
                               application_name=f"hrss {name} lock, pid {os.getpid()}")
    except psycopg.OperationalError as exc:
        raise WarehouseError(f"cannot connect to the warehouse to take the '{name}' lock: {exc}") from exc
    try:
        started = time.monotonic()
        warned = False
        while not conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                               (LOCK_NAMESPACE, name)).fetchone()[0]:
            holder = conn.execute(
                "SELECT a.pid, a.application_name, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.classid = %s "
                "AND l.objid::bigint = (hashtext(%s)::bigint & 4294967295) AND l.granted LIMIT 1",
                (LOCK_NAMESPACE, name)).fetchone()
            # the holder's session start, with its UTC offset: the reader may sit in another zone
            who = (f"PostgreSQL backend {holder[0]} ({holder[1]}, connected since "
                   f"{holder[2].isoformat(sep=' ', timespec='seconds')})" if holder else "another session")
            if not wait or time.monotonic() - started > timeout_s:
                raise WarehouseError(f"the warehouse '{name}' lock is held by {who}: another {name} is "
                                     "running; try again when it has finished")
            if not warned:
                log.warning("waiting for the '%s' lock held by %s", name, who)
                warned = True
            time.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_NAMESPACE, name))
    finally:
        conn.close()


def lock_holders(settings: Settings, schemas: list[str]) -> str:
    """Who holds locks on tables of ``schemas``: pid, user, application, since when.

    Said when a stage gives up waiting for a lock (lock_timeout), so the operator knows whom to ask or
    which session to end. Asked as the administrative login: a stage role sees no other user's session.
    """
    with connect(settings, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT DISTINCT a.pid, a.usename, a.application_name, coalesce(a.xact_start, a.backend_start), "
            "a.state FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.granted AND n.nspname = ANY(%s) AND l.pid <> pg_backend_pid() ORDER BY 1",
            (schemas,)).fetchall()
    if not rows:
        return "a session that has ended since"
    return "; ".join(f"PostgreSQL backend {pid} (user {user}, application '{app}', {state} "
                     f"since {since.isoformat(sep=' ', timespec='seconds')})"
                     for pid, user, app, since, state in rows)

BOOTSTRAP_SQL = (SQL_DIR / "bootstrap.sql").read_text()
OPS_SQL = (SQL_DIR / "ops.sql").read_text()


def bootstrap(settings: Settings) -> None:
    """Create the databases, schemas and roles; safe to run any number of times."""
    # The embedded server starts with only the maintenance database; an external DSN names its own.
    first_db = MAINTENANCE_DB if settings.embedded else WAREHOUSE_DB
    with connect(settings, autocommit=True, database=first_db) as conn:
        for database in (WAREHOUSE_DB, AIRFLOW_DB):
            if settings.embedded or database == AIRFLOW_DB:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with connect(settings) as conn:
        # One bootstrap at a time: two concurrent CREATE ROLE IF NOT EXISTS would race.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('hrss_bootstrap'))")
        conn.execute(BOOTSTRAP_SQL)
        conn.execute(OPS_SQL)
        conn.execute(sql.SQL("ALTER ROLE bi_reader WITH LOGIN PASSWORD {} CONNECTION LIMIT {}").format(
            sql.Literal(settings.bi_password), sql.Literal(settings.bi_connection_limit)))
        for setting, seconds in (("statement_timeout", settings.bi_statement_timeout_s),
                                 ("idle_in_transaction_session_timeout",
                                  settings.bi_idle_in_transaction_timeout_s)):
            conn.execute(sql.SQL("ALTER ROLE bi_reader SET {} = {}").format(
                sql.Identifier(setting), sql.Literal(f"{seconds}s")))
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(AIRFLOW_DB)))
        conn.commit()


RAW_SQL = (SQL_DIR / "raw.sql").read_text()


def ensure_raw_schema(settings: Settings) -> None:
    """Create the registry and raw row tables as hrss_loader; safe to run any number of times."""
    spec = load_spec()
    with connect(settings, role=LOADER) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext('raw_schema'))", (LOCK_NAMESPACE,))
        conn.execute(RAW_SQL)
        for form in spec.forms:
            conn.execute(spec.raw_table_ddl(form))
        conn.commit()
