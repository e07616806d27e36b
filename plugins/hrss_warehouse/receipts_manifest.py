"""The receipts manifest: every ``raw.receipt`` row, as recorded, in a JSON-lines file beside the archive.

The archive is the only copy of what the counties sent. The manifest keeps, next to it and without the
database, what registration knew of each arrival (its name, when it was received, where it is stored,
and every other receipt column), so that `hrss rebuild --from-archive` can register every file again in
its original order, and a copy of archive/ (a backup) carries it along.

A line is appended inside the registering transaction, before it commits: a committed receipt always
has its line. A transaction that then fails leaves a line without a receipt; its file either stayed in
the landing folder (and is recorded again by the next run) or was never stored, so readers keep the
last line of each stored path and skip lines whose file does not exist.
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


def record(settings: Settings, cur: Cursor) -> None:
    """Append the receipt rows a ``cur.executemany(INSERT ... RETURNING *, returning=True)`` returned,
    every column by its name, and flush them to disk."""
    lines: list[str] = []
    while cur.description is not None:
        names = [column.name for column in cur.description]
        lines += [json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False, default=str)
                  for row in cur.fetchall()]
        if not cur.nextset():
            break
    if not lines:
        return
    path = manifest_path(settings.archive_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as manifest:
        manifest.write("".join(line + "\n" for line in lines))
        manifest.flush()
        os.fsync(manifest.fileno())


def read(archive_dir: Path) -> list[dict]:
    """The receipts of a manifest in the order they were recorded, one per stored path (the last line
    of a path wins: an earlier one belongs to a transaction that failed). ``received_at`` is a datetime."""
    path = manifest_path(archive_dir)
    entries: dict[str, dict] = {}
    with path.open(encoding="utf-8") as manifest:
        for line in manifest:
            if line.strip():
                entry = json.loads(line)
                entry["received_at"] = datetime.fromisoformat(entry["received_at"])
                entries.pop(entry["stored_path"], None)
                entries[entry["stored_path"]] = entry
    return sorted(entries.values(), key=lambda entry: entry["receipt_id"])
