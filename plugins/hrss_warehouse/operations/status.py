"""`hrss status`: the state of the warehouse and its nightly load on one screen.

Each line is answered on its own: a part that cannot be read (the warehouse down, no run yet, marts never
published) says so on its line and the others are still shown.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from hrss_warehouse.config import AIRFLOW_DB, NIGHTLY_DAG_ID, Settings


@dataclass
class Line:
    label: str
    text: str


def _age(then: datetime, now: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    return (f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min")


def _warehouse(settings: Settings) -> tuple[bool, str]:
    from hrss_warehouse import db
    from hrss_warehouse.local import postgres

    if settings.embedded:
        state = postgres.status(settings)
        return state.running, state.detail if state.running else f"down: {state.detail}"
    try:
        with db.connect(settings) as conn:
            conn.execute("SELECT 1")
        return True, f"up (external: {settings.conn_params().get('host', '?')})"
    except Exception as exc:
        return False, f"down: {exc}"


def _registry(conn) -> str:
    from hrss_warehouse.stages import reference

    if conn.execute("SELECT to_regclass(%s)", (reference.VERSION_TABLE,)).fetchone()[0] is None:
        return "not loaded"
    row = conn.execute(f"SELECT registry_sha256, loaded_at FROM {reference.VERSION_TABLE}"
                       " ORDER BY loaded_at DESC LIMIT 1").fetchone()
    if row is None:
        return "not loaded"
    committed = reference.registry_sha256()
    state = ("the committed one" if row[0] == committed
             else f"committed is {committed[:12]}: the next run reloads")
    return f"{row[0][:12]} loaded {row[1]:%Y-%m-%d %H:%M} ({state})"


def _landing(settings: Settings) -> list[Line]:
    from hrss_warehouse.stages import land

    try:
        found = land.scan(settings, min_age_s=0)  # a file still too new to load is waiting all the same
    except land.LandingError as exc:
        return [Line("landing", str(exc))]
    lines = [Line("landing", f"{len(found.files)} file(s) waiting in {found.landing}")]
    # what the nightly will leave in place (uploads in progress, too new, links, ...), by reason
    reasons = Counter(entry.reason.split(":")[0] for entry in found.skipped)
    lines.extend(Line("", f"{count} left in place: {reason}") for reason, count in sorted(reasons.items()))
    return lines


def _last_run(settings: Settings, conn) -> str:
    from hrss_warehouse.db import connect

    try:
        with connect(settings, database=AIRFLOW_DB) as airflow:
            if airflow.execute("SELECT to_regclass('public.dag_run')").fetchone()[0] is None:
                return "none (Airflow never started)"
            run = airflow.execute(
                "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = %s"
                " ORDER BY coalesce(start_date, queued_at, run_after) DESC NULLS LAST LIMIT 1",
                (NIGHTLY_DAG_ID,)).fetchone()
    except Exception as exc:
        return f"unknown (the Airflow metadata database cannot be read: {exc})"
    if run is None:
        return f"none ({NIGHTLY_DAG_ID} has not run yet)"
    run_id, state, started, ended = run
    counts = conn.execute("SELECT sum(accepted), sum(quarantined) FROM ops.stage_run"
                          " WHERE dag_id = %s AND run_id = %s AND stage = 'load'",
                          (NIGHTLY_DAG_ID, run_id)).fetchone()
    when = f"started {started:%Y-%m-%d %H:%M %Z}" if started else "not started"
    took = f", took {_age(started, ended)}" if started and ended else ""
    loaded = f"; {counts[0]} accepted, {counts[1]} quarantined" if counts and counts[0] is not None else ""
    return f"{run_id}: {state}, {when}{took}{loaded}"


def _marts(conn, now: datetime) -> str:
    if conn.execute("SELECT to_regclass('marts.build_info')").fetchone()[0] is None:
        return "never published"
    built_at = conn.execute("SELECT built_at FROM marts.build_info").fetchone()[0]
    return f"published, built {built_at:%Y-%m-%d %H:%M %Z} ({_age(built_at, now)} old)"


def _missing(conn) -> str:
    if conn.execute("SELECT to_regclass('marts.mart_return_status')").fetchone()[0] is None:
        return "unknown (marts never published)"
    row = conn.execute(
        "SELECT survey_year, count(*) FILTER (WHERE status = 'missing'),"
        " count(*) FILTER (WHERE status = 'quarantined'), count(*) FROM marts.mart_return_status"
        " WHERE survey_year = (SELECT max(survey_year) FROM marts.mart_return_status)"
        " GROUP BY survey_year").fetchone()
    if row is None:
        return "no survey year has returns yet"
    year, missing, quarantined, counties = row
    return (f"survey year {year}: {missing} of {counties} counties missing, "
            f"{quarantined} with only quarantined files")


def _receipts(settings: Settings, now: datetime) -> str:
    from hrss_warehouse.stages import freshness, transform

    try:
        return freshness.check(settings, now).line()
    except transform.TransformError as exc:
        return f"unknown: {exc}"


def collect(settings: Settings, now: datetime | None = None) -> tuple[bool, list[Line]]:
    """Whether the warehouse is up, and the lines of the screen."""
    from hrss_warehouse.db import connect

    now = now or datetime.now(UTC)
    up, detail = _warehouse(settings)
    lines = [Line("warehouse", detail)]
    if up:
        with connect(settings) as conn:
            lines.append(Line("registry", _registry(conn)))
            lines.extend(_landing(settings))
            lines.append(Line("receipts", _receipts(settings, now)))
            lines.append(Line("last run", _last_run(settings, conn)))
            lines.append(Line("marts", _marts(conn, now)))
            lines.append(Line("missing", _missing(conn)))
    else:
        lines.extend(_landing(settings))
        lines.append(Line("(rest)", "not known while the warehouse is down"))
    return up, lines


def render(lines: list[Line]) -> str:
    width = max(len(line.label) for line in lines)
    return "\n".join(f"{line.label:<{width}}  {line.text}" for line in lines)
