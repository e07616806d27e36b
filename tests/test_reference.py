"""The NBS division registry: the committed file, the read API, and `reference.division` in PostgreSQL.

The literal figures below were written by hand from NBS publications and the issue, not computed
from the file under test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hrss_warehouse.config import TRANSFORMER
from hrss_warehouse.db import connect
from hrss_warehouse.stages import reference


def test_edition_for_survey_year_clamps() -> None:
    assert reference.EDITIONS == (2016, 2017, 2018, 2019, 2020, 2021, 2022, 2023)
    assert reference.edition_for_survey_year(2010) == 2016
    assert reference.edition_for_survey_year(2016) == 2016
    assert reference.edition_for_survey_year(2019) == 2019
    assert reference.edition_for_survey_year(2023) == 2023
    assert reference.edition_for_survey_year(2026) == 2023
    assert reference.edition(2014).equals(reference.edition(2016))


def test_file_shape_and_codes_stay_text() -> None:
    frame = reference.divisions()
    assert tuple(frame.columns) == reference.COLUMNS
    assert frame["code"].str.fullmatch(r"\d{12}").all()
    assert not frame.duplicated(["code", "first_year"]).any()
    assert frame["code"].is_monotonic_increasing
    province = frame[frame["code"] == "420000000000"].iloc[0]
    assert (province["name"], province["level"], province["prefecture_code"]) == ("湖北省", "province", "")
    village = frame[frame["level"] == "village"].iloc[0]
    assert village["township_code"] == village["code"][:9] + "000"
    # a code is in one span per edition
    for year in reference.EDITIONS:
        assert not reference.edition(year)["code"].duplicated().any()


def test_spot_checks_nbs_2016_2017() -> None:
    e2017 = reference.edition(2017)
    hubei = e2017[e2017["province_code"] == "420000"]
    assert (hubei["level"] == "township").sum() == 1484
    shandong = reference.reporting_counties(2017).query("province_code == '370000'")
    assert len(shandong) == 157
    assert (~shandong["is_dev_zone"]).sum() == 137
    henan = {year: reference.reporting_counties(year).query("province_code == '410000'")
             for year in (2016, 2017)}
    assert (len(henan[2016]), len(henan[2017])) == (159, 182)
    assert not henan[2016]["is_dev_zone"].any()
    zhengzhou_zone = henan[2017].set_index("code").loc["410171000000"]
    assert bool(zhengzhou_zone["is_dev_zone"])


def test_placeholders_marked_and_not_reporting() -> None:
    frame = reference.divisions()
    placeholders = frame[frame["is_placeholder"]]
    assert set(placeholders["name"]) == {"市辖区"}
    assert set(placeholders.query("level == 'prefecture'")["code"]) == {
        "110100000000", "120100000000", "310100000000", "500100000000"}
    assert set(placeholders.query("level == 'county'")["code"]) == {"460201000000"}
    assert "460201000000" not in set(reference.reporting_counties(2016)["code"])


@pytest.mark.parametrize("survey_year", [2014, 2019, 2030])
def test_edition_codes_are_the_editions_units(survey_year: int) -> None:
    edition = reference.edition(survey_year)
    for level in ("township", "village"):
        expected = edition.loc[edition["level"] == level, ["code", "county_code"]].reset_index(drop=True)
        pd.testing.assert_frame_equal(reference.edition_codes(survey_year, level), expected)
    counties = reference.reporting_counties(survey_year)[["code", "county_code"]]
    pd.testing.assert_frame_equal(reference.edition_codes(survey_year, "county"), counties)


def test_laiwu_merged_into_jinan_in_2019() -> None:
    e2018, e2019 = reference.edition(2018), reference.edition(2019)
    laiwu = e2018.set_index("code").loc["371200000000"]
    assert (laiwu["name"], laiwu["level"]) == ("莱芜市", "prefecture")
    assert "371200000000" not in set(e2019["code"])
    assert (e2019["prefecture_code"] == "371200").sum() == 0
    jinan_2019 = e2019.query("level == 'county' and prefecture_code == '370100'").set_index("code")["name"]
    assert jinan_2019["370116000000"] == "莱芜区"
    assert jinan_2019["370117000000"] == "钢城区"
    assert "370116000000" not in set(e2018["code"])
    span = reference.divisions().query("code == '371202000000'")
    assert span[["name", "first_year", "last_year"]].values.tolist() == [["莱城区", 2016, 2018]]


def test_township_merger_xiadong_into_chicheng() -> None:
    # 四川 遂宁 蓬溪县: 下东乡 (510921200) is gone from the 2019 edition; its villages moved to 赤城镇.
    before = reference.units_of_county(2018, "510921", "township").set_index("code")["name"]
    after = reference.units_of_county(2019, "510921", "township").set_index("code")["name"]
    assert before["510921200000"] == "下东乡"
    assert "510921200000" not in after.index
    assert after["510921100000"] == before["510921100000"] == "赤城镇"
    villages_2018 = reference.units_of_county(2018, "510921", "village")
    villages_2019 = reference.units_of_county(2019, "510921", "village")
    moved = set(villages_2018.query("township_code == '510921200000'")["name"])
    assert len(moved) > 10
    assert moved <= set(villages_2019.query("township_code == '510921100000'")["name"])


def test_units_of_county() -> None:
    villages = reference.units_of_county(2030, "420106", "village")
    assert len(villages) > 0
    assert villages["code"].is_monotonic_increasing
    assert (villages["county_code"] == "420106").all()
    assert (villages["first_year"] <= 2023).all() and (villages["last_year"] == 2023).all()
    assert reference.units_of_county(2017, "999999", "township").empty
    with pytest.raises(ValueError, match="level"):
        reference.units_of_county(2017, "420106", "county")


def test_load_matches_source_counts_and_is_idempotent(settings) -> None:
    first = reference.load_divisions(settings)
    second = reference.load_divisions(settings)
    assert first == second == len(reference.divisions())
    committed = pd.read_csv(reference.COUNTS_FILE, dtype={"province_code": str})
    with connect(settings, role=TRANSFORMER) as conn:  # dbt's role reads both tables
        loaded = conn.execute("""
            SELECT d.province_code, d.level, e.edition, count(*),
                   count(*) FILTER (WHERE d.is_dev_zone), count(*) FILTER (WHERE d.is_placeholder)
            FROM reference.division d
            JOIN generate_series(2016, 2023) AS e(edition) ON e.edition BETWEEN d.first_year AND d.last_year
            GROUP BY 1, 2, 3""").fetchall()
        counts_rows = conn.execute("SELECT count(*) FROM reference.division_counts").fetchone()[0]
        key = conn.execute("""
            SELECT pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = 'reference.division'::regclass AND contype = 'p'""").fetchone()[0]
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'reference' "
                             "AND tablename = 'division'").fetchone()[0]
    assert key == "PRIMARY KEY (code, first_year)"
    assert owner == "hrss_loader"
    assert counts_rows == len(committed)
    expected = {(r.province_code, r.level, r.edition): (r.units, r.dev_zones, r.placeholders)
                for r in committed.itertuples()}
    assert {(p, lvl, e): (n, dz, ph) for p, lvl, e, n, dz, ph in loaded} == expected
