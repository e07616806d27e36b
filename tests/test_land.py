"""Landing: which files are picked up, and every entry left in the landing folder with its reason."""

from __future__ import annotations

import logging
import os
import time

import pytest

from hrss_warehouse.config import ConfigError, Settings
from hrss_warehouse.stages import land


def test_scan_registers_sub_folders_and_leaves_every_other_entry_with_its_reason(tmp_path, caplog):
    settings = Settings.from_env()
    for name in ("420102_2017.xlsx", "..%2Fetc_2017.xlsx", "110101_2017_JCPT-2.csv", ".hidden_2017.xlsx"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "county_420103").mkdir()
    (tmp_path / "county_420103" / "420103_2017.xlsx").write_bytes(b"x")  # an SFTP drop zone per county
    (tmp_path / "county_420103" / "deeper").mkdir()
    (tmp_path / "county_420103" / "deeper" / "420103_2017_JCPT-1.csv").write_bytes(b"x")
    (tmp_path / "~$420102_2017.xlsx").write_bytes(b"lock")  # Excel's lock file
    (tmp_path / ".~lock.420102_2017.xlsx#").write_bytes(b"lock")  # LibreOffice's
    (tmp_path / "420104_2017.xlsx.part").write_bytes(b"half")
    (tmp_path / "420105_2017.XLSX.TMP").write_bytes(b"half")
    (tmp_path / "link_2017.xlsx").symlink_to("/etc/passwd")
    (tmp_path / "linked_folder").symlink_to("/etc")
    os.mkfifo(tmp_path / "420106_2017.xlsx")
    with caplog.at_level(logging.WARNING, logger="hrss_warehouse.stages.land"):
        scan = land.scan(settings, tmp_path, min_age_s=0)
    found = [os.path.relpath(p, tmp_path) for p in scan.files]
    assert found == ["..%2Fetc_2017.xlsx", ".hidden_2017.xlsx", "110101_2017_JCPT-2.csv", "420102_2017.xlsx",
                     "county_420103/420103_2017.xlsx", "county_420103/deeper/420103_2017_JCPT-1.csv"]
    assert [scan.subfolder(p) for p in scan.files][-2:] == ["county_420103", "county_420103/deeper"]
    reasons = {os.path.relpath(s.path, tmp_path): s.reason for s in scan.skipped}
    assert reasons == {
        "~$420102_2017.xlsx": land.LOCK_FILE, ".~lock.420102_2017.xlsx#": land.LOCK_FILE,
        "420104_2017.xlsx.part": land.IN_PROGRESS_UPLOAD, "420105_2017.XLSX.TMP": land.IN_PROGRESS_UPLOAD,
        "link_2017.xlsx": land.SYMLINK, "linked_folder": land.SYMLINK, "420106_2017.xlsx": land.NOT_A_FILE}
    # one log line per entry left, naming it and the reason
    for path, reason in reasons.items():
        assert any(path in r.getMessage() and reason in r.getMessage() for r in caplog.records), path
    assert land.Scan.from_dict(scan.as_dict()) == scan


def test_a_file_younger_than_the_minimum_age_is_left_for_the_next_run(tmp_path, monkeypatch):
    fresh, settled = tmp_path / "420102_2017.xlsx", tmp_path / "420103_2017.xlsx"
    settled.write_bytes(b"x")
    time.sleep(1.5)
    fresh.write_bytes(b"x")
    # a copy tool that preserves the sender's (old or future) modification time makes it no older
    for stamp in (time.time() - 3600, time.time() + 3600):
        os.utime(fresh, (stamp, stamp))
        scan = land.scan(Settings.from_env(), tmp_path, min_age_s=1)
        assert scan.files == [str(settled)]
        assert [(s.path, s.reason.split(":")[0]) for s in scan.skipped] == [(str(fresh), land.TOO_NEW)]
    monkeypatch.delenv("HRSS_LANDING_MIN_AGE_S", raising=False)
    settings = Settings.from_env()
    # the scheduled DAG's default is 60 s; a folder handed over by hand is finished (0)
    assert land.default_min_age_s(settings, scheduled=True) == 60
    assert land.default_min_age_s(settings, scheduled=False) == 0
    assert land.scan(settings, tmp_path).files == []
    assert land.scan(settings, tmp_path, min_age_s=0).files == [str(fresh), str(settled)]
    monkeypatch.setenv("HRSS_LANDING_MIN_AGE_S", "7200")
    settings = Settings.from_env()
    assert land.default_min_age_s(settings, scheduled=False) == 7200
    assert land.scan(settings, tmp_path).files == []
    monkeypatch.setenv("HRSS_LANDING_MIN_AGE_S", "-1")
    with pytest.raises(ConfigError, match="HRSS_LANDING_MIN_AGE_S"):
        Settings.from_env()


def test_a_missing_landing_folder_fails_with_one_line_naming_it(tmp_path):
    settings = Settings.from_env()
    for wrong in (tmp_path / "typo", tmp_path / "a_file"):
        if wrong.name == "a_file":
            wrong.write_bytes(b"x")
        with pytest.raises(land.LandingError) as failed:
            land.scan(settings, wrong)
        assert str(wrong) in str(failed.value) and "\n" not in str(failed.value)
