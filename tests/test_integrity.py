"""Integrity of one ingest against the real warehouse (issue 17): a value no column can hold is C03, a
file the warehouse still cannot load is quarantined alone (W01) while the rest of its batch loads,
footers never reach findings or reports whatever their labels, formula cells without a computed value
are answered, a stray note does not make a sheet too long, and reports cap what they echo."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import psycopg
import pytest
from ingest_helpers import FIXTURES, make_fixtures

from hrss_warehouse import db, pipeline
from hrss_warehouse.config import LOADER
from hrss_warehouse.db import connect
from hrss_warehouse.files import parse_file_name
from hrss_warehouse.spec import WAREHOUSE_FAILURE, load_spec
from hrss_warehouse.stages import parse, report

GOOD = FIXTURES / "pass" / "good" / "150206_2017.xlsx"
POISON_NAME = "毒丸街道"  # a township name the test's CHECK constraint makes the warehouse refuse
# Footer people written under labels the template does not use, in a file that also fails C05
FOOTER_PEOPLE = ("钱多多", "孙悟空", "周芷若")
FOOTER_PHONES = ("13912345678", "13800138000", "13700001111")
MANY_BAD_ROWS = report.MAX_FINDINGS_PER_RULE + 50


def _varied_footers(workbook, sheets) -> None:
    # in place of the template's footer (a blank row after the last unit row)
    sheets["JCPT-2"].write(11, 0, f"负责人：{FOOTER_PEOPLE[0]}  电话：{FOOTER_PHONES[0]}")
    sheets["JCPT-3"].write(13, 0, "填报人")  # label and values in separate cells
    sheets["JCPT-3"].write(13, 1, FOOTER_PEOPLE[1])
    sheets["JCPT-3"].write(13, 2, f"手机 {FOOTER_PHONES[1]}")


def _openpyxl_copy(target: Path, edit) -> Path:
    """The good return saved again by openpyxl (a program that stores formulas without values)."""
    workbook = openpyxl.load_workbook(GOOD)
    edit(workbook)
    workbook.save(target)
    return target


def _landing(folder: Path) -> dict[str, str]:
    """Write every case into ``folder``; returns case -> landed file name."""
    names = {}

    def book(case: str, revision: int, change) -> None:
        names[case] = f"150206_2017_r{revision}.xlsx"
        make_fixtures.write_book(folder / names[case], make_fixtures.book_for(change))

    shutil.copyfile(GOOD, folder / "150206_2017_r101.xlsx")
    names["good"] = "150206_2017_r101.xlsx"
    book("poison", 102, lambda b: b.rows["JCPT-2"][0].update(unit_name=POISON_NAME))
    book("footers", 103, lambda b: (b.rows["JCPT-1"][0].update(staff_total=21),
                                    setattr(b, "after", _varied_footers)))
    names["formula"] = "150206_2017_r104.xlsx"
    _openpyxl_copy(folder / names["formula"], lambda wb: wb["JCPT-1"].__setitem__("I9", "=J9+K9+L9"))
    names["stray_note"] = "150206_2017_r105.xlsx"
    _openpyxl_copy(folder / names["stray_note"],
                   lambda wb: wb["JCPT-3"].cell(1_048_576, 1, "备注：本表数据已核对"))
    # a CSV whose footer a county appended, with a label of its own
    names["csv_footer"] = "150206_2017_JCPT-2_r106.csv"
    make_fixtures.write_csv(folder / names["csv_footer"], "JCPT-2", make_fixtures.V2017["JCPT-2"])
    with (folder / names["csv_footer"]).open("a", encoding="utf-8") as out:
        out.write(f"联络人：{FOOTER_PEOPLE[2]},{FOOTER_PHONES[2]}\r\n")
    # one line of 2 MB (the header, no newline): S04 lists what is wrong with it
    names["one_line"] = "150206_2017_JCPT-3_r107.csv"
    (folder / names["one_line"]).write_text("甲,乙,丙," + ",".join(f"x{i}" for i in range(300_000)),
                                            encoding="utf-8")
    # a C03 finding on every one of many rows
    names["many_c03"] = "150206_2017_JCPT-3_r108.csv"
    rows = [dict(make_fixtures.V2017["JCPT-3"][0], region_code=f"150206001{i:03d}", persons_served="许多")
            for i in range(MANY_BAD_ROWS)]
    make_fixtures.write_csv(folder / names["many_c03"], "JCPT-3", rows)
    # S02: its English message shows the pattern the name breaks (distinct bytes: not a re-send)
    names["s02"] = "county-return.xlsx"
    shutil.copyfile(FIXTURES / "bad" / "S02_future_year" / "150206_2099.xlsx", folder / names["s02"])
    return names


def _constraint(settings, add: bool) -> None:
    table = f"raw.{load_spec().raw_table('JCPT-2')}"
    with connect(settings) as conn:
        if add:
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT refuses_poison "
                         f"CHECK (unit_name IS DISTINCT FROM '{POISON_NAME}')")
        else:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT refuses_poison")
        conn.commit()


def _submissions(settings) -> dict[str, list[tuple]]:
    with connect(settings, role=LOADER) as conn:
        rows = conn.execute("SELECT file_name, submission_id, form, outcome, failed_rules "
                            "FROM raw.submission ORDER BY submission_id").fetchall()
    out: dict[str, list[tuple]] = {}
    for file_name, *rest in rows:
        out.setdefault(file_name, []).append(tuple(rest))
    return out


def _reports(settings, sid: int) -> tuple[list[dict], str]:
    path = next((settings.reports_dir / "feedback").glob(f"{sid}_*.csv"))
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh)), path.with_suffix(".html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def ingested(settings, tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    names = _landing(landing)
    db.ensure_raw_schema(settings)
    _constraint(settings, add=True)
    summary = pipeline.ingest_folder(settings, landing)
    return names, summary, _submissions(settings)


def test_the_largest_value_c03_accepts_fits_its_column_and_the_next_is_c03(settings):
    """Types and checks agree: C03's bounds are the raw columns' PostgreSQL types (spec.PG_TYPES)."""
    spec = load_spec()
    columns = {c.pg_type: c for f in spec.form_codes for c in spec.canonical_columns(f)
               if c.type in ("count", "area", "money")}
    with connect(settings) as conn:
        for pg_type, column in columns.items():
            for divisor in ({1, 10_000} if column.type == "money" else {1}):
                # the largest value of the column's scale below the bound that a float holds
                largest = (column.upper_bound - 10.0 ** -column.scale if column.scale
                           else float(np.nextafter(column.upper_bound, 0)))
                cells = pd.Series([f"{largest * divisor:.{column.scale}f}",
                                   f"{column.upper_bound * divisor:.0f}", "1" + "0" * 30], dtype=object)
                values, bad = parse.read_numeric(cells, column, divisor)
                assert bad.isna().tolist() == [True, False, False], (pg_type, divisor)
                stored = round(values[0] / divisor, column.scale)
                # as the loader's CSV writes it (the float's shortest repr) into COPY
                as_written = str(int(stored) if column.scale == 0 else stored)
                conn.execute(f"SELECT %s::text::{pg_type}", (as_written,))
                with pytest.raises(psycopg.errors.NumericValueOutOfRange):
                    conn.execute(f"SELECT %s::{pg_type}", (int(column.upper_bound),))
                conn.rollback()


def test_a_file_the_warehouse_cannot_load_is_quarantined_alone_as_w01(settings, ingested):
    names, _, subs = ingested
    poison = subs[names["poison"]]
    assert {(outcome, tuple(rules)) for _, _, outcome, rules in poison} == {("quarantined", ("W01",))}
    assert {outcome for _, _, outcome, _ in subs[names["good"]]} == {"accepted"}
    assert {outcome for _, _, outcome, _ in subs[names["stray_note"]]} == {"accepted"}
    with connect(settings, role=LOADER) as conn:
        loaded = dict(conn.execute(
            "SELECT s.file_name, count(*) FROM raw.jcpt_village_rows r JOIN raw.submission s "
            "USING (submission_id) GROUP BY 1").fetchall())
        stored = conn.execute("SELECT DISTINCT archived_path FROM raw.submission WHERE file_name = %s",
                              (names["poison"],)).fetchall()
        poisoned_rows = conn.execute("SELECT count(*) FROM raw.jcpt_township_rows "
                                     "WHERE submission_id = ANY(%s)", ([s[0] for s in poison],)).fetchone()[0]
    assert loaded[names["good"]] == 4 and names["poison"] not in loaded and poisoned_rows == 0
    assert "/quarantine/" in stored[0][0]
    rows, html = _reports(settings, poison[0][0])
    w01 = [r for r in rows if r["rule_id"] == "W01"]
    assert w01 and "not a fault of the county" in w01[0]["message_en"]
    assert "不是贵县文件的问题" in w01[0]["message_zh"]
    assert "the warehouse failed, not the county" in html and "CheckViolation" in w01[0]["message_en"]
    assert WAREHOUSE_FAILURE.id not in load_spec().rules  # the project's own rule, not the survey's


def test_the_rerun_is_clean_and_heals_once_the_warehouse_is_fixed(settings, ingested):
    names, _, subs = ingested
    again = pipeline.reprocess_year(settings, 2017)
    assert again["changed"] == []  # the same outcomes, no error
    _constraint(settings, add=False)
    healed = pipeline.reprocess_year(settings, 2017)
    poison_ids = {s[0] for s in subs[names["poison"]]}
    assert {c["submission_id"] for c in healed["changed"]} == poison_ids
    assert {c["after"]["outcome"] for c in healed["changed"]} == {"accepted"}


def test_footers_never_reach_findings_or_reports_whatever_their_labels(settings, ingested):
    names, _, subs = ingested
    assert {o for _, _, o, _ in subs[names["footers"]]} == {"quarantined"}  # it fails C05 as intended
    assert {(o, tuple(r)) for _, _, o, r in subs[names["csv_footer"]]} == {("accepted", ())}
    with connect(settings, role=LOADER) as conn:
        findings = conn.execute("SELECT rule_id, coalesce(value, ''), params::text "
                                "FROM raw.submission_finding").fetchall()
    assert "C05" in {f[0] for f in findings}
    secrets = FOOTER_PEOPLE + FOOTER_PHONES
    for rule_id, value, params in findings:
        assert not any(s in value or s in params for s in secrets), rule_id
    for path in (settings.reports_dir / "feedback").iterdir():
        text = path.read_text(encoding="utf-8-sig")
        assert not any(s in text for s in secrets), path.name


def test_a_formula_without_a_computed_value_is_c03_not_a_silent_null(settings, ingested):
    names, _, subs = ingested
    assert {o for _, _, o, _ in subs[names["formula"]]} == {"quarantined"}
    county_form = next(s for s in subs[names["formula"]] if s[1] == "JCPT-1")
    rows, _ = _reports(settings, county_form[0])
    c03 = [r for r in rows if r["rule_id"] == "C03"]
    assert [(r["row"], r["column"]) for r in c03] == [("9", "7")]
    assert c03[0]["value"].startswith("'=J9+K9+L9") and parse.NO_CACHED_VALUE in c03[0]["value"]


def test_a_stray_note_in_the_last_row_is_not_a_row_limit(ingested):
    names, _, subs = ingested
    assert {(o, tuple(r)) for _, _, o, r in subs[names["stray_note"]]} == {("accepted", ())}


def test_reports_cap_what_they_echo(settings, ingested):
    names, _, subs = ingested
    (one_line,) = subs[names["one_line"]]
    assert one_line[2:] == ("quarantined", ["S04"])
    rows, html = _reports(settings, one_line[0])
    assert all(len(cell) < 2 * report.MAX_VALUE_CHARS + 200 for row in rows for cell in row.values())
    assert len(html) < 10_000
    (many,) = subs[names["many_c03"]]
    rows, _ = _reports(settings, many[0])
    c03 = [r for r in rows if r["rule_id"] == "C03"]
    assert len(c03) == report.MAX_FINDINGS_PER_RULE + 1
    rest = MANY_BAD_ROWS - report.MAX_FINDINGS_PER_RULE
    assert c03[-1]["message_en"] == f"{rest} more C03 findings not shown"


def test_an_s02_report_shows_the_name_pattern_as_written(settings, ingested):
    names, _, subs = ingested
    (s02,) = subs[names["s02"]]
    rows, _ = _reports(settings, s02[0])
    assert [r["message_en"] for r in rows] == [
        "The file name does not follow {county_code}_{year}[_{form}][_r{n}].xlsx|xls|csv: county-return.xlsx"]
    assert rows[0]["message_zh"].endswith("的规定：county-return.xlsx")


def test_a_value_is_never_read_as_a_template():
    rule = load_spec().rules["C03"]
    params = {"row": 9, "column": "6", "name": "x", "value": "{row}{0}{", "type": "count"}
    zh, en = report.message(rule, params)
    assert en == "Row 9, column 6 (x): '{row}{0}{' is not a valid count" and "{row}{0}{" in zh


def test_an_empty_form_is_s09_in_either_format(tmp_path):
    header_only = make_fixtures.write_csv(tmp_path / "150206_2017_JCPT-3.csv", "JCPT-3", [])
    parsed = parse.parse_file(header_only, parse_file_name(header_only.name), header_only.name)
    assert [(f.rule_id, f.form) for f in parsed.findings] == [("S09", "JCPT-3")]
    empty_sheet = make_fixtures.write_book(tmp_path / "150206_2017.xlsx", make_fixtures.book_for(
        lambda b: b.rows.update({"JCPT-2": []})))
    parsed = parse.parse_file(empty_sheet, parse_file_name(empty_sheet.name), empty_sheet.name)
    assert [(f.rule_id, f.form) for f in parsed.findings] == [("S09", "JCPT-2")]
