"""Full vs incremental `dbt build` on national-scale data (not part of `make test`: minutes, not seconds).

Loads the committed NBS registry (hrss reference load), then writes one accepted return per reporting
county for each survey year given, with a row for every county, township and village of the year's
edition (~0.7 M unit rows a year), straight into the raw tables as the loader would. Then times:
  1. a full build (--full-refresh),
  2. an incremental build after one county resubmits its JCPT-3 (a new revision).

    HRSS_HOME=/tmp/hrss-dbt-national HRSS_PG_PORT=55444 .venv/bin/hrss warehouse start
    HRSS_HOME=/tmp/hrss-dbt-national HRSS_PG_PORT=55444 .venv/bin/python tests/dbt/national_bench.py 2018 2019
"""

from __future__ import annotations

import sys
import time

from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.db import connect
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import reference, transform

SUBMISSION_DDL = (
    "CREATE TABLE IF NOT EXISTS raw.submission (submission_id bigint PRIMARY KEY, sha256 text,"
    " size_bytes bigint,"
    " file_name text, county_code text, survey_year int, form text, revision int, received_at timestamptz,"
    " form_version text, outcome text, failed_rules text[], soft_flags text[], archived_path text,"
    " registered_at timestamptz, checked_at timestamptz)"
)

# Deterministic pseudo-random indicator values from the unit code (hashtext), shaped like real returns.
UNIT_VALUES = {
    "county": "has_platform, standardized, staff_total, staff_establishment, staff_welfare, staff_other, "
              "persons_served, funding_total, funding_central, funding_provincial, funding_municipal, "
              "funding_county",
    "township": "unit_type, has_platform, platform_mode, service_sites, standardized, staff_total, "
                "staff_establishment, staff_welfare, staff_other, resident_population, service_population, "
                "persons_served, funding_total, funding_central, funding_provincial, funding_municipal, "
                "funding_county",
    "village": "urban_rural_code, has_platform, standardized, staff_total, staff_fulltime, staff_parttime, "
               "coordinators, persons_served, funding_total, funding_central, funding_provincial, "
               "funding_municipal, funding_county",
}
UNIT_SELECT = {
    "county": "1, (h %% 3 > 0)::int, 12, 6, 4, 2, 5000 + h %% 1000, 200, 50, 50, 50, 50",
    "township": "3, 1, 1 + h %% 2, 1 + h %% 2, (h %% 4 > 0)::int, 3, 1, 1, 1, 30000 + h %% 9000, "
                "20000 + h %% 5000, 800 + h %% 100, 20, 5, 5, 5, 5",
    "village": "111, (h %% 5 > 0)::int, (h %% 5 > 1)::int, 2, 1, 1, 1, 100 + h %% 50, 4, 1, 1, 1, 1",
}


def load_national(settings: Settings, years: list[int]) -> int:
    spec = load_spec()
    with connect(settings) as conn:
        conn.execute(f"SET ROLE {LOADER}")
        conn.execute(SUBMISSION_DDL)
        for form in spec.form_codes:
            conn.execute(spec.raw_table_ddl(form))
        tables = ", ".join(f"raw.{spec.raw_table(f)}" for f in spec.form_codes)
        conn.execute(f"TRUNCATE raw.submission, {tables}")
        for year in years:
            edition = reference.edition_for_survey_year(year)
            version = spec.version_for_year(year).name
            conn.execute(
                "INSERT INTO raw.submission (submission_id, county_code, survey_year, form,"
                " revision, received_at,"
                " form_version, outcome, failed_rules, soft_flags, file_name)"
                " SELECT (%(year)s::bigint * 10000000 + county_code::bigint) * 10 + f.n,"
                " county_code, %(year)s, f.form, 1,"
                " make_timestamptz(%(year)s + 1, 3, 1, 10, 0, 0, 'Asia/Shanghai'), %(version)s, 'accepted',"
                " '{}', '{}', county_code || '_' || %(year)s || '.xlsx'"
                " FROM reference.division d CROSS JOIN (VALUES (1, 'JCPT-1'), (2, 'JCPT-2'), (3, 'JCPT-3'))"
                " AS f (n, form)"
                " WHERE d.level = 'county' AND NOT d.is_placeholder AND %(edition)s BETWEEN"
                " first_year AND last_year",
                {"year": year, "edition": edition, "version": version})
            for n, form in enumerate(spec.form_codes, start=1):
                level = spec.level_of(form)
                conn.execute(
                    f"INSERT INTO raw.{spec.raw_table(form)} (submission_id, source_row, region_code,"
                    f" unit_name, {UNIT_VALUES[level]})"
                    f" SELECT (%(year)s::bigint * 10000000 + d.county_code::bigint) * 10 + {n},"
                    "  8 + row_number() OVER (PARTITION BY d.county_code ORDER BY d.code), d.code, d.name,"
                    f"  {UNIT_SELECT[level]}"
                    " FROM (SELECT *, abs(hashtext(code || %(year)s::text)) AS h FROM reference.division) d"
                    " JOIN reference.division c ON c.code = d.county_code || '000000' AND c.level = 'county'"
                    "  AND NOT c.is_placeholder AND %(edition)s BETWEEN c.first_year AND c.last_year"
                    " WHERE d.level = %(level)s AND %(edition)s BETWEEN d.first_year AND d.last_year",
                    {"year": year, "edition": edition, "level": level})
        conn.execute("RESET ROLE")
        conn.commit()
        conn.execute("ANALYZE")
        return conn.execute("SELECT (SELECT count(*) FROM raw.jcpt_county_rows) + (SELECT count(*) FROM"
                            " raw.jcpt_township_rows) + (SELECT count(*) FROM"
                            " raw.jcpt_village_rows)").fetchone()[0]


def resubmit_one_county(settings: Settings, year: int) -> None:
    """The first county's JCPT-3 arrives again as a new revision, every village with one more staff member."""
    with connect(settings) as conn:
        conn.execute(f"SET ROLE {LOADER}")
        old = conn.execute("SELECT submission_id, county_code FROM raw.submission WHERE survey_year = %s"
                           " AND form = 'JCPT-3' ORDER BY county_code, revision DESC LIMIT 1",
                           (year,)).fetchone()
        new_id = old[0] * 10
        conn.execute("INSERT INTO raw.submission (submission_id, county_code, survey_year, form, revision,"
                     " received_at, form_version, outcome, failed_rules, soft_flags, file_name)"
                     " SELECT %s, county_code, survey_year, form, revision + 1, received_at + interval '1"
                     " day', form_version,"
                     " outcome, failed_rules, soft_flags, file_name FROM raw.submission WHERE"
                     " submission_id = %s",
                     (new_id, old[0]))
        conn.execute("CREATE TEMP TABLE revised AS SELECT * FROM raw.jcpt_village_rows WHERE"
                     " submission_id = %s",
                     (old[0],))
        conn.execute("UPDATE revised SET submission_id = %s, staff_total = staff_total + 1,"
                     " staff_parttime = staff_parttime + 1", (new_id,))
        conn.execute("INSERT INTO raw.jcpt_village_rows SELECT * FROM revised")
        conn.execute("RESET ROLE")
        conn.commit()


def builds_only(years: list[int]) -> None:
    """Time the builds again on a warehouse whose registry and raw rows are loaded."""
    settings = Settings.from_env()
    full = transform.build(settings, full_refresh=True)
    print(f"full build: {full.seconds:.1f} s ({len(full.statuses)} nodes)")
    resubmit_one_county(settings, years[-1])
    incremental = transform.build(settings)
    print(f"incremental build after one county's revision: {incremental.seconds:.1f} s")
    noop = transform.build(settings)
    print(f"incremental build with nothing new: {noop.seconds:.1f} s")


def main(years: list[int]) -> None:
    settings = Settings.from_env()
    started = time.monotonic()
    divisions = reference.load_divisions(settings)
    print(f"registry: {divisions} division rows in {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    rows = load_national(settings, years)
    print(f"raw: {rows} unit rows for {years} in {time.monotonic() - started:.1f} s")
    builds_only(years)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--builds-only"]
    run = builds_only if "--builds-only" in sys.argv else main
    run([int(y) for y in arguments] or [2019])
