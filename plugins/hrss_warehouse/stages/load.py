"""Load: checked rows into raw.jcpt_*_rows with COPY, one transaction per checked batch, as hrss_loader.

The transaction deletes whatever an earlier load left for the batch's submissions, copies their rows,
writes their findings and footer contacts, and sets their outcomes, so loading again changes nothing and
a crash leaves no submission half-loaded. Files of quarantined submissions move from archive/ to
quarantine/ (and back when a reprocess accepts them). Loads hold the advisory lock ``load``
(``warehouse.warehouse_lock``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from pathlib import Path

import psycopg
from psycopg import sql

from hrss_warehouse import db, files, submissions
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.contracts import CheckedBatch, LoadCounts
from hrss_warehouse.db import WarehouseError, connect, warehouse_lock
from hrss_warehouse.files import stored_file
from hrss_warehouse.spec import WAREHOUSE_FAILURE, load_spec

log = logging.getLogger(__name__)

# Fault injection for the crash tests: after this many rows of a COPY the loader pauses (and says so in
# $HRSS_HOME/work/load_paused) so a test can kill -9 it while PostgreSQL shows the COPY in progress.
FAULT_ENV = "HRSS_FAULT_PAUSE_AFTER_ROWS"
COPY_CHUNK_ROWS = 5000  # rows per write when the crash tests pause the COPY after a given row
COPY_BLOCK_BYTES = 1 << 20


def _relocation(settings: Settings, recorded: str, outcome: str) -> tuple[Path, Path] | None:
    """(where the file is, where its outcome says it belongs) when it must move: quarantine/ when
    quarantined, archive/ otherwise."""
    current = stored_file(settings, recorded)
    folder = settings.quarantine_dir if outcome == "quarantined" else settings.archive_dir
    target = folder / current.parent.name / current.name
    return None if target == current or not current.exists() else (current, target)


def _copy_rows(cur, table: str, columns: list[str], rows_file: dict) -> int:
    """COPY one rows file (``path``) or the lines of one (``data``) into raw.``table``."""
    pause_after = int(os.environ.get(FAULT_ENV, "0") or 0)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier("raw", table), sql.SQL(", ").join(sql.Identifier(c) for c in columns))
    count = 0
    with (Path(rows_file["path"]).open("rb") if "path" in rows_file else io.BytesIO(rows_file["data"])
          ) as source, cur.copy(statement) as copy:
        if not pause_after:  # the file as it is, in large blocks (every row ends with a line feed)
            while block := source.read(COPY_BLOCK_BYTES):
                copy.write(block)
                count += block.count(b"\n")
            return count
        chunk: list[bytes] = []
        for line in source:
            chunk.append(line)
            count += 1
            if len(chunk) >= COPY_CHUNK_ROWS or (pause_after and count == pause_after):
                copy.write(b"".join(chunk))
                chunk = []
            if pause_after and count == pause_after and "path" in rows_file:
                marker = Path(rows_file["path"]).parents[1] / "load_paused"
                marker.write_text(f"{os.getpid()} {table} {count}\n")
                while True:  # the crash test kills us here, mid-COPY
                    time.sleep(1)
        if chunk:
            copy.write(b"".join(chunk))
    return count


def load_batch(settings: Settings, batch_result: CheckedBatch) -> LoadCounts:
    """Write one checked batch into raw in one transaction; returns counts of rows and submissions by outcome.

    Set-based: one DELETE and one COPY per table for the whole batch, so a national year is a few dozen
    statements, not tens of thousands. Files move between archive/ and quarantine/ after the commit
    (``stored_file`` finds a file at either place, so a crash in between only delays the move to the
    next load of that submission).

    When the database refuses the batch's data (anything but a lost connection, which is retried), the
    batch is loaded again file by file, each under a savepoint: a file the warehouse cannot load is
    quarantined alone with rule W01 (the warehouse failed, not the county) and the rest loads.
    """
    db.ensure_raw_schema(settings)
    try:
        return _load(settings, batch_result, isolate=False)
    except psycopg.DatabaseError as exc:
        if isinstance(exc, psycopg.OperationalError):
            raise  # the warehouse blinked: the task is retried whole
        log.warning("batch %s: the warehouse refused its rows (%s); loading it file by file",
                    batch_result["batch"], _error_line(exc))
        return _load(settings, batch_result, isolate=True)


def _error_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


def _rows_by_submission(rows_files: list[dict]) -> dict[int, list[tuple[str, bytes]]]:
    """The batch's row files split by submission (the first field of every line): (form, CSV lines)."""
    out: dict[int, dict[str, list[bytes]]] = {}
    for rows_file in rows_files:
        with Path(rows_file["path"]).open("rb") as source:
            for line in source:
                out.setdefault(int(line.split(b",", 1)[0]), {}).setdefault(rows_file["form"], []).append(line)
    return {sid: [(form, b"".join(lines)) for form, lines in forms.items()] for sid, forms in out.items()}


def _columns(form: str) -> list[str]:
    return ["submission_id", "source_row", *[c.name for c in load_spec().canonical_columns(form)],
            "quality_flags"]


def _write_submissions(cur, ids: list[int], forms: dict[int, str], rows_files: list[dict],
                       findings: dict, contacts: dict, entries: list[dict]) -> int:
    """Replace the rows, findings, contacts and outcomes of submissions ``ids``; returns rows copied."""
    spec = load_spec()
    chosen = set(ids)
    for form in spec.forms:
        of_form = [sid for sid in ids if forms[sid] == form]
        if of_form:
            cur.execute(sql.SQL("DELETE FROM {} WHERE submission_id = ANY(%s)").format(
                sql.Identifier("raw", spec.raw_table(form))), (of_form,))
    rows = 0
    for rows_file in rows_files:
        rows += _copy_rows(cur, spec.raw_table(rows_file["form"]), _columns(rows_file["form"]),
                           rows_file)
    cur.execute("DELETE FROM raw.submission_finding WHERE submission_id = ANY(%s)", (ids,))
    with cur.copy("COPY raw.submission_finding (submission_id, seq, rule_id, form, sheet, excel_row, "
                  "column_code, value, params) FROM STDIN") as copy:
        for sid in ids:
            for seq, f in enumerate(findings.get(str(sid), [])):
                copy.write_row((sid, seq, f["rule_id"], f["form"], f["sheet"], f["row"], f["column"],
                                f["value"], json.dumps(f["params"], ensure_ascii=False, default=str)))
    cur.execute("DELETE FROM raw.submission_contact WHERE submission_id = ANY(%s)", (ids,))
    contact_copy = "COPY raw.submission_contact (submission_id, role, name, phone) FROM STDIN"
    with cur.copy(contact_copy) as copy:
        for sid in ids:
            people = contacts.get(str(sid), {})
            for role in ("unit_head", "statistics_head", "preparer"):
                if people.get(role) or (role == "preparer" and people.get("phone")):
                    copy.write_row((sid, role, people.get(role),
                                    people.get("phone") if role == "preparer" else None))
    submissions.record_outcomes(cur, [e for e in entries if e["submission_id"] in chosen])
    return rows


def _warehouse_failed(entry: dict, found: list[dict], error: str) -> tuple[dict, list[dict]]:
    """A submission the warehouse could not load: quarantined with W01 next to what the checks found."""
    failed = sorted({*entry["failed_rules"], WAREHOUSE_FAILURE.id})
    finding = {"rule_id": WAREHOUSE_FAILURE.id, "form": entry.get("form"), "sheet": None, "row": None,
               "column": None, "value": None, "params": {"detail": error}}
    return {**entry, "outcome": "quarantined", "failed_rules": failed, "soft_flags": []}, [*found, finding]


def _load(settings: Settings, batch_result: CheckedBatch, *, isolate: bool) -> LoadCounts:
    batch_dir = Path(batch_result["batch_dir"])
    findings = json.loads((batch_dir / "findings.json").read_text())
    contacts = json.loads((batch_dir / "contacts.json").read_text())
    entries = batch_result["submissions"]
    ids = [entry["submission_id"] for entry in entries]
    counts = LoadCounts(accepted=0, quarantined=0, rows=0)
    moves: list[tuple[Path, Path]] = []
    with (warehouse_lock(settings, "load"), connect(settings, role=LOADER, autocommit=True) as conn,
          conn.transaction(), conn.cursor() as cur):
        current = submissions.lock_for_load(cur, ids)
        unknown = sorted(set(ids) - set(current))
        if unknown:
            raise WarehouseError(f"submissions {unknown[:10]} of batch {batch_result['batch']} are not "
                                 "registered")
        forms = {sid: current[sid][2] for sid in ids}
        if not isolate:
            rows_files = [{"form": f["form"], "path": Path(f["path"])} for f in batch_result["rows_files"]]
            counts["rows"] = _write_submissions(cur, ids, forms, rows_files, findings, contacts, entries)
        else:
            entries = _load_file_by_file(cur, ids, current, batch_result, findings, contacts)
        planned: dict[str, tuple[Path, Path]] = {}
        for entry in entries:  # every form of a file shares the file's outcome
            sha, recorded = current[entry["submission_id"]][:2]
            if sha not in planned and (move := _relocation(settings, recorded, entry["outcome"])):
                planned[sha] = move
            counts[entry["outcome"]] += 1
            counts["rows"] += entry.get("loaded_rows", 0)
        if planned:
            targets = (list(planned), [str(target) for _, target in planned.values()])
            submissions.move_files(cur, *targets)
            # the receipt that stored the file follows it (a re-send's copy stays in archive/resent/)
            cur.execute("UPDATE raw.receipt r SET stored_path = m.target FROM unnest(%s::text[], %s::text[]) "
                        "AS m(sha256, target) WHERE r.sha256 = m.sha256 AND starts_with(r.stored_path, %s) "
                        "IS NOT TRUE", (*targets, str(settings.archive_dir / "resent") + "/"))
        moves = list(planned.values())
    for source, target in moves:
        files.move_no_overwrite(source, target)
    return counts


def _load_file_by_file(cur, ids: list[int], current: dict, batch_result: CheckedBatch, findings: dict,
                       contacts: dict) -> list[dict]:
    """Load each file's submissions under a savepoint; a file the database refuses gets W01 alone.
    Returns the entries as loaded (with ``loaded_rows``)."""
    forms = {sid: current[sid][2] for sid in ids}
    by_file: dict[str, list[dict]] = {}
    for entry in batch_result["submissions"]:  # a workbook's three forms share one outcome
        by_file.setdefault(current[entry["submission_id"]][0], []).append(entry)
    rows_of = _rows_by_submission(batch_result["rows_files"])
    loaded: list[dict] = []
    for sha, members in by_file.items():
        sids = [e["submission_id"] for e in members]
        rows_files = [{"form": form, "data": data} for sid in sids for form, data in rows_of.get(sid, [])]
        try:
            with cur.connection.transaction():
                rows = _write_submissions(cur, sids, forms, rows_files, findings, contacts, members)
            loaded += [{**e, "loaded_rows": rows if i == 0 else 0} for i, e in enumerate(members)]
            continue
        except psycopg.DatabaseError as exc:
            if isinstance(exc, psycopg.OperationalError):
                raise
            # the county's report names the kind of failure; the operator's log holds the whole error
            error = type(exc).__name__
            names = submissions.file_names(cur, sha)
            log.error("W01: the warehouse could not load %s (%s); quarantined, the rest of the batch "
                      "loads", ", ".join(names), _error_line(exc))
        failed, failed_findings = {}, {}
        for entry in members:
            sid = entry["submission_id"]
            failed_entry, found = _warehouse_failed(entry, findings.get(str(sid), []), error)
            failed[entry["submission_id"]] = failed_entry
            failed_findings[str(entry["submission_id"])] = found
        try:
            with cur.connection.transaction():
                _write_submissions(cur, sids, forms, [], failed_findings, {}, list(failed.values()))
        except psycopg.DataError:  # a finding itself cannot be stored: W01 alone then
            only_w01 = {sid: found[-1:] for sid, found in failed_findings.items()}
            _write_submissions(cur, sids, forms, [], only_w01, {}, list(failed.values()))
        loaded += list(failed.values())
    return loaded
