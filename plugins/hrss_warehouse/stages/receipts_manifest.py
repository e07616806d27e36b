"""The receipts manifest: every ``raw.receipt`` and ``raw.landing_scan`` row, as recorded, in a JSON-lines
file beside the archive.

The archive is the only copy of what the counties sent. The manifest keeps, next to it and without the
database, what registration knew of each arrival (its name, when it was received, where it is stored,
the scan that found it, its modification time, whether that was the folder's first scan, its landing
sub-folder: every receipt column) and of each landing scan (a scan line: ``{"landing_scan": row,
"committed": ...}``), so that `hrss rebuild --from-archive` can register every file again in its
original order with the same arrival, and a copy of archive/ (a backup) carries it along.

A line is appended inside the registering transaction, before it commits: a committed receipt always
has its line. A transaction that then fails leaves a line without a receipt; its file either stayed in
the landing folder (and is recorded again by the next run) or was never stored, so readers keep the
last line of each stored path and skip lines whose file does not exist. A scan line written inside such
a transaction says ``committed: false``: the scan is restored only when a restored receipt names it.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from psycopg import Cursor

from hrss_warehouse.config import Settings

MANIFEST_NAME = "receipts.jsonl"


def manifest_path(archive_dir: Path) -> Path:
    return archive_dir / MANIFEST_NAME


def _rows(cur: Cursor) -> list[dict]:
    """Every row the cursor's statements returned, as {column: value}."""
    rows: list[dict] = []
    while cur.description is not None:
        names = [column.name for column in cur.description]
        rows += [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        if not cur.nextset():
            break
    return rows


def record(settings: Settings, cur: Cursor) -> None:
    """Append the receipt rows a ``cur.executemany(INSERT ... RETURNING *, returning=True)`` returned,
    every column by its name, and flush them to disk."""
    _append(settings, [json.dumps(row, ensure_ascii=False, default=str) for row in _rows(cur)])


def record_scan(settings: Settings, cur: Cursor, *, committed: bool) -> int:
    """Append the raw.landing_scan row an ``INSERT ... RETURNING *`` returned; returns its scan_id."""
    (row,) = _rows(cur)
    _append(settings, [json.dumps({"landing_scan": row, "committed": committed}, default=str)])
    return row["scan_id"]


def _append(settings: Settings, lines: list[str]) -> None:
    if not lines:
        return
    path = manifest_path(settings.archive_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as manifest:
        manifest.write("".join(line + "\n" for line in lines))
        manifest.flush()
        os.fsync(manifest.fileno())


def _timestamps(row: dict) -> dict:
    """The row with its ``*_at`` columns as datetimes again."""
    return {key: datetime.fromisoformat(value) if key.endswith("_at") and value is not None else value
            for key, value in row.items()}


def read(archive_dir: Path) -> list[dict]:
    """The receipts of a manifest in the order they were recorded, one per stored path (the last line
    of a path wins: an earlier one belongs to a transaction that failed). Timestamps are datetimes."""
    return sorted(_read(archive_dir)[0].values(), key=lambda entry: entry["receipt_id"])


def read_scans(archive_dir: Path) -> list[tuple[dict, bool]]:
    """The landing scans of a manifest by scan_id, each with whether its line was written committed
    (the last line of a scan wins: a retried register task updates its finished_at)."""
    return sorted(_read(archive_dir)[1].values(), key=lambda scan: scan[0]["scan_id"])


def _read(archive_dir: Path) -> tuple[dict[str, dict], dict[int, tuple[dict, bool]]]:
    receipts: dict[str, dict] = {}
    scans: dict[int, tuple[dict, bool]] = {}
    with manifest_path(archive_dir).open(encoding="utf-8") as manifest:
        for line in manifest:
            if not line.strip():
                continue
            entry = json.loads(line)
            if "landing_scan" in entry:
                scan = _timestamps(entry["landing_scan"])
                committed = entry["committed"] or scans.get(scan["scan_id"], (None, False))[1]
                scans[scan["scan_id"]] = (scan, committed)
            else:
                receipts.pop(entry["stored_path"], None)
                receipts[entry["stored_path"]] = _timestamps(entry)
    return receipts, scans
