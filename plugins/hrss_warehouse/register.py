"""Registration: every received file is hashed, recorded and moved out of the landing folder.

A file is stored content-addressed under ``$HRSS_HOME/archive/`` and gets one ``raw.submission`` row
per form it carries (a workbook three, a CSV one; a file whose name or content cannot be read one row
with NULLs). A byte-identical re-send, under any name, is recorded as another ``raw.receipt`` and kept
under ``archive/resent/``: it creates no submission and is not loaded again. Nothing is deleted or
overwritten. The database rows are committed before the file leaves the landing folder, so a crash in
between leaves the file in place and the next run completes the move instead of counting a re-send.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hrss_warehouse import receipts_manifest
from hrss_warehouse.config import Settings
from hrss_warehouse.spec import load_spec

UNNAMED_BATCH = "unnamed"  # files whose name gives no county: checked together, outside any province
REGISTER_CHUNK = 200  # files recorded per transaction
FIRST_SURVEY_YEAR = 2014
_NAME = re.compile(
    r"^(?P<county>\d{6})_(?P<year>\d{4})(?:_(?P<form>[A-Za-z]+-\d+))?(?:_r(?P<rev>\d{1,3}))?"
    r"\.(?P<ext>xlsx|csv)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FileName:
    county_code: str
    survey_year: int
    form: str | None  # CSV only
    revision: int
    kind: str  # "xlsx" or "csv"


def parse_file_name(name: str) -> FileName | None:
    """The parts of a return's file name, or None when it breaks S02."""
    match = _NAME.match(name)
    if not match:
        return None
    kind = match["ext"].lower()
    form = match["form"].upper() if match["form"] else None
    year = int(match["year"])
    revision = int(match["rev"]) if match["rev"] else 1
    if not FIRST_SURVEY_YEAR <= year <= datetime.now(UTC).year or revision < 1:
        return None
    if (kind == "csv") != (form is not None) or (form is not None and form not in load_spec().forms):
        return None
    return FileName(match["county"], year, form, revision, kind)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def printable_name(name: str) -> str:
    """A file name as text PostgreSQL accepts: undecodable bytes and NULs become U+FFFD."""
    raw = os.fsencode(name)
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def archive_path(settings: Settings, sha256: str, kind: str | None) -> Path:
    suffix = f".{kind}" if kind else ".bin"
    return settings.archive_dir / sha256[:2] / f"{sha256}{suffix}"


def stored_file(settings: Settings, recorded: str) -> Path:
    """Where a registered file is now: its recorded path, or its twin in archive/ or quarantine/."""
    path = Path(recorded)
    if path.exists():
        return path
    for folder in (settings.archive_dir, settings.quarantine_dir):
        twin = folder / path.parent.name / path.name
        if twin.exists():
            return twin
    return path


def workbook_forms(path: Path) -> list[str] | None:
    """The forms a workbook carries, or None when it is not a readable workbook with all three sheets.

    Only the zip directory and the workbook part are read, never a sheet, so a zip bomb is harmless here.
    """
    forms = list(load_spec().forms)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" not in names:
                return None
            info = archive.getinfo("xl/workbook.xml")
            if info.file_size > 1 << 20:
                return None
            text = archive.read(info).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return None
    sheets = set(re.findall(r'<(?:\w+:)?sheet\b[^>]*\bname="([^"]*)"', text))
    return forms if set(forms) <= sheets else None


def forms_of(path: Path, name: FileName | None) -> list[str | None]:
    """One entry per raw.submission row the file gets (None: the form could not be read)."""
    if name is None:
        return [None]
    if name.kind == "csv":
        return [name.form]
    return workbook_forms(path) or [None]


def pack_batches(rows: list[tuple[int, str | None]], size: int) -> list[dict]:
    """Group (submission_id, county_code) into check batches of at most ``size`` submissions
    (``Settings.batch_submissions``): whole provinces packed in code order (named "11" or "11-13"), and
    a province larger than ``size`` alone split at county boundaries (named by its county range).

    A batch is validated in one GX run per suite (each run has a fixed cost of about a second), so a
    national year becomes a handful of batches (mapped tasks), not 31 or 9,000. The size also bounds a
    batch's memory when the landing folder holds several survey years. A county is never split: a
    file's submissions (same county) share a batch, which its load needs.
    """
    provinces: dict[str, dict[str, list[int]]] = {}
    for submission_id, county in rows:
        key = county[:2] if county else UNNAMED_BATCH
        provinces.setdefault(key, {}).setdefault(county or "", []).append(submission_id)
    batches: list[dict] = []
    packable = False  # whether the last batch is whole provinces that another province may join
    for key, counties in sorted(provinces.items()):
        ids = [i for county in sorted(counties) for i in counties[county]]
        if key == UNNAMED_BATCH:
            batches.append({"batch": key, "submission_ids": ids})
            packable = False
        elif len(ids) > size:
            batches += _county_batches(counties, size)
            packable = False
        elif packable and len(batches[-1]["submission_ids"]) + len(ids) <= size:
            batches[-1]["batch"] = f"{batches[-1]['batch'].split('-')[0]}-{key}"
            batches[-1]["submission_ids"] += ids
        else:
            batches.append({"batch": key, "submission_ids": ids})
            packable = True
    return batches


def _county_batches(counties: dict[str, list[int]], size: int) -> list[dict]:
    """One province's counties packed in code order into batches of at most ``size`` submissions (a
    county larger than that is a batch of its own)."""
    groups: list[list[str]] = []
    total = 0
    for county in sorted(counties):
        if not groups or total + len(counties[county]) > size:
            groups.append([])
            total = 0
        groups[-1].append(county)
        total += len(counties[county])
    return [{"batch": group[0] if len(group) == 1 else f"{group[0]}-{group[-1]}",
             "submission_ids": [i for county in group for i in counties[county]]} for group in groups]


def register_files(settings: Settings, paths: list[str]) -> list[dict]:
    """Record and archive each file; return the submissions to check, packed into batches.

    Files are recorded a chunk at a time (one transaction per chunk, committed before any of its files
    moves). Submissions left ``pending`` by an earlier interrupted run are returned too, so a rerun
    finishes them.
    """
    from hrss_warehouse.load import ensure_schema
    from hrss_warehouse.warehouse import LOADER, connect

    ensure_schema(settings)
    files = [Path(p) for p in paths]
    # reading and hashing the files waits on the disk and on hashlib and zlib, which release the GIL
    with (connect(settings, role=LOADER, autocommit=True) as conn,
          ThreadPoolExecutor(max_workers=settings.check_workers) as readers):
        for start in range(0, len(files), REGISTER_CHUNK):
            # a file already moved by an earlier run of the same task is skipped
            chunk = [f for f in files[start:start + REGISTER_CHUNK] if f.is_file()]
            _register_chunk(settings, conn, list(readers.map(_inspect, chunk)))
        rows = conn.execute(
            "SELECT submission_id, county_code FROM raw.submission WHERE outcome = 'pending' "
            "ORDER BY submission_id"
        ).fetchall()
    return pack_batches(rows, settings.batch_submissions)


def _inspect(path: Path) -> tuple[Path, str, os.stat_result, FileName | None, list[str | None]]:
    """What registration reads of a landed file: checksum, size and time, name, the forms it holds."""
    name = parse_file_name(path.name)
    return path, sha256_of(path), path.stat(), name, forms_of(path, name)


def _register_chunk(settings: Settings, conn, arrivals: list[tuple]) -> None:
    if not arrivals:
        return
    known = dict(conn.execute(
        "SELECT DISTINCT ON (sha256) sha256, archived_path FROM raw.submission WHERE sha256 = ANY(%s) "
        "ORDER BY sha256, submission_id", ([a[1] for a in arrivals],)).fetchall())
    receipts, submissions, moves = [], [], []
    taken: set[str] = set()  # checksums this chunk stores in the archive (a second copy is a re-send)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    for index, (path, sha, stat, name, forms) in enumerate(arrivals):
        file_name = printable_name(path.name)
        received_at = datetime.fromtimestamp(stat.st_mtime, UTC)
        if sha in taken or (sha in known and stored_file(settings, known[sha]).exists()):
            # A re-send: keep this copy too, beside the archive, and record the receipt only.
            target = settings.archive_dir / "resent" / f"{sha}.{stamp}.{index}"
            receipts.append((sha, file_name, received_at, str(target)))
            moves.append((path, target))
            continue
        taken.add(sha)
        if sha in known:  # recorded by a run that stopped before moving the file: finish the move
            moves.append((path, Path(known[sha])))
            continue
        target = archive_path(settings, sha, name.kind if name else None)
        receipts.append((sha, file_name, received_at, str(target)))
        for form in forms:
            submissions.append((sha, stat.st_size, file_name, name.county_code if name else None,
                                name.survey_year if name else None, form,
                                name.revision if name else None, received_at, str(target)))
        moves.append((path, target))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany("INSERT INTO raw.receipt (sha256, file_name, received_at, stored_path) "
                        "VALUES (%s,%s,%s,%s) RETURNING *", receipts, returning=True)
        receipts_manifest.record(settings, cur)
        cur.executemany("INSERT INTO raw.submission (sha256, size_bytes, file_name, county_code, survey_year,"
                        " form, revision, received_at, archived_path) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        submissions)
    for source, target in moves:
        _move(source, target)


def _move(source: Path, target: Path) -> None:
    """Move without ever replacing an existing file (content-addressed targets hold the same bytes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"refusing to overwrite {target} with {source}")
    shutil.move(source, target)
