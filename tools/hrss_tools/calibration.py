"""Calibration of generated survey returns: the values of every unit of one province and survey year.

The 2017 values reproduce every `comparable = yes` line of seed/published_figures.csv (read here,
never copied into code) by the metric definitions of survey_spec/marts.md "Reconciliation"; other
provinces get national-average parameters, and the other years ramp towards (and past) 2017.
docs/calibration.md records every choice made here.

Values are integers in canonical column names (forms.yaml `name`); money is held in hundredths of
万元 (= 100 元) so v2017 cells have at most two decimals and v2014 cells are whole 元, and a total
equals the sum of its sources exactly. `platform_mode` 0 means "none" (written blank).
"""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from hrss_warehouse.config import SEED_DIR

ANCHOR_YEAR = 2017
FIGURES_FILE = SEED_DIR / "published_figures.csv"

# Growth of quantities (staff, people served, money) relative to the anchor year.
GROWTH = {2014: 0.80, 2015: 0.87, 2016: 0.94, 2017: 1.0}
GROWTH_AFTER = 0.04  # a year after 2017
# Coverage and standardisation before 2017: this share of the 2017 rate; after 2017 the gap to 1
# closes by AFTER_GAP_CLOSE a year.
RATE_RAMP = {2014: 0.78, 2015: 0.86, 2016: 0.94, 2017: 1.0}
STANDARD_RAMP = {2014: 0.55, 2015: 0.70, 2016: 0.86, 2017: 1.0}
AFTER_GAP_CLOSE = 0.25

# National-average parameters for 2017 (docs/calibration.md explains each).
DEFAULTS = {
    ("county", "coverage_rate"): 0.97,
    ("county", "standardized_rate"): 0.72,
    ("county", "staff_per_platform"): 26.0,
    ("township", "coverage_rate"): 0.96,
    ("township", "standardized_rate"): 0.66,
    ("township", "dedicated_share_of_platforms"): 0.55,
    ("township", "second_site_share"): 0.06,
    ("township", "staff_per_platform"): 4.6,
    ("township", "persons_served_per_staff"): 2600.0,
    ("township", "persons_per_employer_served"): 230.0,
    ("township", "served_population_share"): 0.72,
    ("village", "coverage_rate"): 0.78,
    ("village", "standardized_rate"): 0.50,
    ("village", "staff_per_platform"): 1.45,
    ("village", "coordinator_share"): 0.55,
    ("township_and_village", "township_staff_weight"): 3.0,  # township platform vs village station
}
# Mean resident population of a township-level unit by type (1 乡, 2 镇, 3 街道).
RESIDENTS_BY_TYPE = {1: 14_000, 2: 32_000, 3: 45_000}
# A bound the article states ("at least", "余", "以上") is met with this margin.
AT_LEAST_MARGIN = 1.02
UNIT_FACTORS = {"wan_persons": 10_000, "wan_person_times": 10_000, "wan_unit_times": 10_000}


class CalibrationError(RuntimeError):
    """The published figures cannot all be met on the registry's units; the message says which."""


@dataclass(frozen=True)
class Figure:
    fact_id: str
    province_code: str
    level: str
    metric: str
    value: float
    unit: str
    qualifier: str
    comparable: str
    as_of_year: int

    @property
    def base_value(self) -> float:
        """The figure in the warehouse's base unit (persons, person-times, a fraction, ...)."""
        return self.value * UNIT_FACTORS.get(self.unit, 1)


@cache
def published_figures() -> tuple[Figure, ...]:
    with FIGURES_FILE.open(encoding="utf-8", newline="") as fh:
        return tuple(
            Figure(
                fact_id=r["fact_id"],
                province_code=r["province_code"],
                level=r["level"],
                metric=r["metric"],
                value=float(r["value"]),
                unit=r["unit"],
                qualifier=r["qualifier"],
                comparable=r["comparable"],
                as_of_year=int(r["as_of_year"]),
            )
            for r in csv.DictReader(fh)
        )


# The (level, metric) pairs this module can calibrate; a `yes` figure outside it is an error, so a
# new line in published_figures.csv cannot be silently ignored.
CALIBRATED = {
    ("county", "coverage_rate"),
    ("county", "standardized_platforms"),
    ("township", "coverage_rate"),
    ("township", "standardized_rate"),
    ("township", "standardized_platforms"),
    ("township", "dedicated_office_share"),
    ("township", "service_sites"),
    ("township", "staff_total"),
    ("township", "persons_served"),
    ("township", "employers_served"),
    ("township", "service_population"),
    ("township", "served_population_share"),
    ("village", "coverage_rate"),
    ("village", "coordinators_total"),
    ("township_and_village", "staff_total"),
}


def province_targets(province_code: str, year: int = ANCHOR_YEAR) -> dict[tuple[str, str], Figure]:
    """The `comparable = yes` figures of a province for a year, keyed by (level, metric)."""
    found = {}
    for fig in published_figures():
        if fig.comparable != "yes" or fig.as_of_year != year or fig.province_code[:2] != province_code[:2]:
            continue
        if (fig.level, fig.metric) not in CALIBRATED:
            raise CalibrationError(
                f"{FIGURES_FILE.name}: {fig.fact_id} ({fig.level} {fig.metric}) is marked "
                "comparable = yes but the generator has no calibration for that metric"
            )
        found[(fig.level, fig.metric)] = fig
    return found


# -- deterministic per-unit randomness -------------------------------------------------------------

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def unit_random(codes: np.ndarray, seed: int, salt: str) -> np.ndarray:
    """A uniform [0, 1) draw per unit code, the same for a code in every year (splitmix64 of code+seed)."""
    key = np.uint64((zlib.crc32(salt.encode()) << 20) ^ (seed * 0x9E3779B1 & 0xFFFFFFFFFFF))
    with np.errstate(over="ignore"):
        x = codes.astype(np.uint64) ^ key
        x = x + _GOLD
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def allocate(total: int, weights: np.ndarray) -> np.ndarray:
    """Split an integer total over units in proportion to weights, exactly (largest remainder)."""
    out = np.zeros(len(weights), dtype=np.int64)
    if total <= 0 or len(weights) == 0:
        return out
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        raise CalibrationError(f"cannot allocate {total} over {len(w)} units with no weight")
    raw = total * w / w.sum()
    out[:] = np.floor(raw)
    rest = int(total - out.sum())
    if rest:
        order = np.argsort(-(raw - out), kind="stable")
        out[order[:rest]] += 1
    return out


def first_k(u: np.ndarray, k: int, eligible: np.ndarray | None = None) -> np.ndarray:
    """Mask of the k units with the smallest draw (among the eligible): nested as k grows."""
    mask = np.zeros(len(u), dtype=bool)
    keys = u if eligible is None else np.where(eligible, u, np.inf)
    mask[np.argsort(keys, kind="stable")[: max(0, k)]] = True
    return mask


def nearest_count(rate: float, n: int) -> int:
    return min(n, max(0, round(rate * n)))


def growth(year: int) -> float:
    if year in GROWTH:
        return GROWTH[year]
    if year > ANCHOR_YEAR:
        return (1 + GROWTH_AFTER) ** (year - ANCHOR_YEAR)
    return GROWTH[min(GROWTH)]


def ramp_rate(rate17: float, year: int, ramp: dict[int, float] = RATE_RAMP) -> float:
    if year > ANCHOR_YEAR:
        return 1 - (1 - rate17) * (1 - AFTER_GAP_CLOSE) ** (year - ANCHOR_YEAR)
    return rate17 * ramp.get(year, ramp[min(ramp)])


def ramp_count(count17: int, n17: int, n: int, year: int, ramp: dict[int, float] = RATE_RAMP) -> int:
    """A 2017 count of n17 units carried to a year with n units by the rate ramp."""
    return nearest_count(ramp_rate(count17 / n17 if n17 else 0.0, year, ramp), n)


# -- the province-year -----------------------------------------------------------------------------


def township_type(names: pd.Series) -> np.ndarray:
    """JCPT-2 column 丙 (1 乡, 2 镇, 3 街道) from the name; other units (farms, zones) count as 乡."""
    kind = np.ones(len(names), dtype=np.int64)
    kind[names.str.endswith("镇").to_numpy()] = 2
    street = names.str.endswith("街道") | names.str.endswith("办事处") | names.str.contains("街道")
    kind[street.to_numpy()] = 3
    return kind


def urban_rural_code(names: pd.Series, u: np.ndarray) -> np.ndarray:
    """Form JCPT-3 column 丙 (NBS urban-rural class) from the unit's name: 社区/居委会 urban, else rural."""
    urban = (
        names.str.contains("社区") | names.str.contains("居委会") | names.str.contains("居民委员会")
    ).to_numpy()
    urban_codes = np.where(u < 0.55, 111, np.where(u < 0.8, 112, np.where(u < 0.95, 121, 122)))
    rural_codes = np.where(u < 0.85, 220, np.where(u < 0.95, 210, 123))
    return np.where(urban, urban_codes, rural_codes).astype(np.int64)


def _money(total_wan: np.ndarray, u: np.ndarray, on: np.ndarray) -> dict[str, np.ndarray]:
    """Funding in hundredths of 万元: sources drawn per unit, total = their exact sum."""
    hundredths = np.where(on, np.round(total_wan * 100), 0).astype(np.int64)
    central = np.floor(hundredths * (0.08 + 0.14 * u)).astype(np.int64)
    provincial = np.floor(hundredths * (0.12 + 0.16 * ((u * 7) % 1))).astype(np.int64)
    municipal = np.floor(hundredths * (0.08 + 0.12 * ((u * 13) % 1))).astype(np.int64)
    county = hundredths - central - provincial - municipal
    return {
        "funding_total": hundredths,
        "funding_central": central,
        "funding_provincial": provincial,
        "funding_municipal": municipal,
        "funding_county": county,
    }


def _staff_parts(staff: np.ndarray, u: np.ndarray) -> dict[str, np.ndarray]:
    establishment = np.floor(staff * (0.40 + 0.30 * u)).astype(np.int64)
    welfare = np.floor((staff - establishment) * (0.45 + 0.4 * ((u * 11) % 1))).astype(np.int64)
    return {
        "staff_establishment": establishment,
        "staff_welfare": welfare,
        "staff_other": staff - establishment - welfare,
        "staff_trained": np.floor(staff * (0.5 + 0.5 * ((u * 17) % 1))).astype(np.int64),
        "staff_certified": np.floor(staff * (0.4 + 0.55 * ((u * 23) % 1))).astype(np.int64),
    }


def _flag_share(u: np.ndarray, on: np.ndarray, rate: float) -> np.ndarray:
    return (on & (u < rate)).astype(np.int64)


@dataclass(frozen=True)
class ProvinceYear:
    """Calibrated values of one province and survey year, one frame per platform level."""

    province_code: str
    year: int
    county: pd.DataFrame
    township: pd.DataFrame
    village: pd.DataFrame


def _coverage_count(level: str, n: int, year: int, targets: dict) -> int:
    fig = targets.get((level, "coverage_rate"))
    rate17 = fig.base_value if fig else DEFAULTS[(level, "coverage_rate")]
    if fig is None and (level, "dedicated_office_share") in targets:
        rate17 = 1.0  # a published split of every township into mode 1 and mode 2 covers them all
    return nearest_count(ramp_rate(rate17, year), n)


def calibrate(
    province_code: str,
    year: int,
    counties: pd.DataFrame,
    townships: pd.DataFrame,
    villages: pd.DataFrame,
    seed: int,
) -> ProvinceYear:
    """Values of every county, township and village of a province for a survey year.

    The frames are registry rows (columns code, name, county_code, is_dev_zone, ...); each returned
    frame keeps code, name and county_code and adds one integer column per canonical indicator.
    """
    targets = province_targets(province_code)
    g = growth(year)
    county = _county_values(counties, year, targets, seed, g)
    township = _township_values(townships, year, targets, seed, g)
    village = _village_values(villages, year, targets, seed, g)
    tv = targets.get(("township_and_village", "staff_total"))
    if tv is not None:
        _split_township_and_village_staff(township, village, round(tv.base_value * g), seed)
    return ProvinceYear(province_code, year, county, township, village)


def _base(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    out = pd.DataFrame(
        {
            "code": frame["code"].to_numpy(),
            "name": frame["name"].to_numpy(),
            "county_code": frame["county_code"].to_numpy(),
        }
    )
    return out, frame["code"].to_numpy().astype(np.int64)


def _county_values(frame: pd.DataFrame, year: int, targets: dict, seed: int, g: float) -> pd.DataFrame:
    out, codes = _base(frame)
    n = len(out)
    u = {k: unit_random(codes, seed, f"county-{k}") for k in ("plat", "std", "size", "misc", "net", "money")}
    on = first_k(u["plat"], _coverage_count("county", n, year, targets))
    std_min = targets.get(("county", "standardized_platforms"))
    n_std = nearest_count(
        ramp_rate(DEFAULTS[("county", "standardized_rate")], year, STANDARD_RAMP), int(on.sum())
    )
    if std_min is not None and year == ANCHOR_YEAR:
        n_std = max(n_std, math.ceil(std_min.base_value * AT_LEAST_MARGIN))
    if n_std > on.sum():
        raise CalibrationError(
            f"province {frame['province_code'].iloc[0]}: {n_std} standardized county "
            f"centres asked for but only {int(on.sum())} centres"
        )
    dev = frame["is_dev_zone"].to_numpy().astype(bool)
    size = np.where(dev, 0.5, 1.0) * (0.55 + 0.9 * u["size"])
    staff = np.where(on, np.maximum(4, np.round(DEFAULTS[("county", "staff_per_platform")] * g * size)), 0)
    staff = staff.astype(np.int64)
    out["has_platform"] = on.astype(np.int64)
    out["standardized"] = first_k(u["std"], n_std, on).astype(np.int64)
    out["floor_area"] = np.where(on, np.round((600 + 1400 * size) * (0.9 + 0.1 * g)), 0).astype(np.int64)
    out["service_windows"] = np.where(on, np.maximum(3, np.round(14 * size)), 0).astype(np.int64)
    out["self_service_terminals"] = np.where(on, np.round(6 * size * g * u["misc"]), 0).astype(np.int64)
    out["network_connected"] = _flag_share(u["net"], on, ramp_rate(0.96, year))
    out["staff_total"] = staff
    for name, values in _staff_parts(staff, u["misc"]).items():
        if name != "staff_certified":
            out[name] = values
    out["persons_served"] = np.where(on, np.round(staff * 2400 * (0.6 + 0.8 * u["money"])), 0).astype(
        np.int64
    )
    out["employers_served"] = np.round(out["persons_served"].to_numpy() / (150 + 200 * u["net"])).astype(
        np.int64
    )
    for name, values in _money((40 + 160 * size) * g, u["money"], on).items():
        out[name] = values
    return out


def _township_values(frame: pd.DataFrame, year: int, targets: dict, seed: int, g: float) -> pd.DataFrame:
    out, codes = _base(frame)
    n = len(out)
    u = {
        k: unit_random(codes, seed, f"township-{k}")
        for k in ("plat", "std", "mode", "site", "size", "staff", "pop", "serve", "misc", "net", "money")
    }
    kind = township_type(frame["name"])
    out["unit_type"] = kind
    n_on = _coverage_count("township", n, year, targets)
    on = first_k(u["plat"], n_on)
    out["has_platform"] = on.astype(np.int64)

    # platform_mode: the dedicated-office share is of units reported (marts.md), the rest mode 2.
    share = targets.get(("township", "dedicated_office_share"))
    if share is not None:
        n_dedicated = min(n_on, nearest_count(share.base_value, n))
        if year != ANCHOR_YEAR:
            n_dedicated = min(n_on, round(n_dedicated * ramp_rate(1.0, year)))
    else:
        n_dedicated = nearest_count(DEFAULTS[("township", "dedicated_share_of_platforms")], n_on)
    dedicated = first_k(u["mode"], n_dedicated, on)
    out["platform_mode"] = np.where(on, np.where(dedicated, 1, 2), 0).astype(np.int64)

    # service sites: one per platform, plus second sites up to the published total.
    sites_fig = targets.get(("township", "service_sites"))
    if sites_fig is not None:
        extra17 = round(sites_fig.base_value) - n_on if year == ANCHOR_YEAR else None
        if extra17 is not None and extra17 < 0:
            raise CalibrationError(
                f"{sites_fig.fact_id}: {n_on} township platforms need at least {n_on} "
                f"service sites, the published total is {sites_fig.value:g}"
            )
        extra = (
            extra17
            if extra17 is not None
            # other years: 2017's share of second sites (all townships covered) on this year's platforms
            else round((round(sites_fig.base_value) - n) / max(n, 1) * n_on)
        )
    else:
        extra = nearest_count(DEFAULTS[("township", "second_site_share")], n_on)
    extra = max(0, extra)
    sites = on.astype(np.int64)
    while extra > 0:  # more second sites than platforms would need third sites: spread evenly
        step = min(extra, n_on)
        sites += first_k(u["site"], step, on)
        extra -= step
    out["service_sites"] = sites

    # standardisation ("六统一"): a rate of platforms, raised to a published lower bound.
    rate_fig = targets.get(("township", "standardized_rate"))
    rate17 = rate_fig.base_value if rate_fig else DEFAULTS[("township", "standardized_rate")]
    n_std = nearest_count(ramp_rate(rate17, year, STANDARD_RAMP), n_on)
    std_min = targets.get(("township", "standardized_platforms"))
    if std_min is not None and year == ANCHOR_YEAR:
        n_std = min(n_on, max(n_std, math.ceil(std_min.base_value * AT_LEAST_MARGIN)))
    out["standardized"] = first_k(u["std"], n_std, on).astype(np.int64)

    size = np.choose(kind - 1, [0.75, 1.0, 1.3]) * (0.6 + 0.8 * u["size"])
    out["floor_area"] = np.where(on, np.round((60 + 140 * size) * (0.9 + 0.1 * g)), 0).astype(np.int64)
    out["service_windows"] = np.where(on, np.maximum(1, np.round(3.5 * size)), 0).astype(np.int64)
    out["self_service_terminals"] = np.where(on & (u["misc"] < 0.6 * g), np.round(1 + 2 * u["misc"]), 0)
    out["network_connected"] = _flag_share(u["net"], on, ramp_rate(0.85, year))
    items = np.round((25 + 40 * u["misc"]) * min(g, 1.1))
    out["service_items"] = np.where(on, items, 0).astype(np.int64)
    out["online_items"] = np.where(on, np.floor(items * (0.2 + 0.5 * u["net"]) * g), 0).astype(np.int64)
    out["institutions"] = np.where(on, np.minimum(6, np.round(2 + 4 * u["std"] * g + 0.5)), 0).astype(
        np.int64
    )

    staff_fig = targets.get(("township", "staff_total"))
    staff_total = (
        round(staff_fig.base_value * g)
        if staff_fig
        else round(DEFAULTS[("township", "staff_per_platform")] * g * n_on)
    )
    weights = np.where(on, size * (0.7 + 0.6 * u["staff"]), 0.0)
    _set_township_staff(out, allocate(staff_total, weights), u["misc"])

    # population: resident belongs to every unit; service population only where there is a platform.
    served = targets.get(("township", "service_population"))
    share_fig = targets.get(("township", "served_population_share"))
    residents_w = np.array([RESIDENTS_BY_TYPE[int(k)] for k in kind], dtype=np.float64) * (
        0.55 + 0.9 * u["pop"]
    )
    people = 1 - 0.004 * (ANCHOR_YEAR - year)  # resident population changes slowly
    if served is not None and share_fig is not None:
        resident_total = round(served.base_value / share_fig.base_value * people)
        resident = allocate(resident_total, residents_w)
        serve_w = np.where(on, resident * (0.78 + 0.16 * u["serve"]), 0.0)
        service = allocate(
            round(served.base_value * ramp_rate(1.0, year) * people),
            serve_w,
        )
    else:
        resident = np.round(residents_w * people).astype(np.int64)
        rate = DEFAULTS[("township", "served_population_share")] * ramp_rate(1.0, year)
        service = np.where(on, np.floor(resident * rate * (0.8 + 0.3 * u["serve"])), 0).astype(np.int64)
    if (service > resident).any():
        raise CalibrationError(
            "service population above resident population on a township: "
            "the served-population share cannot be met"
        )
    out["resident_population"] = resident
    out["service_population"] = service

    staff = out["staff_total"].to_numpy()
    persons_fig = targets.get(("township", "persons_served"))
    persons_w = np.where(on, (staff + 0.5) * (0.6 + 0.8 * u["serve"]), 0.0)
    persons_total = (
        round(persons_fig.base_value * g)
        if persons_fig
        else round(DEFAULTS[("township", "persons_served_per_staff")] * staff.sum() * g)
    )
    persons = allocate(persons_total, persons_w)
    out["persons_served"] = persons
    employers_fig = targets.get(("township", "employers_served"))
    employers_total = (
        round(employers_fig.base_value * g)
        if employers_fig
        else round(persons.sum() / DEFAULTS[("township", "persons_per_employer_served")])
    )
    out["employers_served"] = allocate(employers_total, np.where(on, persons * (0.5 + u["net"]) + 1, 0.0))
    for name, values in _money((3 + 12 * size) * g, u["money"], on).items():
        out[name] = values
    return out


def _set_township_staff(out: pd.DataFrame, staff: np.ndarray, u: np.ndarray) -> None:
    out["staff_total"] = staff
    for name, values in _staff_parts(staff, u).items():
        out[name] = values


def _village_values(frame: pd.DataFrame, year: int, targets: dict, seed: int, g: float) -> pd.DataFrame:
    out, codes = _base(frame)
    n = len(out)
    u = {
        k: unit_random(codes, seed, f"village-{k}") for k in ("plat", "std", "kind", "staff", "misc", "money")
    }
    out["urban_rural_code"] = urban_rural_code(frame["name"], u["kind"])
    on = first_k(u["plat"], _coverage_count("village", n, year, targets))
    n_on = int(on.sum())
    out["has_platform"] = on.astype(np.int64)
    n_std = nearest_count(ramp_rate(DEFAULTS[("village", "standardized_rate")], year, STANDARD_RAMP), n_on)
    out["standardized"] = first_k(u["std"], n_std, on).astype(np.int64)

    coord_fig = targets.get(("village", "coordinators_total"))
    coordinators_total = math.ceil(coord_fig.base_value * AT_LEAST_MARGIN * g) if coord_fig else None
    staff_total = round(DEFAULTS[("village", "staff_per_platform")] * g * n_on)
    if coordinators_total is not None:
        # coordinators <= staff_total on every row (C05): the village staff must hold them all.
        staff_total = max(staff_total, math.ceil(coordinators_total / 0.9))
    _set_village_staff(
        out, allocate(staff_total, np.where(on, 0.6 + 0.8 * u["staff"], 0.0)), u, coordinators_total
    )
    out["network_connected"] = _flag_share(u["misc"], on, ramp_rate(0.6, year))
    staff = out["staff_total"].to_numpy()
    out["persons_served"] = np.where(on, np.round((staff + 0.3) * 700 * g * (0.5 + u["money"])), 0).astype(
        np.int64
    )
    for name, values in _money((0.3 + 1.5 * u["money"]) * g, (u["misc"] * 3) % 1, on).items():
        out[name] = values
    return out


def _set_village_staff(
    out: pd.DataFrame, staff: np.ndarray, u: dict[str, np.ndarray], coordinators_total: int | None
) -> None:
    out["staff_total"] = staff
    fulltime = np.floor(staff * (0.2 + 0.5 * u["misc"])).astype(np.int64)
    out["staff_fulltime"] = fulltime
    out["staff_parttime"] = staff - fulltime
    if coordinators_total is None:
        coordinators_total = round(DEFAULTS[("village", "coordinator_share")] * staff.sum())
    # Proportional to staff with total <= Σ staff: largest remainder never exceeds a row's staff.
    out["coordinators"] = allocate(min(coordinators_total, int(staff.sum())), staff.astype(np.float64))


def _split_township_and_village_staff(
    township: pd.DataFrame, village: pd.DataFrame, total: int, seed: int
) -> None:
    """One published staff total over townships and villages: townships weigh more per platform."""
    t_on = township["has_platform"].to_numpy().astype(bool)
    v_on = village["has_platform"].to_numpy().astype(bool)
    weight = DEFAULTS[("township_and_village", "township_staff_weight")]
    t_share = weight * t_on.sum() / (weight * t_on.sum() + v_on.sum()) if (t_on.any() or v_on.any()) else 0
    t_total = round(total * t_share)
    t_u = unit_random(township["code"].to_numpy().astype(np.int64), seed, "township-staff")
    t_w = np.where(
        t_on, np.choose(township["unit_type"].to_numpy() - 1, [0.8, 1.0, 1.3]) * (0.7 + 0.6 * t_u), 0.0
    )
    _set_township_staff(
        township,
        allocate(t_total, t_w),
        unit_random(township["code"].to_numpy().astype(np.int64), seed, "township-misc"),
    )
    v_codes = village["code"].to_numpy().astype(np.int64)
    v_u = {k: unit_random(v_codes, seed, f"village-{k}") for k in ("staff", "misc")}
    _set_village_staff(
        village, allocate(total - t_total, np.where(v_on, 0.6 + 0.8 * v_u["staff"], 0.0)), v_u, None
    )
