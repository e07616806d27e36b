"""`hrss reference crosswalk`: derive the boundary crosswalk, which ``stages.reference`` loads: every
reporting county of every registry edition → its successor(s) in the newest edition, with a reason
and a weight, derived from the registry itself.

A county's recoding changes the 6-digit prefix of every unit below it (钢城区 371203 → 370117: its
township 371203100 颜庄镇 becomes 370117100), but the units themselves survive: a village keeps its
own six digits and its name, a township its own three digits and (mostly) its name. So for each pair
of consecutive editions every village of the older one is followed to the newer one:

1. its 12-digit code still exists → the county of that code;
2. else a village new in the newer edition with the same own six digits and name, unique in the
   province (a recoded county, a county moved to another prefecture);
3. else the county its township went to: the same 9-digit code, else a new township of the same
   own three digits and name (suffixes 街道办事处/街道/镇/乡 ignored), else the same name alone,
   unique in the province.

A county's successors are the counties its villages went to, weighted by their share of its villages
(townships when it has none; itself, when it has no units and its code survives). Consecutive steps
are chained to the newest edition by multiplying weights. ``data/crosswalk_overrides.csv`` replaces
the derived step of a county where the data cannot show the successor (hand-checked; the file says
why for each line). Reasons, from the chained mapping: ``split`` (several successors), ``merged``
(one successor that also takes other counties of the edition), ``moved`` (one-to-one into another
prefecture), ``renamed_recoded`` (one-to-one, code or name changed), ``unchanged``.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

import pandas as pd

from hrss_warehouse.config import DATA_DIR
from hrss_warehouse.stages.reference import CROSSWALK_COLUMNS as COLUMNS
from hrss_warehouse.stages.reference import CROSSWALK_FILE, CROSSWALK_REASONS, CrosswalkError

OVERRIDES_FILE = DATA_DIR / "crosswalk_overrides.csv"

OVERRIDE_COLUMNS = ("from_edition", "county_code", "successor_code", "weight", "note")

REASONS = CROSSWALK_REASONS

# Successors that take less than this share of a county (a village or two that the matching followed
# astray, or a boundary adjustment of a few villages) are folded into its main successors: restating
# a county's figures on such a sliver would spread noise, not information.
MIN_SHARE = 0.01

_TOWNSHIP_SUFFIXES = r"(街道办事处|办事处|街道|民族乡|镇|乡|苏木)$"


def _county_rows(edition: pd.DataFrame) -> pd.DataFrame:
    keep = (edition["level"] == "county") & ~edition["is_placeholder"]
    return edition.loc[keep, ["code", "name"]].assign(county_code=lambda f: f["code"].str[:6])


def _units(edition: pd.DataFrame, level: str) -> pd.DataFrame:
    units = edition.loc[edition["level"] == level, ["code", "name"]].copy()
    units["county_code"] = units["code"].str[:6]
    units["province"] = units["code"].str[:2]
    units["prefecture"] = units["code"].str[:4]
    return units


def _unique_match(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> pd.Series:
    """For each row of ``left``: the county_code of the one row of ``right`` with the same keys."""
    unique = right.drop_duplicates(keys, keep=False)[[*keys, "county_code"]]
    matched = left[keys].merge(unique, on=keys, how="left")
    return pd.Series(matched["county_code"].to_numpy(), index=left.index)


def _township_successors(old: pd.DataFrame, new: pd.DataFrame, counties: set[str]) -> pd.Series:
    """The county (in the newer edition) each township of the older one went to, or NaN."""
    result = pd.Series(new.set_index("code")["county_code"]).reindex(old["code"].to_numpy())
    result.index = old.index
    fresh = new[~new["code"].isin(old["code"])].assign(
        own=lambda f: f["code"].str[6:9],
        base=lambda f: f["name"].str.replace(_TOWNSHIP_SUFFIXES, "", regex=True),
    )
    lost = old[result.isna()].assign(
        own=lambda f: f["code"].str[6:9],
        base=lambda f: f["name"].str.replace(_TOWNSHIP_SUFFIXES, "", regex=True),
    )
    for keys in (["province", "own", "base"], ["prefecture", "base"], ["province", "base"]):
        result = result.fillna(_unique_match(lost, fresh, keys))
    return result.where(result.isin(counties))


def _step(older: pd.DataFrame, newer: pd.DataFrame) -> pd.DataFrame:
    """county_code → successor_code with weight, from one edition to the next."""
    counties_new = set(_county_rows(newer)["county_code"])
    villages_old, villages_new = _units(older, "village"), _units(newer, "village")
    towns_old, towns_new = _units(older, "township"), _units(newer, "township")
    town_to = _township_successors(towns_old, towns_new, counties_new)
    town_to.index = towns_old["code"].to_numpy()

    # A code that survives is the same village, unless its county's code now names another county
    # (漠河市 took over 加格达奇区's code 232701 in 2018, and the numbers of its villages with it).
    same_code = villages_old[["code", "name", "county_code"]].merge(
        villages_new[["code", "name"]], on="code", how="left", suffixes=("", "_new")
    )
    renamed = set(
        _county_rows(older)
        .merge(_county_rows(newer), on="county_code")
        .query("name_x != name_y")["county_code"]
    )
    trusted = ~same_code["county_code"].isin(renamed) | (same_code["name"] == same_code["name_new"])
    to = pd.Series(
        same_code["code"].str[:6].where(same_code["name_new"].notna() & trusted).to_numpy(),
        index=villages_old.index,
    )
    fresh = villages_new[~villages_new["code"].isin(villages_old["code"])].assign(
        own=lambda f: f["code"].str[6:]
    )
    lost = villages_old[to.isna()].assign(own=lambda f: f["code"].str[6:])
    to = to.fillna(_unique_match(lost, fresh, ["province", "own", "name"]))
    via_township = pd.Series(
        town_to.reindex((villages_old["code"].str[:9] + "000").to_numpy()).to_numpy(),
        index=villages_old.index,
    )
    to = to.where(to.isin(counties_new)).fillna(via_township)

    shares = [pd.DataFrame({"county_code": villages_old["county_code"], "successor_code": to})]
    without_villages = ~towns_old["county_code"].isin(villages_old["county_code"])
    shares.append(
        pd.DataFrame(
            {
                "county_code": towns_old.loc[without_villages, "county_code"].to_numpy(),
                "successor_code": town_to[without_villages.to_numpy()].to_numpy(),
            }
        )
    )
    shares = pd.concat(shares, ignore_index=True).dropna()
    counts = shares.groupby(["county_code", "successor_code"]).size().rename("units").reset_index()
    counts = counts[counts["units"] >= MIN_SHARE * counts.groupby("county_code")["units"].transform("sum")]
    counts["weight"] = counts["units"] / counts.groupby("county_code")["units"].transform("sum")

    counties_old = _county_rows(older)["county_code"]
    # A county with no units followed anywhere keeps its code when the newer edition still has it.
    bare = counties_old[~counties_old.isin(counts["county_code"]) & counties_old.isin(counties_new)]
    kept = pd.DataFrame({"county_code": bare, "successor_code": bare, "weight": 1.0})
    found = pd.concat([counts[["county_code", "successor_code", "weight"]], kept], ignore_index=True)
    lost = counties_old[~counties_old.isin(found["county_code"])]
    return pd.concat([found, _by_names_in_prefecture(older, newer, lost, counties_new)], ignore_index=True)


def _by_names_in_prefecture(
    older: pd.DataFrame, newer: pd.DataFrame, lost: pd.Series, counties_new: set[str]
) -> pd.DataFrame:
    """Last resort for a county none of whose units the steps above followed (a development zone
    dissolved into its host, 西林区's township-level communities listed as villages of 金林区): its
    township- and village-level units by name, unique among the newer edition's units of the same
    prefecture (either level). Only for such counties: across a whole prefecture a common village
    name matches a namesake as often as the unit itself."""
    units = older[older["level"].isin(["township", "village"]) & older["code"].str[:6].isin(lost)]
    if units.empty:
        return pd.DataFrame(columns=["county_code", "successor_code", "weight"])
    units = units.assign(
        prefecture=units["code"].str[:4],
        county_code=units["code"].str[:6],
        base=units["name"].str.replace(_TOWNSHIP_SUFFIXES, "", regex=True),
    )
    candidates = newer[newer["level"].isin(["township", "village"])]
    candidates = candidates.assign(
        prefecture=candidates["code"].str[:4],
        county_code=candidates["code"].str[:6],
        base=candidates["name"].str.replace(_TOWNSHIP_SUFFIXES, "", regex=True),
    )
    to = _unique_match(units, candidates, ["prefecture", "base"])
    shares = pd.DataFrame({"county_code": units["county_code"], "successor_code": to})
    shares = shares[shares["successor_code"].isin(counties_new)]
    counts = shares.groupby(["county_code", "successor_code"]).size().rename("units").reset_index()
    counts["weight"] = counts["units"] / counts.groupby("county_code")["units"].transform("sum")
    return counts[["county_code", "successor_code", "weight"]]


@functools.cache
def read_overrides(path: Path = OVERRIDES_FILE) -> pd.DataFrame:
    """The hand-checked steps: each (from_edition, county_code) listed replaces its derived step."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [row for row in csv.DictReader(line for line in fh if not line.startswith("#"))]
    frame = pd.DataFrame(rows, columns=list(OVERRIDE_COLUMNS))
    if rows and tuple(rows[0]) != OVERRIDE_COLUMNS:
        raise CrosswalkError(f"{path} has columns {list(rows[0])}, expected {list(OVERRIDE_COLUMNS)}")
    try:
        frame = frame.astype({"from_edition": int, "weight": float})
    except ValueError as exc:
        raise CrosswalkError(f"{path}: from_edition and weight must be numbers ({exc})") from None
    sums = frame.groupby(["from_edition", "county_code"])["weight"].sum()
    bad = sums[(sums - 1).abs() > 1e-9]
    if not bad.empty:
        (edition, county), total = next(iter(bad.items()))
        raise CrosswalkError(f"{path}: the weights of {county} in {edition} add up to {total}, not 1")
    return frame


def derive(divisions: pd.DataFrame, overrides: pd.DataFrame | None = None) -> pd.DataFrame:
    """The crosswalk (columns ``COLUMNS``) of a registry frame (the columns of ``reference.COLUMNS``)."""
    overrides = read_overrides() if overrides is None else overrides
    editions = sorted(set(divisions["first_year"]) | set(divisions["last_year"]))
    editions = list(range(editions[0], editions[-1] + 1))
    by_edition = {
        year: divisions[(divisions["first_year"] <= year) & (divisions["last_year"] >= year)]
        for year in editions
    }
    newest = editions[-1]
    names = {year: _county_rows(frame).set_index("county_code")["name"] for year, frame in by_edition.items()}

    # chained[year]: county of `year` → successor in the newest edition, built from the newest back.
    chained = {
        newest: pd.DataFrame(
            {
                "county_code": names[newest].index,
                "successor_code": names[newest].index,
                "weight": 1.0,
                "overridden": False,
            }
        )
    }
    for year in reversed(editions[:-1]):
        step = _step(by_edition[year], by_edition[year + 1]).assign(overridden=False)
        hand = overrides[
            (overrides["from_edition"] == year) & overrides["county_code"].isin(names[year].index)
        ]
        step = pd.concat(
            [
                step[~step["county_code"].isin(hand["county_code"])],
                hand[["county_code", "successor_code", "weight"]].assign(overridden=True),
            ],
            ignore_index=True,
        )
        unknown = set(step["successor_code"]) - set(names[year + 1].index)
        if unknown:
            raise CrosswalkError(
                f"{OVERRIDES_FILE.name}: successor {sorted(unknown)[0]} of {year} is not a "
                f"county of the {year + 1} edition"
            )
        lost = sorted(set(names[year].index) - set(step["county_code"]))
        if lost:
            raise CrosswalkError(
                f"county {lost[0]} {names[year][lost[0]]} of the {year} edition has no "
                f"successor the registry shows; add it to {OVERRIDES_FILE}"
            )
        later = chained[year + 1].rename(
            columns={"county_code": "via", "weight": "later_weight", "overridden": "later_overridden"}
        )
        joined = step.rename(columns={"successor_code": "via"}).merge(later, on="via")
        joined["weight"] = joined["weight"] * joined["later_weight"]
        joined["overridden"] = joined["overridden"] | joined["later_overridden"]
        chained[year] = joined.groupby(["county_code", "successor_code"], as_index=False).agg(
            weight=("weight", "sum"), overridden=("overridden", "any")
        )

    frames = []
    for year, mapping in chained.items():
        rows = mapping.assign(edition=year)
        rows["county_name"] = rows["county_code"].map(names[year])
        rows["successor_name"] = rows["successor_code"].map(names[newest])
        frames.append(rows)
    crosswalk = pd.concat(frames, ignore_index=True)
    crosswalk["prefecture_code"] = crosswalk["county_code"].str[:4] + "00"
    crosswalk["successor_prefecture_code"] = crosswalk["successor_code"].str[:4] + "00"
    crosswalk["reason"] = _reasons(crosswalk)
    crosswalk["weight"] = crosswalk["weight"].round(6)
    return (
        crosswalk[list(COLUMNS)]
        .sort_values(["edition", "county_code", "successor_code"])
        .reset_index(drop=True)
    )


def _reasons(crosswalk: pd.DataFrame) -> pd.Series:
    successors = crosswalk.groupby(["edition", "county_code"])["successor_code"].transform("size")
    predecessors = crosswalk.groupby(["edition", "successor_code"])["county_code"].transform("size")
    reason = pd.Series("unchanged", index=crosswalk.index)
    recoded = (crosswalk["county_code"] != crosswalk["successor_code"]) | (
        crosswalk["county_name"] != crosswalk["successor_name"]
    )
    reason[recoded] = "renamed_recoded"
    reason[crosswalk["prefecture_code"] != crosswalk["successor_prefecture_code"]] = "moved"
    reason[predecessors > 1] = "merged"
    reason[successors > 1] = "split"
    return reason


def counts_by_reason(crosswalk: pd.DataFrame, edition: int) -> dict[str, int]:
    """Counties of ``edition`` per reason (a split county counts once)."""
    rows = crosswalk[crosswalk["edition"] == edition].drop_duplicates(["county_code", "reason"])
    return {reason: int((rows["reason"] == reason).sum()) for reason in REASONS}


def write_file(crosswalk: pd.DataFrame, path: Path = CROSSWALK_FILE) -> Path:
    crosswalk.to_csv(
        path, index=False, lineterminator="\n", compression={"method": "gzip", "compresslevel": 9, "mtime": 0}
    )
    return path
