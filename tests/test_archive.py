"""The archive holds what was hashed: copies through a temporary file, files that change while read,
a full disk, concurrent registrations, received times from the scans, and verification on every read."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ingest_helpers import fixture_file

from hrss_warehouse import check, files, pipeline
from hrss_warehouse.config import LOADER
from hrss_warehouse.db import connect
from hrss_warehouse.stages import land, load, register


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _receipts(settings, shas: list[str]) -> list[tuple]:
    with connect(settings, role=LOADER) as conn:
        return conn.execute(
            "SELECT sha256, received_at, modified_at, first_scan, landing_subfolder, stored_path, scan_id "
            "FROM raw.receipt WHERE sha256 = ANY(%s) ORDER BY receipt_id", (shas,)).fetchall()


def _finish(settings, batches: list[dict]) -> None:
    """Check and load what a test registered, so no submission is left pending for later tests."""
    for batch in batches:
        load.load_batch(settings, check.parse_and_check_batch(settings, batch))


def _land(folder: Path, name: str, content: bytes, mtime: float | None = None) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_received_time_is_the_mtime_clamped_between_the_scans(settings, tmp_path):
    """survey_spec/README.md, "Revisions": the modification time clamped between the previous scan and the
    scan that found the file; on a folder's first scan (a migration) it stands alone."""
    landing = tmp_path / "landing"
    old, future = datetime(2019, 3, 20, 8, tzinfo=UTC).timestamp(), float(int(time.time()) + 365 * 86400)
    migrated = _sha(_land(landing, "migrated.bin", b"sent in 2019", old))
    ahead = _sha(_land(landing, "ahead.bin", b"a PC clock a year ahead", future))
    first = land.scan(settings, landing, min_age_s=0)
    batches = register.register_files(settings, first)
    received = {r[0]: r[1:5] for r in _receipts(settings, [migrated, ahead])}
    # first scan: the old mtime stands alone (marked); nothing arrives after the scan that found it
    assert received == {migrated: (_at(old), _at(old), True, ""),
                        ahead: (first.finished_at, _at(future), True, "")}

    # the second scan of the folder: an old mtime is raised to the previous scan, a future one lowered to
    # this scan, one in between kept; the sub-folder is recorded; none is marked
    late = _sha(_land(landing, "county_x/late_copy.bin", b"a correction copied with its old mtime", old))
    ahead_again = _sha(_land(landing, "ahead_again.bin", b"dated in the future again", future))
    honest_path = _land(landing, "honest.bin", b"arrived between the scans")
    honest, honest_mtime = _sha(honest_path), _at(honest_path.stat().st_mtime)
    second = land.scan(settings, landing, min_age_s=0)
    batches += register.register_files(settings, second)
    received = {r[0]: r[1:5] for r in _receipts(settings, [late, ahead_again, honest])}
    assert received == {late: (first.started_at, _at(old), False, "county_x"),
                        ahead_again: (second.finished_at, _at(future), False, ""),
                        honest: (honest_mtime, honest_mtime, False, "")}
    with connect(settings, role=LOADER) as conn:
        scans = conn.execute("SELECT started_at, finished_at FROM raw.landing_scan WHERE landing = %s "
                             "ORDER BY scan_id", (str(landing),)).fetchall()
        submissions = dict(conn.execute("SELECT sha256, received_at FROM raw.submission "
                                        "WHERE sha256 = ANY(%s)", ([late, ahead_again, honest],)).fetchall())
    assert scans == [(first.started_at, first.finished_at), (second.started_at, second.finished_at)]
    assert submissions == {sha: row[0] for sha, row in received.items()}  # revisions are ordered by it
    assert not list(landing.rglob("*.bin"))
    _finish(settings, batches)


def test_a_file_that_grows_while_it_is_read_stays_in_landing_for_the_next_run(settings, tmp_path, monkeypatch,
                                                                               caplog):
    landing = tmp_path / "landing"
    growing = _land(landing, "growing.bin", b"the first part of an upload;")
    steady = _land(landing, "steady.bin", b"a finished upload beside it")
    steady_sha = _sha(steady)
    first_part = _sha(growing)
    monkeypatch.setenv(register.FAULT_PAUSE_ENV, growing.name)  # pause after the first block is read
    marker = settings.home / "work" / "copy_paused"
    scan = land.scan(settings, landing, min_age_s=0)
    errors: list[BaseException] = []

    def registration() -> None:
        try:
            register.register_files(settings, scan)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    registering = threading.Thread(target=registration)
    with caplog.at_level(logging.WARNING, logger="hrss_warehouse.stages.land"):
        registering.start()
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline and registering.is_alive(), "the copy never paused"
            time.sleep(0.05)
        with growing.open("ab") as upload:  # the uploader writes on while we read
            upload.write(b" and the rest of it, written while registration read the file")
        marker.unlink()
        registering.join(60)
    monkeypatch.delenv(register.FAULT_PAUSE_ENV)
    assert not registering.is_alive() and errors == []
    whole = _sha(growing)
    assert growing.exists() and not steady.exists()
    assert [r[0] for r in _receipts(settings, [first_part, whole, steady_sha])] == [steady_sha]
    assert any(str(growing) in r.getMessage() and land.CHANGED_WHILE_READ in r.getMessage()
               for r in caplog.records)
    assert not list((settings.archive_dir / files.INCOMING).glob("*"))
    # the next run stores exactly the bytes it hashed
    batches = register.register_files(settings, land.scan(settings, landing, min_age_s=0))
    stored = [Path(r[5]) for r in _receipts(settings, [whole])]
    assert len(stored) == 1 and _sha(stored[0]) == whole and not growing.exists()
    _finish(settings, batches)


def test_a_full_disk_mid_copy_leaves_no_truncated_file_and_the_rerun_stores_the_intact_copy(
        settings, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    workbook = _land(landing, "150206_2015_r5.xlsx", fixture_file("pass", "good_v2014").read_bytes())
    note = _land(landing, "a_note.bin", b"a second file of the same run")
    landed = {path: path.read_bytes() for path in (workbook, note)}
    shas = [_sha(path) for path in landed]
    # the disk fills half-way through the first file's copy (the write call fails with ENOSPC)
    monkeypatch.setenv(register.FAULT_ENOSPC_ENV, str(workbook.stat().st_size // 2))
    with pytest.raises(land.ArchiveError) as full:
        register.register_files(settings, land.scan(settings, landing, min_age_s=0))
    message = str(full.value)
    assert "No space left on device" in message and str(settings.archive_dir) in message
    assert str(workbook) in message and "\n" not in message
    monkeypatch.delenv(register.FAULT_ENOSPC_ENV)
    assert {path: path.read_bytes() for path in landed} == landed  # both still in landing, untouched
    assert _receipts(settings, shas) == []
    assert not [p for p in settings.archive_dir.rglob("*") if p.is_file() and p.name[:64] in shas]
    assert not list((settings.archive_dir / files.INCOMING).glob("*"))
    batches = register.register_files(settings, land.scan(settings, landing, min_age_s=0))
    stored = {r[0]: Path(r[5]) for r in _receipts(settings, shas)}
    assert sorted(stored) == sorted(shas) and all(_sha(path) == sha for sha, path in stored.items())
    assert stored[shas[0]] == files.archive_path(settings, shas[0], "xlsx")
    _finish(settings, batches)


def test_two_registrations_started_at_the_same_instant_register_each_file_once(settings, tmp_path):
    landing = tmp_path / "landing"
    shas = [_sha(_land(landing, f"{i:03d}_note.bin", f"file {i}".encode())) for i in range(30)]
    scans = [land.scan(settings, landing, min_age_s=0) for _ in range(2)]  # both see every file
    start = threading.Barrier(2)
    errors: list[BaseException] = []
    batches: list[dict] = []

    def registration(scan: land.Scan) -> None:
        start.wait()
        try:
            batches.extend(register.register_files(settings, scan))
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=registration, args=(scan,)) for scan in scans]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    receipts = _receipts(settings, shas)
    assert sorted(r[0] for r in receipts) == sorted(shas)  # one receipt each: no phantom receipts
    assert all(Path(r[5]).is_file() for r in receipts) and not list(landing.iterdir())
    _finish(settings, list({b["batch"]: b for b in batches}.values()))


def test_a_damaged_archive_copy_stops_reprocess_with_an_operator_error(settings, tmp_path):
    landing = tmp_path / "landing"
    name = "150206_2017_JCPT-3_r6.csv"
    shutil.copyfile(fixture_file("pass", "csv_gb18030"), landing.mkdir() or landing / name)
    sha = _sha(landing / name)
    pipeline.ingest_folder(settings, landing)

    def state():
        with connect(settings, role=LOADER) as conn:
            return conn.execute(
                "SELECT s.submission_id, s.outcome, s.archived_path, "
                "(SELECT count(*) FROM raw.jcpt_village_rows t WHERE t.submission_id = s.submission_id), "
                "(SELECT count(*) FROM raw.submission_finding f WHERE f.submission_id = s.submission_id) "
                "FROM raw.submission s WHERE sha256 = %s ORDER BY 1", (sha,)).fetchall()

    before = state()
    assert {row[1] for row in before} == {"accepted"} and sum(row[3] for row in before) > 0
    archived = Path(before[0][2])
    with archived.open("r+b") as damaged:  # one flipped byte in the middle of the stored copy
        damaged.seek(archived.stat().st_size // 2)
        byte = damaged.read(1)
        damaged.seek(-1, os.SEEK_CUR)
        damaged.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(land.ArchiveError) as damaged_copy:
        pipeline.reprocess_year(settings, 2017, counties=["150206"])
    assert name in str(damaged_copy.value) and str(archived) in str(damaged_copy.value)
    assert state() == before  # accepted rows untouched, no finding, the file not quarantined
    # the command line says it in one line, without a traceback
    hrss = str(Path(sys.executable).with_name("hrss"))
    cli = subprocess.run([hrss, "ingest", "reprocess", "--year", "2017", "--county", "150206"],
                         capture_output=True, text=True, timeout=300)  # the session's HRSS_HOME and port
    assert cli.returncode == 2 and "Traceback" not in cli.stderr
    assert cli.stderr.strip().splitlines()[-1].startswith(f"hrss: the stored copy of '{name}'")
    assert state() == before


def test_the_receipt_follows_its_file_into_quarantine(settings, tmp_path):
    landing = tmp_path / "landing"
    sha = _sha(_land(landing, "no county in this name.xlsx", b"not a workbook"))
    _land(landing, "~$no county in this name.xlsx", b"Excel's lock file")
    ingested = pipeline.ingest_folder(settings, landing)
    assert ingested["files"] == 1  # and `hrss ingest folder` names what it left
    lock_file = str(landing / "~$no county in this name.xlsx")
    assert ingested["skipped"] == [{"path": lock_file, "reason": land.LOCK_FILE}]
    with connect(settings, role=LOADER) as conn:
        outcome, archived = conn.execute("SELECT outcome, archived_path FROM raw.submission "
                                         "WHERE sha256 = %s", (sha,)).fetchone()
    assert outcome == "quarantined" and Path(archived).parent.parent == settings.quarantine_dir
    assert [Path(r[5]) for r in _receipts(settings, [sha])] == [Path(archived)] and Path(archived).is_file()
