"""BI guard rails: bi_reader's statement timeout, idle-in-transaction timeout and connection limit (role
settings of the bootstrap), and the lock timeout of dbt build and publish, which names the session that
holds the lock when they give up.

Each test applies small values through the real bootstrap (the settings of `Settings`) and puts the
defaults back afterwards. The tests that need a dbt build (publish and build giving up, a publish
waiting out an idle BI session) are soak tests; make test runs the quick ones without a build.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import transform_dataset as ds

from hrss_warehouse import db
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.stages import publish, transform

BI_APP = "bi guard-rail test"


@pytest.fixture
def guard_rails(settings: Settings) -> Iterator[Callable[..., Settings]]:
    """Bootstrap again with some guard-rail settings changed; the defaults come back at teardown."""
    def apply(**changes: int) -> Settings:
        changed = dataclasses.replace(settings, **changes)
        db.bootstrap(changed)
        return changed

    yield apply
    db.bootstrap(settings)


def bi_session(settings: Settings) -> psycopg.Connection:
    return psycopg.connect(settings.bi_reader_dsn(), application_name=BI_APP)


@pytest.fixture(scope="module")
def first_publish(settings: Settings) -> dict:
    with connect(settings) as conn:
        ds.create_inputs(conn)
    transform.build(settings, full_refresh=True)
    return publish.publish(settings)


def test_the_bootstrap_gives_bi_reader_its_defaults(settings: Settings) -> None:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "5min"
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "1min"
        limit = conn.execute("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'bi_reader'").fetchone()[0]
        assert limit == 20


def test_a_long_bi_query_is_cancelled(settings: Settings, guard_rails) -> None:
    guard_rails(bi_statement_timeout_s=1)
    with bi_session(settings) as conn:
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled,
                           match="canceling statement due to statement timeout"):
            conn.execute("SELECT pg_sleep(30)")
        assert time.monotonic() - started < 10


def test_the_connection_past_the_limit_is_refused_while_the_loader_connects(settings: Settings,
                                                                             guard_rails) -> None:
    guard_rails(bi_connection_limit=2)
    first, second = bi_session(settings), bi_session(settings)
    try:
        with pytest.raises(psycopg.OperationalError, match='too many connections for role "bi_reader"'):
            bi_session(settings)
        with connect(settings, role=LOADER) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == LOADER
    finally:
        first.close()
        second.close()


def _holder_pattern(conn: psycopg.Connection) -> str:
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    return (rf"held by PostgreSQL backend {pid} \(user bi_reader, application '{BI_APP}', "
            r"idle in transaction since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d\)")


def test_an_idle_bi_transaction_is_ended_at_its_timeout(settings: Settings, guard_rails) -> None:
    """The quick variant of the soak tests below (no dbt build): the session and its locks are gone."""
    guard_rails(bi_idle_in_transaction_timeout_s=2)
    with bi_session(settings) as bi:
        pid = bi.execute("SELECT pg_backend_pid()").fetchone()[0]  # psycopg leaves the transaction open
        time.sleep(4)
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout,
                           match=re.escape("terminating connection due to idle-in-transaction timeout")):
            bi.execute("SELECT 1").fetchone()
    with connect(settings) as conn:
        assert not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()



def _published_build(settings: Settings) -> list[tuple]:
    """The published build's invocation id (its record, which BI may not read)."""
    with connect(settings) as conn:
        return conn.execute("SELECT invocation_id FROM marts.build_info").fetchall()

@pytest.mark.soak
def test_publish_gives_up_naming_the_idle_bi_session(settings: Settings, first_publish: dict,
                                                     guard_rails) -> None:
    patient = guard_rails(lock_timeout_s=2)  # the idle timeout stays at its default (1 min)
    transform.build(settings)
    with bi_session(settings) as bi:  # psycopg opens a transaction and keeps it open: idle in transaction
        bi.execute("SELECT count(*) FROM mart_return_status").fetchall()
        published = _published_build(settings)
        started = time.monotonic()
        with pytest.raises(publish.PublishError, match=_holder_pattern(bi)):
            publish.publish(patient)
        assert time.monotonic() - started < 30
        assert _published_build(settings) == published
    assert publish.publish(settings)["replaced_invocation_id"] == published[0][0]


@pytest.mark.soak
def test_a_build_gives_up_naming_the_idle_bi_session(settings: Settings, first_publish: dict,
                                                     guard_rails) -> None:
    """Yesterday's marts become the build schema at publish; a BI transaction still open on them holds
    the tables the next build replaces."""
    patient = guard_rails(lock_timeout_s=2)
    transform.build(settings)
    with bi_session(settings) as bi:
        bi.execute("SELECT count(*) FROM mart_coverage").fetchone()
        publish.publish(settings)  # the table bi read is now in the build schema
        started = time.monotonic()
        with pytest.raises(transform.TransformError, match=r"dbt build gave up after waiting 2 s .*"
                           + _holder_pattern(bi)):
            transform.build(patient, select="mart_coverage")
        assert time.monotonic() - started < 120
    transform.build(patient, select="mart_coverage")  # the session gone, the same build passes


@pytest.mark.soak
def test_an_idle_bi_transaction_neither_hangs_publish_nor_outlives_its_timeout(settings: Settings,
                                                                             first_publish: dict,
                                                                             guard_rails) -> None:
    current = guard_rails(bi_idle_in_transaction_timeout_s=3, lock_timeout_s=60)
    transform.build(current)
    bi = bi_session(current)
    try:
        bi.execute("SELECT count(*) FROM mart_return_status").fetchall()
        pid = bi.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = time.monotonic()
        published = publish.publish(current)  # waits for the BI session's lock until its timeout ends it
        waited = time.monotonic() - started
        assert 2 < waited < 30, f"publish waited {waited:.1f} s"
        with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout,
                           match=re.escape("terminating connection due to idle-in-transaction timeout")):
            bi.execute("SELECT 1").fetchone()
    finally:
        bi.close()
    with connect(settings) as conn:
        assert not conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    assert _published_build(settings) == [(published["invocation_id"],)]
