"""Load: checked rows into raw.jcpt_*_rows with COPY, one transaction per submission, as hrss_loader.

Each submission's transaction deletes whatever an earlier load left for it, copies its rows, writes its
findings and footer contacts, and sets its outcome, so loading again changes nothing and a crash leaves
no submission half-loaded. Files of quarantined submissions move from archive/ to quarantine/ (and
back when a reprocess accepts them). Loads hold the advisory lock ``load`` (see ``warehouse_lock``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from hrss_warehouse.config import Settings
from hrss_warehouse.register import stored_file
from hrss_warehouse.spec import load_spec
from hrss_warehouse.warehouse import LOADER, WarehouseError, connect

log = logging.getLogger(__name__)

RAW_SQL = (Path(__file__).parent / "sql" / "raw.sql").read_text()
LOCK_NAMESPACE = 0x48525353  # "HRSS": the first key of every advisory lock the project takes
LOCK_POLL_S = 2.0
# Fault injection for the crash tests: after this many rows of a COPY the loader pauses (and says so in
# $HRSS_HOME/work/load_paused) so a test can kill -9 it while PostgreSQL shows the COPY in progress.
FAULT_ENV = "HRSS_FAULT_PAUSE_AFTER_ROWS"
COPY_CHUNK_ROWS = 5000


def ensure_schema(settings: Settings) -> None:
    """Create the registry and raw row tables as hrss_loader; safe to run any number of times."""
    spec = load_spec()
    with connect(settings, role=LOADER) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext('raw_schema'))", (LOCK_NAMESPACE,))
        conn.execute(RAW_SQL)
        for form in spec.forms:
            conn.execute(spec.raw_table_ddl(form))
        conn.commit()


@contextlib.contextmanager
def warehouse_lock(settings: Settings, name: str, *, wait: bool = True,
                   timeout_s: float = 3600.0) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock ``name`` (e.g. 'load', 'publish') for the duration.

    With ``wait`` False, or after ``timeout_s``, a held lock raises WarehouseError naming the holder.
    """
    try:
        conn = psycopg.connect(settings.dsn(), autocommit=True, connect_timeout=10,
                               application_name=f"hrss lock {name}")
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
            who = f"PostgreSQL backend {holder[0]} ({holder[1]}, since {holder[2]:%Y-%m-%d %H:%M:%S})" \
                if holder else "another session"
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


def _relocate(settings: Settings, conn, sha256: str, recorded: str, outcome: str) -> None:
    """Keep the file where its outcome says: quarantine/ when quarantined, archive/ otherwise."""
    current = stored_file(settings, recorded)
    folder = settings.quarantine_dir if outcome == "quarantined" else settings.archive_dir
    target = folder / current.parent.name / current.name
    if target == current or not current.exists():
        return
    conn.execute("UPDATE raw.submission SET archived_path = %s WHERE sha256 = %s", (str(target), sha256))
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"refusing to overwrite {target}")
    shutil.move(current, target)


def _copy_rows(cur, table: str, columns: list[str], rows_file: Path) -> int:
    pause_after = int(os.environ.get(FAULT_ENV, "0") or 0)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier("raw", table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    count = 0
    with rows_file.open("rb") as source, cur.copy(statement) as copy:
        chunk: list[bytes] = []
        for line in source:
            chunk.append(line)
            count += 1
            if len(chunk) >= COPY_CHUNK_ROWS or (pause_after and count == pause_after):
                copy.write(b"".join(chunk))
                chunk = []
            if pause_after and count == pause_after:
                marker = rows_file.parents[1] / "load_paused"
                marker.write_text(f"{os.getpid()} {table} {count}\n")
                while True:  # the crash test kills us here, mid-COPY
                    time.sleep(1)
        if chunk:
            copy.write(b"".join(chunk))
    return count


def load_batch(settings: Settings, batch_result: dict) -> dict:
    """Write one checked batch into raw; returns counts of rows and submissions by outcome."""
    spec = load_spec()
    ensure_schema(settings)
    batch_dir = Path(batch_result["batch_dir"])
    findings = json.loads((batch_dir / "findings.json").read_text())
    contacts = json.loads((batch_dir / "contacts.json").read_text())
    counts = {"accepted": 0, "quarantined": 0, "rows": 0}
    with warehouse_lock(settings, "load"), connect(settings, role=LOADER, autocommit=True) as conn:
        for entry in batch_result["submissions"]:
            sid = entry["submission_id"]
            with conn.transaction(), conn.cursor() as cur:
                current = cur.execute("SELECT sha256, archived_path, form FROM raw.submission "
                                      "WHERE submission_id = %s FOR UPDATE", (sid,)).fetchone()
                if current is None:
                    raise WarehouseError(
                        f"submission {sid} of batch {batch_result['batch']} is not registered")
                form = current[2]
                if form is not None:
                    table = spec.raw_table(form)
                    cur.execute(sql.SQL("DELETE FROM {} WHERE submission_id = %s").format(
                        sql.Identifier("raw", table)), (sid,))
                    if entry["outcome"] == "accepted" and entry["rows_file"]:  # a form may have no units
                        columns = ["submission_id", "source_row",
                                   *[c.name for c in spec.canonical_columns(form)], "quality_flags"]
                        counts["rows"] += _copy_rows(cur, table, columns, Path(entry["rows_file"]))
                cur.execute("DELETE FROM raw.submission_finding WHERE submission_id = %s", (sid,))
                for seq, f in enumerate(findings.get(str(sid), [])):
                    cur.execute(
                        "INSERT INTO raw.submission_finding (submission_id, seq, rule_id, form, sheet, "
                        "excel_row, column_code, value, params) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        (sid, seq, f["rule_id"], f["form"], f["sheet"], f["row"], f["column"],
                         f["value"], json.dumps(f["params"], ensure_ascii=False, default=str)))
                cur.execute("DELETE FROM raw.submission_contact WHERE submission_id = %s", (sid,))
                people = contacts.get(str(sid), {})
                for role in ("unit_head", "statistics_head", "preparer"):
                    if people.get(role) or (role == "preparer" and people.get("phone")):
                        phone = people.get("phone") if role == "preparer" else None
                        cur.execute("INSERT INTO raw.submission_contact (submission_id, role, name, phone) "
                                    "VALUES (%s,%s,%s,%s)", (sid, role, people.get(role), phone))
                cur.execute(
                    "UPDATE raw.submission SET outcome = %s, failed_rules = %s, soft_flags = %s, "
                    "form_version = %s, checked_at = now() WHERE submission_id = %s",
                    (entry["outcome"], entry["failed_rules"], entry["soft_flags"], entry["form_version"],
                     sid))
                _relocate(settings, cur, current[0], current[1], entry["outcome"])
            counts[entry["outcome"]] += 1
    return counts
