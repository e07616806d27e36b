"""Disaster recovery at the marts (soak; the quick variant is test_recovery.py): a warehouse rebuilt
from its archive, and a backup restored on a fresh HRSS_HOME, give the same marts (the checksums of
test_end_to_end) and keep working.

The history: generated returns of Chongqing for two survey years ingested year by year (with the bad
revisions the generator sends, which are quarantined), then, in a county's sub-folder of the landing
folder, a byte-identical re-send and a good revision that replaces a county's return in force (three
scans: received times clamped between scans); then a full build and publish.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_end_to_end import build_and_publish, checksums, raw_counts
from test_recovery import _fresh_warehouse, _receipts, _revision, _scans

from hrss_warehouse import cli, pipeline
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.local import postgres
from hrss_warehouse.operations import backup, rebuild
from hrss_warehouse.stages import receipts_manifest

pytestmark = pytest.mark.soak

PROVINCE, YEARS, SEED = "50", [2016, 2017], 11
CLEAN_COUNTIES = 2  # plus two counties that sent a quarantined file


def _chosen(manifest: dict) -> list[dict]:
    files = manifest["files"]
    bad = sorted({f["county"] for f in files if f["outcome"] == "quarantined"})[:2]
    clean = sorted({f["county"] for f in files} - set(bad))[:CLEAN_COUNTIES]
    return [f for f in files if f["county"] in {*bad, *clean}]


@pytest.fixture(scope="module")
def history(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from hrss_tools import generate
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    returns = tmp_path_factory.mktemp("returns")
    generated = generate.generate(returns, provinces=[PROVINCE], years=YEARS, bad_share=0.15, seed=SEED,
                                  progress=False)
    chosen = _chosen(json.loads(Path(generated["manifest"]).read_text(encoding="utf-8")))
    assert {f["outcome"] for f in chosen} == {"accepted", "quarantined"}
    landing = settings.landing_dir
    for year in YEARS:  # one nightly run per survey year
        for entry in chosen:
            if entry["year"] == year:
                shutil.copy2(returns / entry["file"], landing / entry["file"])
        pipeline.ingest_folder(settings, landing)
    workbook = next(f["file"] for f in chosen if f["outcome"] == "accepted" and f["file"].endswith(".xlsx")
                    and f["year"] == YEARS[-1])
    county_folder = landing / chosen[0]["county"]  # an SFTP drop zone's folder of the county's own
    county_folder.mkdir()
    shutil.copy2(returns / chosen[0]["file"], county_folder / chosen[0]["file"])  # a byte-identical re-send
    _revision(returns / workbook, county_folder, 5)
    pipeline.ingest_folder(settings, landing)
    build_and_publish(settings, full_refresh=True)
    with connect(settings, role=LOADER) as conn:
        outcomes = dict(conn.execute("SELECT outcome, count(*) FROM raw.submission GROUP BY 1").fetchall())
        resends = conn.execute("SELECT count(*) FROM raw.receipt WHERE stored_path LIKE %s",
                               (f"{settings.archive_dir}/resent/%",)).fetchone()[0]
        subfolders = conn.execute("SELECT count(*) FROM raw.receipt WHERE landing_subfolder = %s",
                                  (chosen[0]["county"],)).fetchone()[0]
    assert outcomes.get("quarantined") and outcomes.get("accepted") and resends == 1 and subfolders == 2
    assert len(_scans(settings)) == len(YEARS) + 1
    return {"checksums": checksums(settings), "raw": raw_counts(settings), "receipts": _receipts(settings),
            "scans": _scans(settings),
            "returns": returns, "workbook": workbook}


def test_the_manifest_holds_every_receipt_column(settings: Settings, history: dict) -> None:
    entries = receipts_manifest.read(settings.archive_dir)
    with connect(settings, role=LOADER) as conn:
        cur = conn.execute("SELECT * FROM raw.receipt ORDER BY receipt_id")
        columns = [c.name for c in cur.description]
        rows = cur.fetchall()
    assert len(entries) == len(rows) == len(history["receipts"])
    assert all(list(entry) == columns for entry in entries)
    assert [tuple(e[c] for c in rebuild.ARRIVAL) for e in entries] == history["receipts"]
    scans = receipts_manifest.read_scans(settings.archive_dir)
    assert [tuple(scan.values()) for scan, committed in scans] == history["scans"]


def test_a_rebuild_from_the_archive_gives_the_same_marts(settings: Settings, history: dict) -> None:
    assert cli.main(["rebuild", "--from-archive"]) == 2  # the warehouse is not fresh: refused, unchanged
    _fresh_warehouse(settings)
    result = rebuild.rebuild_from_archive(settings)
    assert result["receipts"] == len(history["receipts"])
    assert _receipts(settings) == history["receipts"]
    assert _scans(settings) == history["scans"]  # and none of the rebuild's own folders
    assert raw_counts(settings) == history["raw"]
    assert checksums(settings) == history["checksums"]
    assert not (settings.home / rebuild.SOURCE_DIR).exists()


def test_backup_then_restore_on_a_fresh_home_gives_the_same_marts(settings: Settings, history: dict,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    made = backup.backup(settings, folder)
    assert made["receipts"] == len(history["receipts"])
    postgres.stop(settings)
    shutil.rmtree(settings.home)  # the home is lost: database, archive, quarantine, secrets
    restored = backup.restore(settings, folder)
    assert restored["receipts"] == len(history["receipts"])
    assert checksums(settings) == history["checksums"]
    assert raw_counts(settings) == history["raw"]
    # the next nightly run works on the restored warehouse: a new revision is loaded and published
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    _revision(history["returns"] / history["workbook"], settings.landing_dir, 6)
    ingested = pipeline.ingest_folder(settings, settings.landing_dir)
    assert ingested["accepted"] == 3 and ingested["quarantined"] == 0
    build_and_publish(settings)
    assert checksums(settings) != history["checksums"]
    assert len(_receipts(settings)) == len(history["receipts"]) + 1
