"""Registration: names, hashes, receipts, content-addressed archive, batches per province."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from ingest_helpers import fixture_file

from hrss_warehouse import check, files
from hrss_warehouse.config import LOADER
from hrss_warehouse.db import connect
from hrss_warehouse.stages import land, load, register


@pytest.mark.parametrize(("name", "expected"), [
    ("420102_2017.xlsx", ("420102", 2017, None, 1, "xlsx")),
    ("420102_2017_r2.xlsx", ("420102", 2017, None, 2, "xlsx")),
    ("420102_2017_JCPT-3_r3.csv", ("420102", 2017, "JCPT-3", 3, "csv")),
    ("420102_2017_jcpt-2.CSV", ("420102", 2017, "JCPT-2", 1, "csv")),
    ("420102_2017.csv", None), ("420102_2017_JCPT-2.xlsx", None), ("42010_2017.xlsx", None),
    ("420102_2013.xlsx", None), ("420102_2099.xlsx", None), ("420102_2017_JCPT-9.csv", None),
    ("../420102_2017.xlsx", None), ("420102_2017_r0.xlsx", None),
    # Excel 97-2003 (S02 names .xls); a name ending in a newline, full-width digits: S02
    ("420102_2017_r2.xls", ("420102", 2017, None, 2, "xls")),
    ("420102_2017.XLS", ("420102", 2017, None, 1, "xls")),
    ("420102_2017.xlsx\n", None), ("420102_2017_JCPT-1.csv\n", None), ("４２０１０２_2017.xlsx", None),
    ("420102_２０１７.xlsx", None), ("420102_2017_r２.xlsx", None), ("420102_2017_JCPT-１.csv", None),
])
def test_file_names(name, expected):
    parsed = files.parse_file_name(name)
    assert (None if parsed is None else (parsed.county_code, parsed.survey_year, parsed.form,
                                         parsed.revision, parsed.kind)) == expected


def _rows(settings, sha):
    with connect(settings, role=LOADER) as conn:
        return conn.execute("SELECT form, county_code, outcome, archived_path FROM raw.submission "
                            "WHERE sha256 = %s ORDER BY form", (sha,)).fetchall(), conn.execute(
            "SELECT count(*) FROM raw.receipt WHERE sha256 = %s", (sha,)).fetchone()[0]


def test_register_archives_records_and_batches(settings, tmp_path):
    good = fixture_file("pass", "good_v2014")
    landed = tmp_path / "150206_2015_r7.xlsx"
    shutil.copyfile(good, landed)
    sha = files.sha256_of(landed)
    batches = register.register_files(settings, land.scan(settings, tmp_path, min_age_s=0))
    rows, receipts = _rows(settings, sha)
    assert [r[0] for r in rows] == ["JCPT-1", "JCPT-2", "JCPT-3"] and receipts == 1
    archived = Path(rows[0][3])
    assert archived == settings.archive_dir / sha[:2] / f"{sha}.xlsx"
    assert archived.read_bytes() == good.read_bytes()
    assert not landed.exists()
    batch = next(b for b in batches if b["batch"] == "15")
    assert len(batch["submission_ids"]) >= 3

    # the rows committed but the move was lost (a crash in between): the rerun completes the move only
    shutil.move(archived, landed)
    register.register_files(settings, land.scan(settings, tmp_path, min_age_s=0))
    assert _rows(settings, sha)[1] == 1 and archived.exists() and not landed.exists()

    # a byte-identical re-send under another name: another receipt, no new submission, kept on disk
    resend = tmp_path / "copy_of_return.xlsx"
    shutil.copyfile(good, resend)
    register.register_files(settings, land.scan(settings, tmp_path, min_age_s=0))
    rows_after, receipts_after = _rows(settings, sha)
    assert rows_after == rows and receipts_after == 2
    assert any((settings.archive_dir / "resent").glob(f"{sha}.*"))
    _finish(settings, batches)


def test_unreadable_files_get_one_row_with_nulls(settings, tmp_path):
    landed = tmp_path / "no name at all.xlsx"
    landed.write_bytes(b"\x00\x01garbage")
    sha = files.sha256_of(landed)
    batches = register.register_files(settings, land.scan(settings, tmp_path, min_age_s=0))
    rows, _ = _rows(settings, sha)
    assert rows == [(None, None, "pending", str(settings.archive_dir / sha[:2] / f"{sha}.bin"))]
    assert any(b["batch"] == register.UNNAMED_BATCH for b in batches)
    _finish(settings, batches)
    rows, _ = _rows(settings, sha)
    assert rows[0][2] == "quarantined" and Path(rows[0][3]).parent.parent == settings.quarantine_dir


def _finish(settings, batches):
    """Check and load what a test registered, so no submission is left pending for later tests."""
    for batch in batches:
        load.load_batch(settings, check.parse_and_check_batch(settings, batch))


def test_batches_pack_whole_provinces_up_to_the_size():
    rows = [(1, "110101"), (2, "110102"), (3, "120101"), (4, "130101"), (5, "130102"), (6, "130103"),
            (7, None)]
    assert register.pack_batches(rows, 3) == [
        {"batch": "11-12", "submission_ids": [1, 2, 3]},
        {"batch": "13", "submission_ids": [4, 5, 6]},  # a province is not joined past the size
        {"batch": register.UNNAMED_BATCH, "submission_ids": [7]}]
    assert [b["batch"] for b in register.pack_batches(rows, 100)] == ["11-13", register.UNNAMED_BATCH]


def test_a_province_larger_than_the_size_splits_at_county_boundaries():
    # several survey years of one province in one landing folder: a county's returns stay together
    rows = [(1, "130101"), (2, "130102"), (3, "130101"), (4, "130102"), (5, "130103"), (6, "130101"),
            (7, "140101"), (8, "150101"), (9, "150102")]
    batches = register.pack_batches(rows, 4)
    assert batches == [
        {"batch": "130101", "submission_ids": [1, 3, 6]},
        {"batch": "130102-130103", "submission_ids": [2, 4, 5]},
        {"batch": "14-15", "submission_ids": [7, 8, 9]},  # the split parts take no other province
    ]
    assert [b["batch"] for b in register.pack_batches(rows, 1)] == [
        "130101", "130102", "130103", "14", "150101", "150102"]  # a county larger than the size is whole
    assert all(len(b["submission_ids"]) <= 4 for b in batches)
