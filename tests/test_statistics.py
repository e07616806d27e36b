"""Statistics over time (README "Statistics"): figures restated on today's boundaries, observation
status, vintages of what was published, estimates for missing returns, and the SDMX export.

Inputs: the hand-written dataset of transform_dataset (江岸 and 江汉, 2016-2018; 江汉's 2018 return
was quarantined, so it is missing), plus 汉阳区 420104 (in the registry, never reporting) and the
real registry rows of 济南 and 莱芜 with returns of 钢城区 (371203) for 2018 and (370117) for 2019.
Every expected value below is worked out by hand from those rows.
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta

import pandas as pd
import psycopg
import pytest
import transform_dataset as ds

from hrss_tools import crosswalk_build
from hrss_warehouse.airflow import tasks
from hrss_warehouse.config import LOADER
from hrss_warehouse.db import connect
from hrss_warehouse.stages import export, publish, reference, transform

HANYANG = [
    ("420104000000", "汉阳区", "county", 2016, 2023, False, False),
    ("420104001000", "建桥街道", "township", 2016, 2023, False, False),
]
SHANDONG_COUNTIES = ("371202", "371203", "370116", "370117", "370102")


def _shandong_rows() -> list[tuple]:
    registry = reference.divisions()
    keep = registry["code"].isin(["370000000000", "370100000000", "371200000000"]) | (
        registry["county_code"].isin(SHANDONG_COUNTIES) & registry["level"].isin(["county", "township"])
    )
    return [
        (r.code, r.name, r.level, r.first_year, r.last_year, r.is_dev_zone, r.is_placeholder)
        for r in registry[keep].itertuples()
    ]


def _number(value) -> float | None:
    """An OBS_VALUE read back: empty (or NaN) is an unknown figure."""
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def bi(settings, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        return conn.execute(query, params).fetchall()


def one(settings, query: str, params: tuple = ()):
    rows = bi(settings, query, params)
    assert len(rows) == 1, rows
    return rows[0]


@pytest.fixture(scope="module")
def first(settings) -> dict:
    """The dataset built with a revision window that has not closed yet, and published."""
    extra = HANYANG + _shandong_rows()
    with connect(settings) as conn:
        ds.create_inputs(conn)
        conn.execute(f"SET ROLE {LOADER}")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reference.division VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                [ds._division_row(*row) for row in extra],
            )
        frame = ds.registry_frame()
        frame = pd.concat(
            [
                frame,
                pd.DataFrame(
                    [(c, n, lvl, f, last, p) for c, n, lvl, f, last, _, p in extra], columns=frame.columns
                ),
            ],
            ignore_index=True,
        )
        reference.load_crosswalk(conn, crosswalk_build.derive(frame))
        conn.execute("RESET ROLE")
        conn.commit()
        for submission_id, county, year, region in (
            (51, "371203", 2018, "371203000000"),
            (52, "370117", 2019, "370117000000"),
            (53, "370102", 2018, "370102000000"),
        ):
            ds.add_submission(
                conn,
                (
                    submission_id,
                    county,
                    year,
                    "JCPT-1",
                    1,
                    f"{year + 1}-03-01 10:00+08",
                    "v2017",
                    "accepted",
                    [],
                    [],
                ),
                [
                    (
                        submission_id,
                        dict(
                            region_code=region,
                            has_platform=1,
                            standardized=1,
                            staff_total=5,
                            persons_served=100,
                            funding_total=10,
                            funding_central=10,
                            funding_provincial=0,
                            funding_municipal=0,
                            funding_county=0,
                        ),
                    )
                ],
            )
    os.environ["HRSS_REVISION_WINDOW_DAYS"] = "100000"  # no survey year is closed yet: P
    try:
        transform.build(settings, full_refresh=True)
    finally:
        del os.environ["HRSS_REVISION_WINDOW_DAYS"]
    return publish.publish(settings)


@pytest.fixture(scope="module")
def second(settings, first) -> dict:
    """江岸 revises its 2018 township return (staff 30 + 6 → 31 + 6); built with the default window
    (every survey year here is closed), published again."""
    with connect(settings) as conn:
        ds.add_submission(
            conn,
            (61, "420102", 2018, "JCPT-2", 2, "2019-05-01 10:00+08", "v2017", "accepted", [], []),
            [
                (
                    61,
                    dict(
                        region_code="420102001000",
                        unit_type=3,
                        has_platform=1,
                        platform_mode=1,
                        service_sites=2,
                        standardized=1,
                        staff_total=31,
                        persons_served=90000,
                        funding_total=20,
                        funding_central=5,
                        funding_provincial=5,
                        funding_municipal=5,
                        funding_county=5,
                    ),
                ),
                (
                    61,
                    dict(
                        region_code="420102002000",
                        unit_type=3,
                        has_platform=1,
                        platform_mode=2,
                        service_sites=1,
                        standardized=1,
                        staff_total=6,
                        persons_served=50000,
                        funding_total=10,
                        funding_central=10,
                        funding_provincial=0,
                        funding_municipal=0,
                        funding_county=0,
                    ),
                ),
            ],
        )
    transform.build(settings)
    return publish.publish(settings)


def test_first_publication_is_provisional_and_missing_is_m(settings, first) -> None:
    # 江岸 2017 township: reported, first publication, window open -> P
    assert one(
        settings,
        "SELECT obs_status FROM mart_staff WHERE survey_year = 2017 AND region_code = "
        "'420102000000' AND platform_level = 'township'",
    ) == ("P",)
    # 江汉 2018: only a quarantined file -> no return in force -> M
    assert one(
        settings,
        "SELECT obs_status, counties_reported FROM mart_coverage WHERE survey_year = 2018 "
        "AND region_code = '420103000000' AND platform_level = 'township'",
    ) == ("M", 0)
    statuses = {row[0] for row in bi(settings, "SELECT DISTINCT obs_status FROM mart_rollup_figures")}
    assert statuses <= {"P", "M", "E"}


def test_estimates_carry_forward_the_last_accepted_return(settings, first) -> None:
    # 江汉 2018 township: its 2017 return (1 unit with a platform, 8 sites, staff 4) carried forward
    row = one(
        settings,
        "SELECT units_reported, counties_estimated, estimated_units_reported, "
        "estimated_units_with_platform, estimated_service_sites, estimated_obs_status "
        "FROM mart_coverage WHERE survey_year = 2018 AND region_code = '420103000000' "
        "AND platform_level = 'township'",
    )
    assert row == (0, 1, 1, 1, 8, "E")
    # Hubei 2018 villages: observed 江岸 only (staff 2); with 江汉's 2017 villages (staff 2): 4
    row = one(
        settings,
        "SELECT staff_total, estimated_staff_total, obs_status, estimated_obs_status FROM mart_staff "
        "WHERE survey_year = 2018 AND region_code = '420000000000' AND platform_level = 'village'",
    )
    assert row == (2, 4, "P", "E")
    # county centres' central funding 2018: 江岸 60 observed; 江汉's 2017 1000 carried forward; 汉阳
    # and the development zone 420171 (never reported) imputed at 武汉's 60 per reporting centre
    row = one(
        settings,
        "SELECT amount_wan, estimated_amount_wan FROM mart_funding WHERE survey_year = 2018 "
        "AND region_code = '420000000000' AND platform_level = 'county' AND funding_source = 'central'",
    )
    assert (float(row[0]), row[1]) == (60.0, 60 + 1000 + 60 + 60)


def test_estimates_impute_the_prefecture_rate_without_history(settings, first) -> None:
    # 汉阳 never reported: 1 township in the registry x 武汉's 2017 township reporters' rates
    # (江岸 rev. 2: 2 units, staff 30 + 5, sites 1000 + 700; 江汉: 1 unit, staff 4, sites 8)
    row = one(
        settings,
        "SELECT units_reported, platforms, estimated_units_reported, estimated_platforms, "
        "estimated_staff_total, obs_status, estimated_obs_status FROM mart_staff "
        "WHERE survey_year = 2017 AND region_code = '420104000000' AND platform_level = 'township'",
    )
    assert row[:2] == (0, None) and row[2:4] == (1, 1)
    assert math.isclose(row[4], 39 / 3) and row[5:] == ("M", "E")
    sites = one(
        settings,
        "SELECT estimated_service_sites FROM mart_coverage WHERE survey_year = 2017 "
        "AND region_code = '420104000000' AND platform_level = 'township'",
    )[0]
    assert math.isclose(sites, 1708 / 3)


def test_reconciliation_keeps_observed_figures(settings, first) -> None:
    # HB-01..04 (Hubei 2017 townships) match exactly on the observed returns, estimates or not
    statuses = bi(
        settings,
        "SELECT fact_id, status FROM mart_published_reconciliation "
        "WHERE fact_id IN ('HB-01', 'HB-02', 'HB-03', 'HB-04') ORDER BY fact_id",
    )
    assert statuses and all(status == "match" for _, status in statuses)


def test_laiwu_restated_on_jinan(settings, first) -> None:
    # on its own year's boundaries 钢城区 2018 is in 莱芜市
    assert one(
        settings,
        "SELECT units_reported FROM mart_coverage WHERE survey_year = 2018 AND region_code = "
        "'371200000000' AND platform_level = 'county'",
    ) == (1,)
    # on today's: in 济南市 as 370117, restated; 济南 2018 = 历下 + 钢城
    assert one(
        settings,
        "SELECT units_reported, region_name, is_restated, boundary_edition "
        "FROM mart_coverage_current_boundaries WHERE survey_year = 2018 "
        "AND region_code = '370117000000' AND platform_level = 'county'",
    ) == (1.0, "钢城区", True, 2023)
    assert one(
        settings,
        "SELECT units_reported, is_restated FROM mart_coverage_current_boundaries "
        "WHERE survey_year = 2018 AND region_code = '370100000000' AND platform_level = 'county'",
    ) == (2.0, True)
    assert (
        bi(settings, "SELECT 1 FROM mart_staff_current_boundaries WHERE region_code = '371200000000'") == []
    )
    # 2019 is on the newest boundaries already: nothing restated; 历下区 is never restated
    assert one(
        settings,
        "SELECT staff_total, is_restated FROM mart_staff_current_boundaries WHERE survey_year = 2019 "
        "AND region_code = '370117000000' AND platform_level = 'county'",
    ) == (5.0, False)
    assert one(
        settings,
        "SELECT amount_wan, is_restated FROM mart_funding_current_boundaries WHERE survey_year = 2018 "
        "AND region_code = '370102000000' AND platform_level = 'county' "
        "AND funding_source = 'central'",
    ) == (10.0, False)


def test_a_revision_is_r_and_every_vintage_stays_queryable(settings, first, second) -> None:
    query = (
        "SELECT staff_total, obs_status FROM mart_staff WHERE survey_year = 2018 "
        "AND region_code = '420102000000' AND platform_level = 'township'"
    )
    assert one(settings, query) == (37, "R")
    # unchanged and closed now: A
    assert one(
        settings,
        "SELECT obs_status FROM mart_staff WHERE survey_year = 2017 AND region_code = "
        "'420102000000' AND platform_level = 'township'",
    ) == ("A",)
    revision = one(
        settings,
        "SELECT first_value, latest_value, is_revised, vintages FROM mart_revisions "
        "WHERE mart = 'mart_staff' AND survey_year = 2018 AND region_code = '420102000000' "
        "AND platform_level = 'township' AND indicator = 'staff_total'",
    )
    assert revision == (36, 37, True, 1)
    publications = bi(
        settings, "SELECT publication_id, published_at FROM mart_figure_vintages GROUP BY 1, 2 ORDER BY 1"
    )
    assert [p for p, _ in publications] == [first["publication_id"], second["publication_id"]]
    as_published_on = (
        "SELECT value, obs_status FROM mart_figure_vintages WHERE published_at <= %s "
        "AND (superseded_at IS NULL OR superseded_at > %s) AND NOT is_withdrawn "
        "AND mart = 'mart_staff' AND survey_year = 2018 AND region_code = '420102000000' "
        "AND platform_level = 'township' AND indicator = 'staff_total'"
    )
    first_at, second_at = (at for _, at in publications)
    between = first_at + (second_at - first_at) / 2
    assert one(settings, as_published_on, (between, between)) == (36, "P")
    now = datetime.now(first_at.tzinfo) + timedelta(seconds=1)
    assert one(settings, as_published_on, (now, now)) == (37, "R")
    before = first_at - timedelta(seconds=1)
    assert bi(settings, as_published_on, (before, before)) == []
    assert second["figures_appended"] > 0


def test_sdmx_export_reads_back_with_sdmx1(settings, second, tmp_path) -> None:
    import sdmx

    result = export.export_sdmx(settings, [2016, 2017, 2018, 2019], tmp_path)
    assert set(result.files) == {"JCPT_DSD.xml", "coverage.csv", "funding.csv", "staff.csv"}
    structure = sdmx.read_sdmx(tmp_path / "JCPT_DSD.xml").structure["JCPT"]
    dimensions = [d.id for d in structure.dimensions.components]
    assert dimensions == ["REGION", "PLATFORM_LEVEL", "TIME_PERIOD", "INDICATOR"]
    assert {"OBS_STATUS", "UNIT", "UNIT_MULT"} <= {a.id for a in structure.attributes.components}
    observations = {}
    for name in ("coverage", "funding", "staff"):
        message = sdmx.read_sdmx(tmp_path / f"{name}.csv", structure=structure)
        for obs in message.data[0].obs:
            key = tuple(obs.dimension.values[d].value for d in dimensions)
            observations[key] = (
                obs.value,
                obs.attached_attribute["OBS_STATUS"].value,
                obs.attached_attribute["UNIT"].value,
                obs.attached_attribute["UNIT_MULT"].value,
            )
    assert len(observations) == sum(result.files.values())
    # values straight from the wide marts, not from mart_rollup_figures the exporter read
    for region, level, year, staff, status in bi(
        settings, "SELECT region_code, platform_level, survey_year, staff_total, obs_status FROM mart_staff"
    ):
        value, obs_status, unit, _ = observations[(region, level, str(year), "STAFF_STAFF_TOTAL")]
        assert _number(value) == staff  # an unknown figure is an empty OBS_VALUE
        assert (obs_status, unit) == (status, "PS")
    for region, level, year, amount in bi(
        settings,
        "SELECT region_code, platform_level, survey_year, amount_wan "
        "FROM mart_funding WHERE funding_source = 'central' "
        "AND amount_wan IS NOT NULL",
    ):
        value, _, unit, mult = observations[(region, level, str(year), "FUNDING_AMOUNT_WAN_CENTRAL")]
        assert math.isclose(float(value), float(amount)) and (unit, str(mult)) == ("CNY", "4")
    coverage = one(
        settings,
        "SELECT coverage_rate FROM mart_coverage WHERE survey_year = 2017 "
        "AND region_code = '420000000000' AND platform_level = 'township'",
    )[0]
    assert math.isclose(
        float(observations[("420000000000", "township", "2017", "COVERAGE_COVERAGE_RATE")][0]), coverage
    )


def test_nightly_export_task_writes_only_when_asked(settings, second, caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, logger=tasks.__name__)
    exports = settings.home / "exports"
    said: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = said.append  # on the module's logger itself: Airflow reconfigures the root's handlers
    logger = logging.getLogger(tasks.__name__)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert tasks.export_sdmx(False) == {}
    finally:
        logger.removeHandler(handler)
    # whichever handler Airflow's logging set-up (done by an earlier test in this process) left working
    assert any("param export_sdmx is off" in record.getMessage() for record in [*said, *caplog.records])
    assert not exports.exists()
    done = tasks.export_sdmx(True)
    assert done["folder"] == str(exports)
    assert done["files"]["staff.csv"] > 0 and (exports / "JCPT_DSD.xml").exists()
