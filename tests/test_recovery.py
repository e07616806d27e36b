"""Disaster recovery: a warehouse rebuilt from its archive, and a backup restored on a fresh HRSS_HOME,
give the same registry and raw tables (quick) and the same marts (soak: the checksums of
test_end_to_end), and keep working.

Quick: the fixtures of one county over two nightly runs: a 2015 return and a quarantined 2017 return,
then, in the county's own sub-folder of the landing folder, a byte-identical re-send of the 2015 return
and a good 2017 revision. No dbt build: the marts are a function of the raw tables compared here.
The soak variant, at the marts: test_recovery_soak.py.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import zipfile
from pathlib import Path

import pytest
from ingest_helpers import fixture_file
from warehouse_reset import drop_project_schemas

from hrss_warehouse import cli, pipeline
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.local import postgres
from hrss_warehouse.operations import backup, rebuild
from hrss_warehouse.stages import receipts_manifest


def _receipts(settings: Settings) -> list[tuple]:
    """Each receipt's file and arrival: received time, scan, modification time, first scan, sub-folder."""
    with connect(settings, role=LOADER) as conn:
        return conn.execute(f"SELECT {', '.join(rebuild.ARRIVAL)} FROM raw.receipt "
                            "ORDER BY receipt_id").fetchall()


def _scans(settings: Settings) -> list[tuple]:
    with connect(settings, role=LOADER) as conn:
        return conn.execute("SELECT scan_id, landing, started_at, finished_at, recorded_at "
                            "FROM raw.landing_scan ORDER BY scan_id").fetchall()


def _raw(settings: Settings) -> dict[str, str]:
    """An md5 over each raw table's sorted rows (the registry's own timestamps left out; stored paths
    relative to the home, which a restore into another home rewrites)."""
    from hrss_warehouse.spec import load_spec

    spec = load_spec()
    queries = {"submission": "SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM (SELECT sha256, "
                             "size_bytes, file_name, county_code, survey_year, form, revision, received_at, "
                             "form_version, outcome, failed_rules, soft_flags, "
                             "replace(archived_path, %(home)s, '$HRSS_HOME') AS archived_path, submission_id "
                             "FROM raw.submission) t"}
    for form in spec.form_codes:
        table = spec.raw_table(form)
        queries[table] = (f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                          f"FROM raw.{table} t")
    with connect(settings, role=LOADER) as conn:
        return {name: conn.execute(query, {"home": str(settings.home)}).fetchone()[0]
                for name, query in queries.items()}


def _state(settings: Settings) -> dict:
    return {"receipts": _receipts(settings), "scans": _scans(settings), "raw": _raw(settings)}


@pytest.fixture(scope="module")
def small_history(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two nightly runs of one county (see the module's docstring)."""
    landing = settings.landing_dir
    early, bad, good = (fixture_file(*case) for case in (("pass", "good_v2014"), ("fail", "C01"),
                                                         ("pass", "good")))
    shutil.copy2(early, landing / early.name)
    shutil.copy2(bad, landing / bad.name)
    first = pipeline.ingest_folder(settings, landing)
    county_folder = landing / early.name[:6]
    county_folder.mkdir()
    shutil.copy2(early, county_folder / early.name)  # a byte-identical re-send
    revision = county_folder / good.name.replace(".xlsx", "_r2.xlsx")
    shutil.copy2(good, revision)
    os.utime(revision, (time.time(), time.time()))
    second = pipeline.ingest_folder(settings, landing)
    assert (first["accepted"], first["quarantined"], second["accepted"]) == (3, 3, 3), (first, second)
    state = _state(settings)
    assert len(state["receipts"]) == 4 and len(state["scans"]) == 2
    assert [r[-1] for r in state["receipts"]] == ["", "", early.name[:6], early.name[:6]]
    return {**state, "revision": good}


def test_the_manifest_holds_every_receipt_and_scan(settings: Settings, small_history: dict) -> None:
    entries = receipts_manifest.read(settings.archive_dir)
    with connect(settings, role=LOADER) as conn:
        cur = conn.execute("SELECT * FROM raw.receipt ORDER BY receipt_id")
        columns = [c.name for c in cur.description]
    assert all(list(entry) == columns for entry in entries)
    assert [tuple(e[c] for c in rebuild.ARRIVAL) for e in entries] == small_history["receipts"]
    scans = receipts_manifest.read_scans(settings.archive_dir)
    assert [tuple(scan.values()) for scan, _ in scans] == small_history["scans"]


def test_a_rebuild_from_the_archive_restores_the_registry(settings: Settings, small_history: dict) -> None:
    assert cli.main(["rebuild", "--from-archive"]) == 2  # the warehouse is not fresh: refused, unchanged
    _fresh_warehouse(settings)
    result = rebuild.rebuild_from_archive(settings, build=False)
    assert result["receipts"] == 4
    state = _state(settings)
    assert state == {k: small_history[k] for k in state}  # scans and receipts with their ids, raw tables
    assert not (settings.home / rebuild.SOURCE_DIR).exists()


def test_backup_then_restore_on_a_fresh_home_restores_the_registry(settings: Settings, small_history: dict,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    before = _state(settings)
    made = backup.backup(settings, tmp_path / "backup")
    assert made["receipts"] == 4
    # The home is lost: the restore goes to a new, empty home with a database port of its own. (Deleting
    # the session's home would also delete what other tests keep in it, such as a running server's pid.)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HRSS_HOME", str(tmp_path / "new-home"))
    monkeypatch.setenv("HRSS_PG_PORT", str(port))
    fresh = Settings.from_env()
    try:
        assert backup.restore(fresh, tmp_path / "backup")["receipts"] == 4
        assert _state(fresh) == before
        fresh.landing_dir.mkdir(parents=True, exist_ok=True)  # the next nightly run works
        _revision(small_history["revision"], fresh.landing_dir, 3)
        assert pipeline.ingest_folder(fresh, fresh.landing_dir)["accepted"] == 3
        assert len(_receipts(fresh)) == 5 and len(receipts_manifest.read(fresh.archive_dir)) == 5
    finally:
        postgres.stop(fresh)


def _revision(source: Path, landing: Path, number: int) -> Path:
    """The same return sent again as a revision: new bytes (a zip comment), a later received time."""
    target = landing / source.name.replace(".xlsx", f"_r{number}.xlsx")
    shutil.copy2(source, target)
    with zipfile.ZipFile(target, "a") as book:
        book.comment = f"revision {number}".encode()
    os.utime(target, (time.time(), time.time()))
    return target


def _fresh_warehouse(settings: Settings) -> None:
    """Drop every project schema (the database is lost); archive/ and quarantine/ stay."""
    drop_project_schemas(settings)


