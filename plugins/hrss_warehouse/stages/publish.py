"""Publish stage: swap the tested build schema into `marts` (blue/green), in one transaction.

dbt builds every marts model into the build schema (transform.BUILD_SCHEMA) and tests it there; the
last model, build_info, is built only when everything upstream passed. Publishing exchanges the
two schemas in one transaction: the build becomes `marts` and yesterday's `marts` becomes the next
build schema (the facts there are incremental: the next build rewrites only what changed since).
BI sees either yesterday's marts or today's, never a mix, and a failed build (no build_info)
leaves yesterday's in place. Privileges belong to the schema object, so bi_reader's grants move to
the new `marts` and are taken from the retired one inside the same transaction.

The same transaction appends the vintage of the published rollup figures (schema `vintage`, never
swapped): a `vintage.publication` row, and in `vintage.figure` every figure of
`mart_rollup_figures` that is new or whose value or status changed since the last vintage, plus a
withdrawn row for each figure no longer published. A figure's value as published on date D is its
latest row at D (`marts.mart_figure_vintages`); a failed swap appends nothing.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg import sql

from hrss_warehouse.config import BI_READER, TRANSFORMER, Settings
from hrss_warehouse.db import WarehouseError, connect, lock_holders, warehouse_lock
from hrss_warehouse.stages.transform import BUILD_RECORDS, BUILD_SCHEMA, MARKER_TABLE

PUBLISHED_SCHEMA = "marts"
RETIRED_SCHEMA = "marts_retired"
FIGURES_TABLE = "mart_rollup_figures"
_FIGURE_KEY = ("mart", "survey_year", "region_code", "platform_level", "funding_source", "indicator")
PUBLISH_WAIT_S = 600.0  # another publish (a dbt build ahead of it) takes minutes, not hours


class PublishError(RuntimeError):
    """Nothing was published; the message says why (the published marts are unchanged)."""


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def _marker(conn: psycopg.Connection, schema: str) -> tuple[str, datetime] | None:
    exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{MARKER_TABLE}",)).fetchone()[0]
    if exists is None:
        return None
    return conn.execute(sql.SQL("SELECT invocation_id, built_at FROM {}.{}").format(
        sql.Identifier(schema), sql.Identifier(MARKER_TABLE))).fetchone()


def publish(settings: Settings) -> dict:
    """Swap the build schema into `marts` once its build completed and passed every test.

    Returns what was published: invocation_id, built_at, the number of tables, and the
    build it replaced. Raises PublishError (marts untouched) when there is no complete build, when
    another publish holds the 'publish' lock for too long, or when BI queries hold the old marts
    past ``settings.lock_timeout_s`` (the message names the sessions holding them).
    """
    try:
        # Serialise publishers (two swaps at once would both rename `marts`) with the same advisory
        # lock as every other stage: a second publisher waits, then says who holds it.
        with warehouse_lock(settings, "publish", timeout_s=PUBLISH_WAIT_S):
            return _swap(settings)
    except WarehouseError as exc:
        raise PublishError(f"nothing was published: {exc}") from exc


def _swap(settings: Settings) -> dict:
    ident = sql.Identifier
    with connect(settings, role=TRANSFORMER) as conn:
        # a long BI query holds the old tables: wait for it, but not forever
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{settings.lock_timeout_s}s")))
        if not _schema_exists(conn, BUILD_SCHEMA):
            raise PublishError(
                f"no build to publish: schema {BUILD_SCHEMA} does not exist (run `hrss dbt build`)")
        marker = _marker(conn, BUILD_SCHEMA)
        if marker is None:
            raise PublishError(
                f"the build in {BUILD_SCHEMA} is incomplete or failed a test ({MARKER_TABLE} was not built); "
                f"the published marts are unchanged"
            )
        previous = _marker(conn, PUBLISHED_SCHEMA) if _schema_exists(conn, PUBLISHED_SCHEMA) else None
        try:
            has_published = _schema_exists(conn, PUBLISHED_SCHEMA)
            if has_published:
                conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    ident(PUBLISHED_SCHEMA), ident(RETIRED_SCHEMA)))
            conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                ident(BUILD_SCHEMA), ident(PUBLISHED_SCHEMA)))
            if has_published:
                # yesterday's marts become the next build schema: BI must not read a build in progress
                conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    ident(RETIRED_SCHEMA), ident(BUILD_SCHEMA)))
                conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(
                    ident(BUILD_SCHEMA), ident(BI_READER)))
                conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(
                    ident(BUILD_SCHEMA), ident(BI_READER)))
                conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} REVOKE SELECT ON TABLES FROM {}")
                             .format(ident(BUILD_SCHEMA), ident(BI_READER)))
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(
                    ident(BUILD_SCHEMA), ident(MARKER_TABLE)))
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                ident(PUBLISHED_SCHEMA), ident(BI_READER)))
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
                ident(PUBLISHED_SCHEMA), ident(BI_READER)))
            conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT SELECT ON TABLES TO {}").format(
                ident(PUBLISHED_SCHEMA), ident(BI_READER)))
            for record in BUILD_RECORDS:
                if conn.execute("SELECT to_regclass(%s)", (f"{PUBLISHED_SCHEMA}.{record}",)).fetchone()[0]:
                    conn.execute(sql.SQL("REVOKE ALL ON TABLE {}.{} FROM {}").format(
                        ident(PUBLISHED_SCHEMA), ident(record), ident(BI_READER)))
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (PUBLISHED_SCHEMA,)).fetchone()[0]
            publication_id, appended = _append_vintage(conn, marker[0])
            conn.commit()
        except psycopg.errors.LockNotAvailable as exc:
            conn.rollback()
            holders = lock_holders(settings, [PUBLISHED_SCHEMA, BUILD_SCHEMA])
            raise PublishError(f"the swap into {PUBLISHED_SCHEMA} waited {settings.lock_timeout_s} s "
                               f"(HRSS_LOCK_TIMEOUT_S) for sessions still reading the published marts and "
                               f"was rolled back: the lock is held by {holders}; the published marts are "
                               f"unchanged, publish again (`hrss publish` or the DAG's publish task) when "
                               f"they have finished") from exc
        except psycopg.Error as exc:
            conn.rollback()
            raise PublishError(f"the swap into {PUBLISHED_SCHEMA} failed and was rolled back: {exc}") from exc
    return {
        "schema": PUBLISHED_SCHEMA,
        "invocation_id": marker[0],
        "built_at": marker[1].isoformat(),
        "tables": tables,
        "replaced_invocation_id": previous[0] if previous else None,
        "publication_id": publication_id,
        "figures_appended": appended,
    }


def _append_vintage(conn: psycopg.Connection, invocation_id: str) -> tuple[int, int]:
    """Append what this publish changed to the vintages (inside the swap's transaction)."""
    publication_id = conn.execute(
        "INSERT INTO vintage.publication (published_at, invocation_id, figures_appended) "
        "VALUES (now(), %s, 0) RETURNING publication_id", (invocation_id,)).fetchone()[0]
    key = sql.SQL(", ").join(map(sql.Identifier, _FIGURE_KEY))
    same_key = sql.SQL(" AND ").join(
        sql.SQL("latest.{0} = published.{0}").format(sql.Identifier(column)) for column in _FIGURE_KEY)
    published_key = sql.SQL(", ").join(sql.SQL("published.{}").format(sql.Identifier(c)) for c in _FIGURE_KEY)
    latest_key = sql.SQL(", ").join(sql.SQL("latest.{}").format(sql.Identifier(c)) for c in _FIGURE_KEY)
    appended = conn.execute(sql.SQL("""
        WITH latest AS (
            SELECT DISTINCT ON ({key}) {key}, value, obs_status, withdrawn
            FROM vintage.figure ORDER BY {key}, publication_id DESC
        )
        INSERT INTO vintage.figure ({key}, publication_id, value, obs_status, withdrawn)
        SELECT {published_key}, %(publication)s, published.value, published.obs_status, false
        FROM {schema}.{figures} AS published
        LEFT JOIN latest ON {same_key}
        WHERE latest.mart IS NULL OR latest.withdrawn OR latest.value IS DISTINCT FROM published.value
            OR latest.obs_status IS DISTINCT FROM published.obs_status
        UNION ALL
        SELECT {latest_key}, %(publication)s, NULL, NULL, true
        FROM latest
        WHERE NOT latest.withdrawn
            AND NOT EXISTS (SELECT 1 FROM {schema}.{figures} AS published WHERE {same_key})
        """).format(key=key, published_key=published_key, latest_key=latest_key, same_key=same_key,
                    schema=sql.Identifier(PUBLISHED_SCHEMA), figures=sql.Identifier(FIGURES_TABLE)),
        {"publication": publication_id}).rowcount
    conn.execute("UPDATE vintage.publication SET figures_appended = %s WHERE publication_id = %s",
                 (appended, publication_id))
    return publication_id, appended
