"""Landing: which files are picked up, in a stable order."""

from __future__ import annotations

from hrss_warehouse.land import discover


def test_discover_lists_regular_files_by_name_and_skips_uploads_links_and_folders(settings, tmp_path):
    for name in ("420102_2017.xlsx", "..%2Fetc_2017.xlsx", "110101_2017_JCPT-2.csv", ".hidden_2017.xlsx"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "~$420102_2017.xlsx").write_bytes(b"lock")
    (tmp_path / "420103_2017.xlsx.part").write_bytes(b"half")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link_2017.xlsx").symlink_to("/etc/passwd")
    found = [p.rsplit("/", 1)[1] for p in discover(settings, tmp_path)]
    assert found == sorted(["420102_2017.xlsx", "..%2Fetc_2017.xlsx", "110101_2017_JCPT-2.csv",
                            ".hidden_2017.xlsx"])
    assert discover(settings, tmp_path / "missing") == []
