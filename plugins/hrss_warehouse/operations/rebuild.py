"""Rebuild a fresh warehouse from the archive: `hrss rebuild --from-archive`.

The archive and quarantine folders and their receipts manifest (``receipts_manifest``) are all that is
needed: the landing scans are restored, then every stored file is registered again, through the register
stage itself (``register.register_replayed``), in its original received order, under its original name,
with the arrival its receipt recorded (received time, scan, modification time, first scan, landing
sub-folder); then the pending submissions are checked and loaded, dbt builds (full refresh) and the
marts are published.

The old folders are first moved aside into ``$HRSS_HOME/rebuild-from/`` (a rename: nothing is copied
twice) and registration moves copies of their files into a new archive; the folder is removed once
every file in it has its receipt in the new registry (otherwise it is kept, with a log line). An
interrupted rebuild is resumed by running it again: everything in the registry then came from
``rebuild-from/``, so the registry is emptied and the copies made so far are dropped before it starts
over.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from hrss_warehouse import db, graceful
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.stages import receipts_manifest

log = logging.getLogger(__name__)

SOURCE_DIR = "rebuild-from"
# the registry's tables, emptied when an interrupted rebuild starts over
# what a receipt says of its file's arrival, restored as it was recorded
ARRIVAL = ("sha256", "file_name", "received_at", "scan_id", "modified_at", "first_scan", "landing_subfolder")
REGISTRY_TABLES = ("raw.receipt", "raw.landing_scan", "raw.submission", "raw.submission_contact",
                   "raw.submission_finding")


class RebuildError(RuntimeError):
    """The rebuild cannot start or did not restore every receipt; the message says why."""


def _receipts(settings: Settings) -> int:
    with connect(settings, role=LOADER) as conn:
        return conn.execute("SELECT count(*) FROM raw.receipt").fetchone()[0]


def _set_aside(settings: Settings, source: Path) -> None:
    """Move archive/ and quarantine/ into ``source`` (or, resuming, drop what the last attempt made)."""
    if source.exists():
        log.warning("resuming the interrupted rebuild from %s: emptying the registry it had filled", source)
        from hrss_warehouse.spec import load_spec

        spec = load_spec()
        tables = [*REGISTRY_TABLES, *(f"raw.{spec.raw_table(form)}" for form in spec.form_codes)]
        with connect(settings, role=LOADER) as conn:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
            conn.commit()
        for folder in (settings.archive_dir, settings.quarantine_dir):
            shutil.rmtree(folder, ignore_errors=True)
        return
    manifest = receipts_manifest.manifest_path(settings.archive_dir)
    if not manifest.is_file():
        raise RebuildError(f"no receipts manifest at {manifest}: nothing says which file was received when")
    held = _receipts(settings)
    if held:
        raise RebuildError(f"a rebuild needs a fresh warehouse, but raw.receipt already holds {held} "
                           f"receipts (HRSS_HOME={settings.home})")
    source.mkdir()
    for folder in (settings.archive_dir, settings.quarantine_dir):
        if folder.exists():
            folder.rename(source / folder.name)


def _stored(source: Path, recorded: str) -> Path | None:
    """Where the file of a receipt is in the set-aside folders (quarantining moved some; the home
    may have moved since, so only the last two parts of the recorded path count)."""
    path = Path(recorded)
    for folder in ("archive", "quarantine"):
        candidate = source / folder / path.parent.name / path.name
        if candidate.is_file():
            return candidate
    return None


def _stored_receipts(source: Path) -> list[tuple[dict, Path]]:
    """The manifest's receipts in order, each with its stored file; a receipt without one is skipped."""
    found = []
    for entry in receipts_manifest.read(source / "archive"):
        stored = _stored(source, entry["stored_path"])
        if stored is None:
            log.warning("receipt %s (%s): no stored file, skipped (its transaction did not commit)",
                        entry["receipt_id"], entry["file_name"])
        else:
            found.append((entry, stored))
    return found


def _rounds(receipts: list[tuple[dict, Path]]) -> list[list[tuple[dict, Path]]]:
    """The receipts in order, cut into rounds whose file names are distinct (one landing folder each)."""
    rounds: list[list[tuple[dict, Path]]] = [[]]
    names: set[str] = set()
    for entry, stored in receipts:
        if entry["file_name"] in names:
            rounds.append([])
            names.clear()
        names.add(entry["file_name"])
        rounds[-1].append((entry, stored))
    return [r for r in rounds if r]


def _land_copy(stored: Path, landing: Path, entry: dict) -> Path:
    """A copy of a stored file in ``landing`` under its received name."""
    target = landing / entry["file_name"]
    shutil.copyfile(stored, target)
    return target


def _scans(source: Path, receipts: list[tuple[dict, Path]]) -> list[dict]:
    """The landing scans to restore: those recorded committed, and those a restored receipt names."""
    named = {entry["scan_id"] for entry, _ in receipts}
    return [scan for scan, committed in receipts_manifest.read_scans(source / "archive")
            if committed or scan["scan_id"] in named]


def _verify(settings: Settings, entries: list[dict]) -> None:
    """Every receipt of the manifest is in the new registry, in the same order, with the same
    checksum, name and arrival (received time, scan, modification time, first scan, sub-folder)."""
    with connect(settings, role=LOADER) as conn:
        restored = conn.execute(f"SELECT {', '.join(ARRIVAL)} FROM raw.receipt "
                                "ORDER BY receipt_id").fetchall()
    expected = [tuple(e[column] for column in ARRIVAL) for e in entries]
    if restored != expected:
        missing = [e for e in expected if e not in restored]
        raise RebuildError(f"the rebuilt registry differs from the manifest ({len(restored)} receipts, "
                           f"{len(expected)} expected; first missing: {missing[:3]})")


def _unaccounted(settings: Settings, source: Path) -> list[Path]:
    """Files set aside whose checksum (the start of a stored file's name) has no receipt now."""
    with connect(settings, role=LOADER) as conn:
        known = {row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM raw.receipt")}
    manifest = receipts_manifest.manifest_path(source / "archive")
    return [path for path in source.rglob("*")
            if path.is_file() and path != manifest and path.name.split(".")[0] not in known]


def _by_scan(receipts: list[tuple[dict, Path]]) -> list[list[tuple[dict, Path]]]:
    """The receipts in order, cut where the scan that found them changes: one nightly run each."""
    runs: list[list[tuple[dict, Path]]] = []
    for receipt in receipts:
        if not runs or runs[-1][-1][0]["scan_id"] != receipt[0]["scan_id"]:
            runs.append([])
        runs[-1].append(receipt)
    return runs


def rebuild_from_archive(settings: Settings, *, build: bool = True) -> dict:
    """Register every archived and quarantined file again, then check, load, build and publish.

    The files of each original run (landing scan) are registered and loaded before the next run's, as
    they were: a return's history checks (H01/H02) see the returns in force that its run saw. With
    ``build`` false the marts are neither built nor published (the registry and raw tables alone).
    """
    from hrss_warehouse import pipeline
    from hrss_warehouse.stages import publish, register, transform

    settings.ensure_dirs()
    db.ensure_raw_schema(settings)
    source = settings.home / SOURCE_DIR
    _set_aside(settings, source)
    settings.ensure_dirs()
    receipts = _stored_receipts(source)
    entries = [entry for entry, _ in receipts]
    scans = _scans(source, receipts)
    work = settings.home / "work" / "rebuild-landing"
    totals = {"accepted": 0, "quarantined": 0, "rows": 0}
    with graceful.sigterm_stops() as stop:
        for run in _by_scan(receipts):
            if stop.requested:
                raise graceful.Stopped("stopped on SIGTERM between two runs: run `hrss rebuild "
                                       "--from-archive` again to start over")
            shutil.rmtree(work, ignore_errors=True)
            landed = []
            for number, round_ in enumerate(_rounds(run)):
                landing = work / str(number)
                landing.mkdir(parents=True)
                landed += [(_land_copy(stored, landing, entry), entry) for entry, stored in round_]
            batches = register.register_replayed(settings, scans, landed)
            scans = []  # all restored with the first run
            loaded = pipeline.load_batches(settings, batches, stop)
            for key in totals:
                totals[key] += loaded[key]
    shutil.rmtree(work, ignore_errors=True)
    if stop.requested:
        raise graceful.Stopped("stopped on SIGTERM in the last run: run `hrss rebuild --from-archive` again "
                               "to start over")
    _verify(settings, entries)
    published = None
    if build:
        transform.build(settings, full_refresh=True)
        published = publish.publish(settings)["invocation_id"]
    unaccounted = _unaccounted(settings, source)
    if unaccounted:  # e.g. stored before the manifest existed: never deleted, the operator decides
        log.warning("%d files in %s have no receipt in the rebuilt warehouse (e.g. %s); the folder is kept",
                    len(unaccounted), source, unaccounted[0])
    else:
        shutil.rmtree(source)
    return {"receipts": len(entries), **totals, "published": published}
