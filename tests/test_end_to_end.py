"""The whole flow on generated returns: registry → generate → ingest → dbt build → publish → summary.

Chongqing (50) for survey years 2016 (v2014) and 2017 (v2017), with bad revisions, through the same
package calls the DAG tasks make. Then the guarantees a statistician relies on: every file's outcome is
the one the generator intended, the published figure reconciles, a byte-identical re-send changes
nothing, personal data never reaches the marts, and a changed return shows up in the reconciliation.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from hrss_warehouse import config, db
from hrss_warehouse.config import Settings
from hrss_warehouse.spec import load_spec

PROVINCE, YEARS, SEED = "50", [2016, 2017], 11
# The tables of the mart interface (survey_spec/marts.md); build_info changes with every build.
CONTRACT_TABLES = ("dim_region", "dim_survey_year", "dim_funding_source", "fct_platform_year", "fct_funding",
                   "mart_coverage", "mart_funding", "mart_staff", "mart_submissions", "mart_return_status",
                   "mart_published_reconciliation")


def bi_rows(settings: Settings, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        return conn.execute(query, params).fetchall()


def checksums(settings: Settings) -> dict[str, str]:
    """An md5 over each contract table's sorted rows, as BI reads them."""
    return {table: bi_rows(settings, f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                                     f"FROM marts.{table} t")[0][0] for table in CONTRACT_TABLES}


def raw_counts(settings: Settings) -> dict[str, int]:
    spec = load_spec()
    tables = ["submission", *(spec.raw_table(f) for f in spec.form_codes)]
    with db.connect(settings, config.LOADER) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0] for t in tables}


def build_and_publish(settings: Settings, *, full_refresh: bool = False) -> dict:
    from hrss_warehouse.stages import publish, transform

    transform.build(settings, full_refresh=full_refresh)
    return publish.publish(settings)


@pytest.fixture(scope="module")
def flow(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from hrss_tools import generate
    from hrss_warehouse import pipeline
    from hrss_warehouse.stages import reference

    reference.load_divisions(settings)
    landing = settings.landing_dir
    generated = generate.generate(landing, provinces=[PROVINCE], years=YEARS, bad_share=0.15, seed=SEED,
                                  progress=False)
    pristine = tmp_path_factory.mktemp("pristine")
    for path in landing.iterdir():
        shutil.copy2(path, pristine / path.name)
    ingested = pipeline.ingest_folder(settings, landing)
    published = build_and_publish(settings, full_refresh=True)
    manifest = json.loads(Path(generated["manifest"]).read_text(encoding="utf-8"))
    return {"generated": generated, "ingested": ingested, "published": published, "manifest": manifest,
            "pristine": pristine}


def test_every_file_gets_the_outcome_the_generator_intended(settings: Settings, flow: dict) -> None:
    submissions = bi_rows(settings, "SELECT file_name, form, outcome, failed_rules FROM mart_submissions")
    seen: dict[str, list[tuple]] = {}
    for file_name, form, outcome, failed in submissions:
        seen.setdefault(file_name, []).append((form, outcome, set(failed)))
    files = flow["manifest"]["files"]
    assert {f["file"] for f in files} == set(seen)
    assert any(f["outcome"] == "quarantined" for f in files)
    for entry in files:
        rows = seen[entry["file"]]
        assert {outcome for _, outcome, _ in rows} == {entry["outcome"]}, entry["file"]
        for _, _, failed in rows:
            assert failed == set(entry["hard_rules"]), (entry["file"], failed)


def test_every_reporting_county_has_a_return_in_force(settings: Settings, flow: dict) -> None:
    from hrss_warehouse.stages import reference

    for year in YEARS:
        counties = reference.reporting_counties(year)
        expected = set(counties.loc[counties["province_code"].str[:2] == PROVINCE, "county_code"])
        status = dict(bi_rows(settings, "SELECT county_code, status FROM mart_return_status "
                                        "WHERE survey_year = %s AND county_code LIKE %s",
                              (year, PROVINCE + "%")))
        assert set(status) == expected
        assert set(status.values()) == {"accepted"}


def test_published_figures_reconcile(settings: Settings, flow: dict) -> None:
    rows = bi_rows(settings, "SELECT fact_id, status, warehouse_value FROM mart_published_reconciliation "
                             "WHERE province_code = %s AND comparable = 'yes'", (PROVINCE + "0000",))
    assert rows, "Chongqing has comparable published figures"
    assert {status for _, status, _ in rows} == {"match"}, rows


def test_a_byte_identical_resend_changes_nothing(settings: Settings, flow: dict) -> None:
    from hrss_warehouse import pipeline

    before, counts = checksums(settings), raw_counts(settings)
    with db.connect(settings, config.LOADER) as conn:
        receipts = conn.execute("SELECT count(*) FROM raw.receipt").fetchone()[0]
    for path in flow["pristine"].iterdir():  # the first copies were moved to the archive
        shutil.copy2(path, settings.landing_dir / path.name)
    again = pipeline.ingest_folder(settings, settings.landing_dir)
    build_and_publish(settings)
    assert again["accepted"] == again["quarantined"] == again["rows"] == 0
    assert raw_counts(settings) == counts
    with db.connect(settings, config.LOADER) as conn:
        assert conn.execute("SELECT count(*) FROM raw.receipt").fetchone()[0] == receipts + len(
            list(flow["pristine"].iterdir()))
    assert checksums(settings) == before
    assert not list(settings.landing_dir.iterdir())


def test_personal_data_never_reaches_the_marts(settings: Settings, flow: dict) -> None:
    with db.connect(settings, config.LOADER) as conn:
        contacts = conn.execute(
            "SELECT c.submission_id, c.name, c.phone FROM raw.submission_contact c "
            "JOIN raw.submission s USING (submission_id) WHERE s.outcome = 'accepted'").fetchall()
    assert contacts, "the footers' names and phones are kept for follow-up"
    in_marts = {r[0] for r in bi_rows(settings, "SELECT DISTINCT submission_id FROM fct_platform_year")}
    assert in_marts & {sid for sid, _, _ in contacts}, "the same submissions' rows are in the marts"
    # A phone number is found anywhere inside a value; a two-character fake name like 江津 is also a
    # place name, so names are searched as whole values (or whole array elements). Both are hash joins
    # over each column's distinct values (the registry's dim_region alone has about 700,000 rows).
    phones = sorted({phone for _, _, phone in contacts if phone})
    names = sorted({name for _, name, _ in contacts if name})
    text_columns = bi_rows(settings, """
        SELECT table_name, column_name, data_type FROM information_schema.columns
        WHERE table_schema = 'marts' AND data_type IN ('text', 'character varying', 'ARRAY')""")
    assert text_columns and phones and names
    found_in = """
        WITH found AS (SELECT DISTINCT cell.value FROM marts."{table}", unnest({elements}) AS cell (value))
        SELECT (SELECT count(*) FROM found
                JOIN unnest(%(names)s::text[]) AS names (name) ON found.value = names.name)
             + (SELECT count(*) FROM found
                CROSS JOIN unnest(%(lengths)s::int[]) AS lengths (length)
                CROSS JOIN LATERAL
                    generate_series(1, length(found.value) - lengths.length + 1) AS positions (position)
                JOIN unnest(%(phones)s::text[]) AS phones (phone)
                    ON substr(found.value, positions.position, lengths.length) = phones.phone
                WHERE found.value ~ '[0-9]')"""
    params = {"names": names, "phones": phones, "lengths": sorted({len(phone) for phone in phones})}
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        for table, column, data_type in text_columns:
            elements = f'"{column}"::text[]' if data_type == "ARRAY" else f'ARRAY["{column}"::text]'
            found = conn.execute(found_in.format(table=table, elements=elements), params).fetchone()[0]
            assert found == 0, f"personal data in marts.{table}.{column}"
    with db.connect(settings, config.TRANSFORMER) as conn, pytest.raises(
            errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM raw.submission_contact")


def test_summary_shows_the_marts(settings: Settings, flow: dict) -> None:
    from hrss_warehouse.stages.summary import write_summary

    text, page = write_summary(settings)
    assert "Reconciliation with the published figures" in text and "CQ-05" in text
    assert "重庆" in text
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") >= 3 * len(YEARS) and "CQ-05" in html


def _revise_township_staff(source: Path, target: Path, extra: int) -> None:
    """A corrected workbook whose first township with a platform reports `extra` more staff."""
    import openpyxl

    form = load_spec().form("JCPT-2", "v2017")
    book = openpyxl.load_workbook(source)
    sheet = book["JCPT-2"]
    codes = {str(c.value).strip().removesuffix(".0"): c.column for c in sheet[7] if c.value is not None}
    total_col, other_col = codes[form.column("staff_total").code], codes[form.column("staff_other").code]
    for row in sheet.iter_rows(min_row=9):
        staff = row[total_col - 1].value
        if isinstance(staff, int) and isinstance(row[other_col - 1].value, int) and staff > 0:
            for column in (total_col, other_col):
                row[column - 1].value += extra
                sheet.cell(row=8, column=column).value += extra  # the 合计 row
            break
    book.save(target)


def test_a_changed_return_turns_its_figure_differs(settings: Settings, flow: dict) -> None:
    from hrss_warehouse import pipeline

    plain = [f for f in flow["manifest"]["files"] if f["year"] == 2017 and f["format"] == "xlsx"
             and f["outcome"] == "accepted" and f["kind"] == "return" and not f["soft_rules"]
             and not any(g["county"] == f["county"] and g["year"] == 2017 and g["file"] != f["file"]
                         for g in flow["manifest"]["files"])]
    assert plain, "a county that sent one clean workbook"
    county = plain[0]["county"]
    revised = settings.landing_dir / f"{county}_2017_r9.xlsx"
    _revise_township_staff(flow["pristine"] / plain[0]["file"], revised, extra=400)
    now = time.time()
    os.utime(revised, (now, now))
    ingested = pipeline.ingest_folder(settings, settings.landing_dir)
    assert ingested["accepted"] == 3 and ingested["quarantined"] == 0
    build_and_publish(settings)
    status = bi_rows(settings, "SELECT status, warehouse_value FROM mart_published_reconciliation "
                               "WHERE fact_id = 'CQ-05'")
    assert status[0][0] == "differs" and float(status[0][1]) == pytest.approx(5221 + 400)
    in_force = bi_rows(settings, "SELECT file_name FROM mart_submissions WHERE in_force AND county_code = %s "
                                 "AND survey_year = 2017 AND form = 'JCPT-2'", (county,))
    assert in_force == [(revised.name,)]
    flow["revised_county"] = county


def test_the_revision_is_r_and_every_other_figure_a(settings: Settings, flow: dict) -> None:
    """README "Statistics" on generated returns: survey years 2016-2017 are closed, every county
    reported (no M, no estimate), and the corrected township return of one county turns R exactly the
    staff figures of its regions (county, prefecture, province); its first value stays in mart_revisions."""
    county = flow["revised_county"]
    regions = {county + "000000", county[:4] + "00000000", county[:2] + "0000000000"}
    revised = bi_rows(settings, "SELECT DISTINCT mart, survey_year, region_code, platform_level "
                                "FROM mart_rollup_figures WHERE obs_status = 'R'")
    assert {(mart, year, level) for mart, year, _, level in revised} == {("mart_staff", 2017, "township")}
    assert {region for *_, region, _ in revised} == regions
    statuses = bi_rows(settings, "SELECT DISTINCT obs_status FROM mart_rollup_figures")
    assert {"A", "R"} <= {status for (status,) in statuses} <= {"A", "R", "M"}  # closed years: no P
    # M only where a region has neither a return in force nor a unit reported
    assert bi_rows(settings, "SELECT count(*) FROM mart_coverage WHERE obs_status = 'M' "
                             "AND (counties_reported > 0 OR units_reported > 0)") == [(0,)]
    first, latest = bi_rows(settings, "SELECT first_value, latest_value FROM mart_revisions WHERE mart = "
                                      "'mart_staff' AND region_code = %s AND survey_year = 2017 AND "
                                      "platform_level = 'township' AND indicator = 'staff_total'",
                            (county + "000000",))[0]
    assert latest == first + 400
    assert bi_rows(settings, "SELECT count(*) FROM mart_coverage WHERE counties_estimated > 0 "
                             "OR estimated_units_reported <> units_reported") == [(0,)]
