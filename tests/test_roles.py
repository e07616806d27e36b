"""Least privilege: each stage role writes only where it belongs; bi_reader reads marts only."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from hrss_warehouse import config, db
from hrss_warehouse.config import Settings


@pytest.fixture(scope="module")
def probe_tables(settings: Settings):
    with db.connect(settings, config.LOADER) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS raw.role_probe (v int)")
        conn.commit()
    with db.connect(settings, config.TRANSFORMER) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS marts.role_probe AS SELECT 42 AS v")
        conn.execute("CREATE TABLE IF NOT EXISTS staging.role_probe (v int)")
        conn.commit()
    yield
    with db.connect(settings) as conn:
        for table in ("raw.role_probe", "marts.role_probe", "staging.role_probe"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.commit()


def test_bootstrap_is_idempotent(settings: Settings) -> None:
    db.bootstrap(settings)
    db.bootstrap(settings)
    with db.connect(settings) as conn:
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace")}
    assert {"raw", "reference", "staging", "intermediate", "marts"} <= schemas


def test_bi_reader_logs_in_with_its_password_and_reads_marts(settings: Settings, probe_tables) -> None:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        assert conn.execute("select current_user").fetchone()[0] == "bi_reader"
        assert conn.execute("select v from role_probe").fetchone()[0] == 42  # search_path = marts


def test_bi_reader_needs_the_right_password(settings: Settings) -> None:
    wrong = settings.bi_reader_dsn().replace(settings.bi_password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)


@pytest.mark.parametrize("table", ["raw.role_probe", "staging.role_probe"])
def test_bi_reader_cannot_read_outside_marts(settings: Settings, probe_tables, table: str) -> None:
    with psycopg.connect(settings.bi_reader_dsn()) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(f"select * from {table}")


def test_bi_reader_cannot_write_marts(settings: Settings, probe_tables) -> None:
    with psycopg.connect(settings.bi_reader_dsn()) as conn, pytest.raises(
            (errors.InsufficientPrivilege, errors.ReadOnlySqlTransaction)):
        conn.execute("insert into marts.role_probe values (1)")


def test_bi_reader_cannot_reach_airflow_metadata(settings: Settings) -> None:
    if not settings.embedded:
        pytest.skip("external warehouse")
    dsn = settings.bi_reader_dsn().rsplit("/", 1)[0] + "/airflow"
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(dsn)


@pytest.mark.parametrize(("role", "statement"), [
    (config.LOADER, "create table marts.loader_intrusion (v int)"),
    (config.LOADER, "create table staging.loader_intrusion (v int)"),
    (config.TRANSFORMER, "insert into raw.role_probe values (1)"),
    (config.TRANSFORMER, "create table raw.transformer_intrusion (v int)"),
])
def test_stage_roles_cannot_write_elsewhere(settings: Settings, probe_tables, role: str,
                                            statement: str) -> None:
    with db.connect(settings, role) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_transformer_reads_what_the_loader_wrote(settings: Settings, probe_tables) -> None:
    with db.connect(settings, config.TRANSFORMER) as conn:
        assert conn.execute("select count(*) from raw.role_probe").fetchone() == (0,)
