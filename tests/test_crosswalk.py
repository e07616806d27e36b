"""The boundary crosswalk derived from the registry (crosswalk.py), on real NBS cases.

Expectations written by hand from the NBS editions and the State Council approvals: 莱芜市 was
abolished in January 2019 and its two districts moved to 济南市 with new codes; 滦县 became 滦州市
(county-level city, new code) in 2018; 江岸区 (武汉) kept its code, name and townships 2016–2023.
"""

from __future__ import annotations

import pandas as pd
import pytest

from hrss_tools import crosswalk_build
from hrss_warehouse.stages import reference


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    return reference.read_crosswalk()


def _successors(frame: pd.DataFrame, edition: int, county: str) -> list[tuple[str, str, float]]:
    rows = frame[(frame["edition"] == edition) & (frame["county_code"] == county)]
    return [(row.successor_code, row.reason, round(row.weight, 6)) for row in rows.itertuples()]


@pytest.mark.parametrize("edition", [2016, 2017, 2018])
def test_laiwu_districts_moved_to_jinan(committed, edition: int) -> None:
    assert _successors(committed, edition, "371203") == [("370117", "moved", 1.0)]  # 钢城区
    assert _successors(committed, edition, "371202") == [("370116", "moved", 1.0)]  # 莱城区 → 莱芜区
    assert _successors(committed, 2019, "370117") == [("370117", "unchanged", 1.0)]


def test_luan_county_renamed_and_recoded(committed) -> None:
    for edition in (2016, 2017):
        assert _successors(committed, edition, "130223") == [("130284", "renamed_recoded", 1.0)]
    assert "130223" not in set(committed.loc[committed["edition"] == 2018, "county_code"])


def test_jiangan_unchanged_2016_to_2023(committed) -> None:
    for edition in reference.EDITIONS:
        assert _successors(committed, edition, "420102") == [("420102", "unchanged", 1.0)]


def test_every_reporting_county_of_every_edition_has_successors_summing_to_one(committed) -> None:
    for edition in reference.EDITIONS:
        expected = set(reference.reporting_counties(edition)["county_code"])
        rows = committed[committed["edition"] == edition]
        assert set(rows["county_code"]) == expected
        assert set(rows["successor_code"]) <= set(
            reference.reporting_counties(reference.EDITIONS[-1])["county_code"]
        )
        assert (rows.groupby("county_code")["weight"].sum() - 1).abs().max() < 1e-5
    assert set(committed["reason"]) <= set(crosswalk_build.REASONS)
    # a county of the newest edition is its own successor
    newest = committed[committed["edition"] == reference.EDITIONS[-1]]
    assert (newest["county_code"] == newest["successor_code"]).all() and (
        newest["reason"] == "unchanged"
    ).all()


def test_overrides_are_the_only_hand_made_steps(committed) -> None:
    overrides = crosswalk_build.read_overrides()
    assert not overrides.empty and overrides["note"].str.len().min() > 20  # each line says why
    for row in overrides.itertuples():
        derived = committed[
            (committed["edition"] == row.from_edition) & (committed["county_code"] == row.county_code)
        ]
        assert derived["overridden"].all() and row.successor_code in set(derived["successor_code"])


def test_committed_file_is_the_derivation_of_the_registry(committed) -> None:
    """Derive again for Shandong and Heilongjiang (莱芜, the 伊春 reform of 2019, 加格达奇区's code
    taken over by 漠河市): the committed rows of those provinces must come out. The whole country
    is derived by `hrss reference crosswalk` (about a minute), in the soak variant."""
    registry = reference.divisions()
    subset = registry[registry["province_code"].isin(["370000", "230000"])]
    derived = crosswalk_build.derive(subset)
    expected = committed[committed["county_code"].str[:2].isin(["37", "23"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(derived, expected, check_dtype=False)


@pytest.mark.soak
def test_committed_file_is_the_derivation_of_the_whole_registry(committed) -> None:
    pd.testing.assert_frame_equal(crosswalk_build.derive(reference.divisions()), committed, check_dtype=False)


def test_counts_by_reason_2016_to_2023(committed) -> None:
    counts = crosswalk_build.counts_by_reason(committed, 2016)
    assert (
        sum(counts.values())
        == committed.loc[committed["edition"] == 2016, ["county_code", "reason"]].drop_duplicates().shape[0]
    )
    assert counts["moved"] >= 2 and counts["renamed_recoded"] >= 1 and counts["unchanged"] > 2000
