"""Registration: every received file is hashed, recorded and moved out of the landing folder.

A file is stored content-addressed under ``$HRSS_HOME/archive/`` and gets one ``raw.submission`` row
per form it carries (a workbook three, a CSV one; a file whose name or content cannot be read one row
with NULLs). A byte-identical re-send, under any name, is recorded as another ``raw.receipt`` and kept
under ``archive/resent/``: it creates no submission and is not loaded again. Nothing is deleted or
overwritten.

The stored bytes are the hashed bytes: a landed file is copied into ``archive/.incoming/`` while it is
hashed, the copy is fsynced, and a file that changed meanwhile stays in landing for the next run. The
database rows are committed next, then the copy is renamed to its content address (so a full disk never
leaves a truncated file there), and only then is the landed file removed. A crash before the rename
leaves the file in landing and the next run completes the storing instead of counting a re-send; a
crash in the instant between the rename and the removal makes the rerun count the landed file as a
re-send (kept, never lost). Every later read goes through ``verified_file``, which checks the hash.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from hrss_warehouse import files, submissions
from hrss_warehouse.config import Settings
from hrss_warehouse.contracts import Batch
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import land, receipts_manifest
from hrss_warehouse.stages.land import ArchiveError, Scan

log = logging.getLogger(__name__)

UNNAMED_BATCH = "unnamed"  # files whose name gives no county: checked together, outside any province
REGISTER_CHUNK = 200  # files recorded per transaction
COPY_THREADS = 4  # copies into the archive side by side: their fsyncs share the disk's journal commits


ZIP_MAGIC = b"PK\x03\x04"  # xlsx: a zip package
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # xls: a compound document (BIFF8)
MAX_XLS_BYTES = 50 * 1024 * 1024  # S06's file limit: an xls is read whole to list its sheets


def workbook_format(path: Path) -> str | None:
    """"xlsx" or "xls" by the file's first bytes (S01 opens a workbook by content, not by its name)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(OLE2_MAGIC))
    except OSError:
        return None
    if head.startswith(ZIP_MAGIC):
        return "xlsx"
    return "xls" if head == OLE2_MAGIC else None


def workbook_forms(path: Path) -> list[str] | None:
    """The forms a workbook carries, or None when it is not a readable workbook with all three sheets.

    Of an xlsx only the zip directory and the workbook part are read, never a sheet, so a zip bomb is
    harmless here; an xls (at most 50 MB, no compression) has its sheet names read by calamine.
    """
    forms = list(load_spec().forms)
    kind = workbook_format(path)
    if kind == "xls":
        sheets = _xls_sheet_names(path)
    elif kind == "xlsx":
        sheets = _xlsx_sheet_names(path)
    else:
        return None
    return forms if sheets is not None and set(forms) <= sheets else None


def _xls_sheet_names(path: Path) -> set[str] | None:
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        if path.stat().st_size > MAX_XLS_BYTES:
            return None
        with path.open("rb") as fh:
            return set(CalamineWorkbook.from_filelike(fh).sheet_names)
    except (CalamineError, OSError, ValueError):
        return None


def _xlsx_sheet_names(path: Path) -> set[str] | None:
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
    return set(re.findall(r'<(?:\w+:)?sheet\b[^>]*\bname="([^"]*)"', text))


def forms_of(path: Path, name: files.FileName | None) -> list[str | None]:
    """One entry per raw.submission row the file gets (None: the form could not be read)."""
    if name is None:
        return [None]
    if name.kind == "csv":
        return [name.form]
    return workbook_forms(path) or [None]


def pack_batches(rows: list[tuple[int, str | None]], size: int) -> list[Batch]:
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
    batches: list[Batch] = []
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


def _county_batches(counties: dict[str, list[int]], size: int) -> list[Batch]:
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


def register_files(settings: Settings, scan: Scan, stop: Callable[[], bool] | None = None) -> list[Batch]:
    """Record and archive each file the scan found; return the submissions to check, packed into batches.

    Runs under the advisory lock ``load``, so two ingests started at the same instant register one after
    the other (the second finds the files gone) or the second refuses naming the holder, as loads do.
    Each file is copied into ``archive/.incoming/`` while its bytes are hashed, and the copy is fsynced;
    a file that changed while it was read stays in landing for the next run. Files are recorded a chunk
    at a time (one transaction per chunk); then each copy is renamed to its content address and only
    then does the landed file go. Submissions left ``pending`` by an earlier interrupted run are returned
    too, so a rerun finishes them. When ``stop()`` turns true (SIGTERM) no further chunk is started: the
    files not yet recorded stay in landing.
    """
    def register(conn, copies_of) -> None:
        window = _ScanWindow.of(settings, conn, scan)
        for start in range(0, len(scan.files), REGISTER_CHUNK):
            if stop is not None and stop():
                break
            # a file already registered by an earlier run (or another ingest) is gone from landing
            chunk = [Path(f) for f in scan.files[start:start + REGISTER_CHUNK] if os.path.isfile(f)]
            _register_chunk(settings, conn, copies_of(chunk), window.arrival)
        window.record(conn)

    return _registering(settings, register)


def register_replayed(settings: Settings, scans: list[dict], landed: list[tuple[Path, dict]]) -> list[Batch]:
    """Register copies of stored files again with the arrivals their receipts recorded (``hrss rebuild
    --from-archive``): ``scans`` are raw.landing_scan rows, restored first with their ids; ``landed`` pairs
    a copy, named as the file was received, with its receipt row (received time, scan, modification time,
    first scan, sub-folder), in received order and no two of one name in a chunk. Returns the batches."""
    def register(conn, copies_of) -> None:
        with conn.transaction(), conn.cursor() as cur:
            for row in scans:
                cur.execute("INSERT INTO raw.landing_scan (scan_id, landing, started_at, finished_at, "
                            "recorded_at) OVERRIDING SYSTEM VALUE VALUES (%(scan_id)s, %(landing)s, "
                            "%(started_at)s, %(finished_at)s, %(recorded_at)s) RETURNING *", row)
                # committed with the block below, or the rebuild fails and starts over with a new archive
                receipts_manifest.record_scan(settings, cur, committed=True)
            cur.execute("SELECT setval(pg_get_serial_sequence('raw.landing_scan', 'scan_id'), "
                        "greatest((SELECT max(scan_id) FROM raw.landing_scan), 1))")
        recorded = {path: receipt for path, receipt in landed}

        def arrival(conn, copied: _Copy) -> tuple:
            receipt = recorded[copied.source]
            return (receipt["file_name"], receipt["received_at"], receipt["scan_id"], receipt["modified_at"],
                    receipt["first_scan"], receipt["landing_subfolder"])

        paths = [path for path, _ in landed]
        for start in range(0, len(paths), REGISTER_CHUNK):
            _register_chunk(settings, conn, copies_of(paths[start:start + REGISTER_CHUNK]), arrival)

    return _registering(settings, register)


def _registering(settings: Settings, register: Callable) -> list[Batch]:
    """Run ``register(conn, copies_of)`` under the 'load' lock with an empty ``archive/.incoming/``;
    ``copies_of(paths)`` copies a chunk of landed files in (those that changed or vanished left out).
    Returns every pending submission packed into batches."""
    from hrss_warehouse.config import LOADER
    from hrss_warehouse.db import connect, ensure_raw_schema, warehouse_lock
    from hrss_warehouse.stages import reference

    # before any file: a warehouse without the committed registry cannot build its marts
    reference.ensure_loaded(settings)
    ensure_raw_schema(settings)
    incoming = settings.archive_dir / files.INCOMING
    # reading, hashing and fsyncing wait on the disk and on hashlib, which release the GIL
    with (warehouse_lock(settings, "load"), connect(settings, role=LOADER, autocommit=True) as conn,
          ThreadPoolExecutor(max_workers=max(COPY_THREADS, settings.check_workers)) as copiers):
        shutil.rmtree(incoming, ignore_errors=True)  # copies of a run that died (we hold the lock)
        incoming.mkdir(parents=True, exist_ok=True)

        def copies_of(chunk: list[Path]) -> list[_Copy]:
            try:
                copies = list(copiers.map(lambda source: _copy_in(incoming, source), chunk))
            except ArchiveError:
                shutil.rmtree(incoming, ignore_errors=True)  # the other copies of the chunk
                raise
            return [c for c in copies if c is not None]

        register(conn, copies_of)
        shutil.rmtree(incoming, ignore_errors=True)
        rows = submissions.pending(conn)
    return pack_batches(rows, settings.batch_submissions)


@dataclass
class _ScanWindow:
    """A scan as recorded in raw.landing_scan, and the window it gives received times."""

    settings: Settings
    scan: Scan
    previous_start: datetime | None  # the previous scan of the same folder (None: this is its first)
    scan_id: int | None = None

    @classmethod
    def of(cls, settings: Settings, conn, scan: Scan) -> _ScanWindow:
        row = conn.execute("SELECT max(started_at) FROM raw.landing_scan WHERE landing = %s "
                           "AND started_at < %s", (scan.landing, scan.started_at)).fetchone()
        return cls(settings, scan, row[0])

    def record(self, conn) -> int:
        """The scan's id, recording the scan on first use (within the caller's transaction, if any), and
        its line in the receipts manifest."""
        if self.scan_id is None:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO raw.landing_scan (landing, started_at, finished_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT ON CONSTRAINT landing_scan_once "
                    "DO UPDATE SET finished_at = EXCLUDED.finished_at RETURNING *",
                    (self.scan.landing, self.scan.started_at, self.scan.finished_at))
                # outside a transaction of the caller's, the row is committed before its line is written
                committed = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
                self.scan_id = receipts_manifest.record_scan(self.settings, cur, committed=committed)
        return self.scan_id

    def arrival(self, conn, copied: _Copy) -> tuple:
        """A receipt's file name, received time, scan, modification time, first scan and sub-folder."""
        return (files.printable_name(copied.source.name), self.received_at(copied.modified),
                self.record(conn), copied.modified, self.previous_start is None,
                files.printable_name(self.scan.subfolder(copied.source)))

    def received_at(self, modified: datetime) -> datetime:
        """The spec's received time (survey_spec/README.md, "Revisions"): the modification time clamped
        between the previous scan and this one; on a folder's first scan it stands alone, except that
        nothing arrives after the scan that found it."""
        received = min(modified, self.scan.finished_at)
        return received if self.previous_start is None else max(received, self.previous_start)


@dataclass(frozen=True)
class _Copy:
    """A landed file copied into archive/.incoming/: the bytes that were hashed are the bytes stored."""

    source: Path
    temp: Path
    sha256: str
    size: int
    modified: datetime


def _copy_in(incoming: Path, source: Path) -> _Copy | None:
    """Copy ``source`` to a new file under ``incoming``, hashing what is written, and fsync it.

    Returns None (and logs why) when the file changed while it was read, vanished, or became a
    symbolic link: it stays where it is for the next run. A write error (a full disk) removes the copy
    and raises.
    """
    fd, temp_name = tempfile.mkstemp(dir=incoming)
    temp = Path(temp_name)
    digest = hashlib.sha256()
    written = 0
    try:
        try:
            source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            os.close(fd)
            temp.unlink()
            if exc.errno == errno.ELOOP:
                land.skip(source, land.SYMLINK)
            elif exc.errno == errno.ENOENT:
                log.info("landing: %s is gone (registered by another run)", source)
            else:
                land.skip(source, f"{land.UNREADABLE}: {exc.strerror}")
            return None
        with os.fdopen(source_fd, "rb") as reader, os.fdopen(fd, "wb") as writer:
            before = os.fstat(reader.fileno())
            for block in iter(lambda: reader.read(1 << 20), b""):
                digest.update(block)
                _write(writer, block, temp)
                if not written:
                    _pause_if_asked(incoming.parent.parent, source)
                written += len(block)
            writer.flush()
            os.fsync(writer.fileno())
            after = os.stat(source, follow_symlinks=False)
    except BaseException as exc:
        temp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ArchiveError(f"cannot copy {source} into the archive {incoming.parent}: "
                               f"{exc.strerror or exc}; it stays in landing for the next run") from None
        raise
    if (written, before.st_mtime_ns, before.st_ino) != (after.st_size, after.st_mtime_ns, after.st_ino) \
            or written != before.st_size:
        temp.unlink()
        land.skip(source, f"{land.CHANGED_WHILE_READ} ({before.st_size:,} bytes when opened, "
                          f"{written:,} read, {after.st_size:,} now)")
        return None
    return _Copy(source, temp, digest.hexdigest(), written, datetime.fromtimestamp(before.st_mtime, UTC))


# Fault injection for the archive tests, through the real write path:
# HRSS_FAULT_ENOSPC_AFTER_BYTES=N makes archive writes fail with ENOSPC (a full disk) once N bytes are
# written in this process; HRSS_FAULT_PAUSE_IN_COPY=<file name> pauses the copy of that file after its
# first block (announced in $HRSS_HOME/work/copy_paused; the copy resumes when that file is removed).
FAULT_ENOSPC_ENV = "HRSS_FAULT_ENOSPC_AFTER_BYTES"
FAULT_PAUSE_ENV = "HRSS_FAULT_PAUSE_IN_COPY"
_archive_bytes = [0]
_archive_bytes_lock = threading.Lock()


def _write(writer, block: bytes, temp: Path) -> None:
    limit = os.environ.get(FAULT_ENOSPC_ENV)
    if limit:
        with _archive_bytes_lock:
            room = max(int(limit) - _archive_bytes[0], 0)
            _archive_bytes[0] += min(room, len(block))
        if room < len(block):
            writer.write(block[:room])  # what fitted, as on a real disk
            writer.flush()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temp))
    writer.write(block)


def _pause_if_asked(home: Path, source: Path) -> None:
    if os.environ.get(FAULT_PAUSE_ENV) != source.name:
        return
    marker = home / "work" / "copy_paused"
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()} {source}\n")
    while marker.exists():  # the test changes the file, then removes the marker
        time.sleep(0.05)


def _register_chunk(settings: Settings, conn, copies: list[_Copy], arrival: Callable[..., tuple]) -> None:
    """Record a chunk of copies in one transaction, each receipt with ``arrival(conn, copy)`` (its file
    name, received time, scan id, modification time, first scan, sub-folder), then store the copies."""
    if not copies:
        return
    known = submissions.stored_paths(conn, [c.sha256 for c in copies])
    receipts, forms, placements = [], [], []
    taken: set[str] = set()  # checksums this chunk stores in the archive (a second copy is a re-send)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
    with conn.transaction(), conn.cursor() as cur:
        for index, copied in enumerate(copies):
            sha = copied.sha256
            file_name, received_at, *arrived = arrival(conn, copied)
            if sha in taken or (sha in known and files.stored_file(settings, known[sha]).exists()):
                # A re-send: keep this copy too, beside the archive, and record the receipt only.
                target = settings.archive_dir / "resent" / f"{sha}.{stamp}.{index}"
                receipts.append((sha, file_name, received_at, str(target), *arrived))
                placements.append((copied, target))
                continue
            taken.add(sha)
            if sha in known:  # recorded by a run that stopped before storing the file: finish storing it
                placements.append((copied, Path(known[sha])))
                continue
            name = files.parse_file_name(copied.source.name)
            target = files.archive_path(settings, sha, name.kind if name else None)
            receipts.append((sha, file_name, received_at, str(target), *arrived))
            for form in forms_of(copied.temp, name):  # read from the copy: the bytes that were hashed
                forms.append((sha, copied.size, file_name, name.county_code if name else None,
                                    name.survey_year if name else None, form,
                                    name.revision if name else None, received_at, str(target)))
            placements.append((copied, target))
        cur.executemany("INSERT INTO raw.receipt (sha256, file_name, received_at, stored_path, scan_id, "
                        "modified_at, first_scan, landing_subfolder) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) "
                        "RETURNING *", receipts, returning=True)
        receipts_manifest.record(settings, cur)
        submissions.insert(cur, forms)
    for copied, target in placements:
        _place(copied.temp, target)
    for folder in {target.parent for _, target in placements}:
        _fsync_folder(folder)
    for copied, _ in placements:  # the stored copies are durable: the landed files may go
        copied.source.unlink(missing_ok=True)


def _place(temp: Path, target: Path) -> None:
    """Give a finished copy its name, never replacing a file (content-addressed targets hold the same
    bytes; a hard link fails where a rename would silently replace)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(temp, target)
    except FileExistsError:
        raise FileExistsError(f"refusing to overwrite {target} with {temp}") from None
    temp.unlink()


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verified_file(settings: Settings, sha256: str, recorded: str, file_name: str) -> Path:
    """Where a registered file is now, after checking that it still holds the bytes that were registered.

    Every reader of an archived file goes through here: a damaged copy must stop the run, not be checked
    and blamed on the county.
    """
    path = files.stored_file(settings, recorded)
    if not path.is_file():
        raise ArchiveError(f"the stored copy of {file_name!r} is missing from the archive ({path}); restore "
                           f"it (sha256 {sha256}) from a backup and rerun")
    found = files.sha256_of(path)
    if found != sha256:
        raise ArchiveError(f"the stored copy of {file_name!r} in the archive is damaged ({path}: sha256 "
                           f"{found}, registered {sha256}); restore it from a backup and rerun")
    return path
