"""A small hand-written warehouse input for the dbt tests: registry, submissions and unit rows.

Two counties of 武汉 (江岸 420102, 江汉 420103) plus a development zone that never reports and a
市辖区 placeholder that must not be expected; survey years 2016 (v2014) and 2017-2018 (v2017). The
tables are created with the DDL the loaders use (raw rows: spec.raw_table_ddl), as hrss_loader, so the
transformer reads them through the same grants as in production. Money is in 万元 as the loader writes.

Designed facts (the tests assert them):
- 2017 JCPT-2 of 江岸: revision 2 (id 14) is in force; revision 3 (id 15) was quarantined later.
- 江汉's 2016 return came on 5 April 2017: late. 江岸's 2018 return came 31 March 2019 23:59 +08: on time.
- 2016 villages (v2014 JCPT-3) have no `standardized`: their rollup is NULL, not 0.
- v2014 funding: JCPT-1/2 central + unallocated, JCPT-3 only unallocated.
- Township 420102002000 is renamed from the 2018 edition: 2017 facts join the old span, 2018 the new.
- Village 420102001009 (2017) is not in the registry: region_key -1, R01.
- 江岸's township 001 staff goes 3 → 30 (H01); 江汉's funding goes 5 → 3000 万元 (H02).
- Hubei 2017 township figures HB-01..HB-04 of the published seed match exactly.
"""

from __future__ import annotations

import pandas as pd
from psycopg import Connection

from hrss_tools import crosswalk_build
from hrss_warehouse.config import LOADER
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import reference

SUBMISSION_DDL = """
CREATE TABLE IF NOT EXISTS raw.submission (
    submission_id bigint PRIMARY KEY, sha256 text, size_bytes bigint, file_name text, county_code text,
    survey_year int, form text, revision int, received_at timestamptz, form_version text, outcome text,
    failed_rules text[], soft_flags text[], archived_path text, registered_at timestamptz,
    checked_at timestamptz
)"""
DIVISION_DDL = """
CREATE TABLE IF NOT EXISTS reference.division (
    code text NOT NULL, name text NOT NULL, level text NOT NULL, province_code text, prefecture_code text,
    county_code text, township_code text, is_dev_zone boolean NOT NULL, is_placeholder boolean NOT NULL,
    first_year int NOT NULL, last_year int NOT NULL, PRIMARY KEY (code, first_year)
)"""

# code, name, level, first_year, last_year, is_dev_zone, is_placeholder
DIVISIONS = [
    ("420000000000", "湖北省", "province", 2016, 2023, False, False),
    ("420100000000", "武汉市", "prefecture", 2016, 2023, False, False),
    ("420101000000", "市辖区", "county", 2016, 2023, False, True),
    ("420102000000", "江岸区", "county", 2016, 2023, False, False),
    ("420103000000", "江汉区", "county", 2016, 2023, False, False),
    ("420171000000", "武汉经济技术开发区", "county", 2017, 2023, True, False),
    ("420102001000", "大智街道", "township", 2016, 2023, False, False),
    ("420102002000", "花桥街道", "township", 2016, 2017, False, False),
    ("420102002000", "新花桥街道", "township", 2018, 2023, False, False),
    ("420103001000", "民族街道", "township", 2016, 2023, False, False),
    ("420102001001", "大智社区", "village", 2016, 2023, False, False),
    ("420102001002", "三阳社区", "village", 2016, 2023, False, False),
    ("420103001001", "民族社区", "village", 2016, 2023, False, False),
]

A, B = "420102", "420103"
# id, county, year, form, revision, received_at, version, outcome, failed_rules, soft_flags
SUBMISSIONS = [
    (1, A, 2016, "JCPT-1", 1, "2017-03-10 10:00+08", "v2014", "accepted", [], []),
    (2, A, 2016, "JCPT-2", 1, "2017-03-10 10:00+08", "v2014", "accepted", [], []),
    (3, A, 2016, "JCPT-3", 1, "2017-03-10 10:00+08", "v2014", "accepted", [], []),
    (4, B, 2016, "JCPT-1", 1, "2017-04-05 09:00+08", "v2014", "accepted", [], []),
    (5, B, 2016, "JCPT-2", 1, "2017-04-05 09:00+08", "v2014", "accepted", [], []),
    (6, B, 2016, "JCPT-3", 1, "2017-04-05 09:00+08", "v2014", "accepted", [], []),
    (11, A, 2017, "JCPT-1", 1, "2018-03-01 10:00+08", "v2017", "accepted", [], []),
    (12, A, 2017, "JCPT-2", 1, "2018-03-01 10:00+08", "v2017", "accepted", [], []),
    (13, A, 2017, "JCPT-3", 1, "2018-03-01 10:00+08", "v2017", "accepted", [], ["R02"]),
    (14, A, 2017, "JCPT-2", 2, "2018-03-20 10:00+08", "v2017", "accepted", [], []),
    (15, A, 2017, "JCPT-2", 3, "2018-03-25 10:00+08", "v2017", "quarantined", ["C05"], []),
    (16, B, 2017, "JCPT-1", 1, "2018-03-30 10:00+08", "v2017", "accepted", [], []),
    (17, B, 2017, "JCPT-2", 1, "2018-03-30 10:00+08", "v2017", "accepted", [], []),
    (18, B, 2017, "JCPT-3", 1, "2018-03-30 10:00+08", "v2017", "accepted", [], []),
    (19, None, None, None, None, "2018-03-30 11:00+08", None, "quarantined", ["S02"], []),
    (21, A, 2018, "JCPT-1", 1, "2019-03-31 23:59:59+08", "v2017", "accepted", [], []),
    (22, A, 2018, "JCPT-2", 1, "2019-03-31 23:59:59+08", "v2017", "accepted", [], []),
    (23, A, 2018, "JCPT-3", 1, "2019-03-31 23:59:59+08", "v2017", "accepted", [], []),
    (24, B, 2018, "JCPT-1", 1, "2019-03-15 10:00+08", "v2017", "quarantined", ["C04"], []),
    (25, B, 2018, "JCPT-1", 1, "2019-03-16 10:00+08", "v2017", "pending", [], []),
]

# Unit rows: form -> list of (submission_id, {column: value}); absent columns are NULL.
ROWS: dict[str, list[tuple[int, dict]]] = {
    "JCPT-1": [
        (1, dict(region_code="420102000000", has_platform=1, standardized=1, staff_total=10,
                 staff_establishment=5, persons_served=5000, funding_total=100, funding_central=40)),
        (4, dict(region_code="420103000000", has_platform=1, standardized=0, staff_total=8,
                 staff_establishment=4, persons_served=3000, funding_total=3, funding_central=1)),
        (11, dict(region_code="420102000000", has_platform=1, standardized=1, staff_total=12,
                  staff_establishment=6, staff_welfare=4, staff_other=2, persons_served=6000,
                  employers_served=300, funding_total=200, funding_central=50, funding_provincial=50,
                  funding_municipal=50, funding_county=50)),
        (16, dict(region_code="420103000000", has_platform=1, standardized=1, staff_total=9,
                  staff_establishment=5, staff_welfare=2, staff_other=2, persons_served=4000,
                  employers_served=200, funding_total=3000, funding_central=1000, funding_provincial=1000,
                  funding_municipal=500, funding_county=500)),
        (21, dict(region_code="420102000000", has_platform=1, standardized=1, staff_total=12,
                  staff_establishment=6, staff_welfare=4, staff_other=2, persons_served=6100,
                  employers_served=310, funding_total=210, funding_central=60, funding_provincial=50,
                  funding_municipal=50, funding_county=50)),
    ],
    "JCPT-2": [
        (2, dict(region_code="420102001000", unit_type=3, has_platform=1, service_sites=1, standardized=1,
                 staff_total=3, staff_establishment=2, resident_population=50000, persons_served=800,
                 funding_total=10, funding_central=10)),
        (2, dict(region_code="420102002000", unit_type=3, has_platform=0, service_sites=0, standardized=0,
                 staff_total=0, staff_establishment=0, resident_population=40000, persons_served=0,
                 funding_total=0, funding_central=0)),
        (5, dict(region_code="420103001000", unit_type=3, has_platform=1, service_sites=2, standardized=1,
                 staff_total=4, staff_establishment=2, resident_population=60000, persons_served=900,
                 funding_total=1, funding_central=0)),
        (12, dict(region_code="420102001000", unit_type=3, has_platform=1, platform_mode=1, service_sites=1,
                  standardized=1, staff_total=3, staff_establishment=1, staff_welfare=1, staff_other=1,
                  resident_population=30000000, service_population=1, persons_served=1)),
        (12, dict(region_code="420102002000", unit_type=3, has_platform=0, service_sites=0, standardized=0,
                  staff_total=0, resident_population=20000000, service_population=0, persons_served=0)),
        (14, dict(region_code="420102001000", unit_type=3, has_platform=1, platform_mode=1,
                  service_sites=1000, standardized=1, staff_total=30, staff_establishment=10,
                  staff_welfare=10, staff_other=10,
                  resident_population=30000000, service_population=25000000, persons_served=900000,
                  employers_served=100, funding_total=20, funding_central=5, funding_provincial=5,
                  funding_municipal=5, funding_county=5)),
        (14, dict(region_code="420102002000", unit_type=3, has_platform=1, platform_mode=2, service_sites=700,
                  standardized=1, staff_total=5, staff_establishment=1, staff_welfare=2, staff_other=2,
                  resident_population=20000000, service_population=17000000, persons_served=500000,
                  employers_served=50, funding_total=10, funding_central=10, funding_provincial=0,
                  funding_municipal=0, funding_county=0)),
        (15, dict(region_code="420102001000", unit_type=3, has_platform=0, service_sites=0, standardized=0,
                  staff_total=99, resident_population=1, service_population=1)),
        (17, dict(region_code="420103001000", unit_type=3, has_platform=1, platform_mode=1, service_sites=8,
                  standardized=1, staff_total=4, staff_establishment=2, staff_welfare=1, staff_other=1,
                  resident_population=8840000, service_population=8720000, persons_served=700000,
                  employers_served=70, funding_total=0, funding_central=0, funding_provincial=0,
                  funding_municipal=0, funding_county=0)),
        (22, dict(region_code="420102001000", unit_type=3, has_platform=1, platform_mode=1, service_sites=2,
                  standardized=1, staff_total=30, staff_establishment=10, staff_welfare=10, staff_other=10,
                  resident_population=300000, service_population=250000, persons_served=90000,
                  funding_total=20, funding_central=5, funding_provincial=5, funding_municipal=5,
                  funding_county=5)),
        (22, dict(region_code="420102002000", unit_type=3, has_platform=1, platform_mode=2, service_sites=1,
                  standardized=1, staff_total=6, staff_establishment=2, staff_welfare=2, staff_other=2,
                  resident_population=200000, service_population=170000, persons_served=50000,
                  funding_total=10, funding_central=10, funding_provincial=0, funding_municipal=0,
                  funding_county=0)),
    ],
    "JCPT-3": [
        (3, dict(region_code="420102001001", urban_rural_code=111, has_platform=1, staff_total=1,
                 persons_served=100, funding_total=2)),
        (3, dict(region_code="420102001002", urban_rural_code=111, has_platform=0, staff_total=0,
                 persons_served=0, funding_total=0)),
        (6, dict(region_code="420103001001", urban_rural_code=111, has_platform=1, staff_total=2,
                 persons_served=50, funding_total=1)),
        (13, dict(region_code="420102001001", urban_rural_code=111, has_platform=1, standardized=1,
                  staff_total=2, staff_fulltime=1, staff_parttime=1, coordinators=1, persons_served=120,
                  funding_total=3,
                  funding_central=1, funding_provincial=1, funding_municipal=1, funding_county=0)),
        (13, dict(region_code="420102001002", urban_rural_code=111, has_platform=1, standardized=0,
                  staff_total=1, staff_fulltime=0, staff_parttime=1, coordinators=0, persons_served=30)),
        (13, dict(region_code="420102001009", urban_rural_code=111, has_platform=0, standardized=0,
                  staff_total=0, staff_fulltime=0, staff_parttime=0, coordinators=0, persons_served=0,
                  funding_total=0,
                  funding_central=0, funding_provincial=0, funding_municipal=0, funding_county=0)),
        (18, dict(region_code="420103001001", urban_rural_code=111, has_platform=1, standardized=1,
                  staff_total=2, staff_fulltime=2, staff_parttime=0, coordinators=1, persons_served=60,
                  funding_total=1,
                  funding_central=1, funding_provincial=0, funding_municipal=0, funding_county=0)),
        (23, dict(region_code="420102001001", urban_rural_code=111, has_platform=1, standardized=1,
                  staff_total=2, staff_fulltime=1, staff_parttime=1, coordinators=1, persons_served=130,
                  funding_total=3,
                  funding_central=1, funding_provincial=1, funding_municipal=1, funding_county=0)),
    ],
}


def _division_row(code: str, name: str, level: str, first: int, last: int, dev: bool, placeholder: bool):
    return (code, name, level, code[:2] + "0000", None if level == "province" else code[:4] + "00",
            code[:6] if level in {"county", "township", "village"} else None,
            code[:9] + "000" if level == "village" else None, dev, placeholder, first, last)


def create_inputs(conn: Connection) -> None:
    """Create (or empty) the registry and raw tables as the loader and fill them with the dataset."""
    spec = load_spec()
    conn.execute(f"SET ROLE {LOADER}")
    conn.execute(SUBMISSION_DDL)
    conn.execute(DIVISION_DDL)
    raw_tables = [f"raw.{spec.raw_table(form)}" for form in spec.form_codes]
    for ddl in (spec.raw_table_ddl(form) for form in spec.form_codes):
        conn.execute(ddl)
    # dbt's staging views depend on these tables: empty them rather than drop them
    conn.execute(f"TRUNCATE raw.submission, reference.division, {', '.join(raw_tables)}")
    reference.load_crosswalk(conn, crosswalk_build.derive(registry_frame()))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO reference.division VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                        [_division_row(*d) for d in DIVISIONS])
        cur.executemany(
            "INSERT INTO raw.submission (submission_id, county_code, survey_year, form, revision,"
            " received_at, form_version, outcome, failed_rules, soft_flags, file_name, sha256, size_bytes,"
            " registered_at, checked_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, 'f' || %s, md5(%s::text), 1000, now(), now())",
            [(*s, s[0], s[0]) for s in SUBMISSIONS])
    for form in spec.form_codes:
        insert_rows(conn, form, ROWS[form])
    conn.execute("RESET ROLE")
    conn.commit()


def registry_frame() -> pd.DataFrame:
    """DIVISIONS as the registry file's frame (what crosswalk_build.derive reads)."""
    return pd.DataFrame([(code, name, level, first, last, placeholder)
                         for code, name, level, first, last, _, placeholder in DIVISIONS],
                        columns=["code", "name", "level", "first_year", "last_year", "is_placeholder"])


def insert_rows(conn: Connection, form: str, rows: list[tuple[int, dict]]) -> None:
    table = load_spec().raw_table(form)
    with conn.cursor() as cur:
        for source_row, (submission_id, values) in enumerate(rows, start=9):
            columns = ", ".join(["submission_id", "source_row", *values])
            marks = ", ".join(["%s"] * (len(values) + 2))
            cur.execute(f"INSERT INTO raw.{table} ({columns}) VALUES ({marks})",
                        [submission_id, source_row, *values.values()])


def add_submission(conn: Connection, submission: tuple, form_rows: list[tuple[int, dict]]) -> None:
    """Register one more submission (same shape as SUBMISSIONS) with its unit rows."""
    conn.execute(f"SET ROLE {LOADER}")
    conn.execute(
        "INSERT INTO raw.submission (submission_id, county_code, survey_year, form, revision, received_at,"
        " form_version, outcome, failed_rules, soft_flags, file_name) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,"
        " 'f' || %s)", (*submission, submission[0]))
    insert_rows(conn, submission[3], form_rows)
    conn.execute("RESET ROLE")
    conn.commit()
