"""The whole ingest chain on every fixture at once, against the real warehouse: outcomes by rule id,
bad input never stopping the batch, nothing lost, re-sends, reports, reprocessing."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from ingest_helpers import FIXTURES, make_fixtures
from test_check import FAILING, PASSING

from hrss_warehouse import files, pipeline
from hrss_warehouse.config import LOADER, TRANSFORMER
from hrss_warehouse.db import connect
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import load


def _landed_name(path: Path, revision: int) -> str:
    """Give each fixture a distinct legal revision so they can share one landing folder."""
    name = files.parse_file_name(path.name)
    if name is None:
        return path.name
    form = f"_{name.form}" if name.form else ""
    return f"{name.county_code}_{name.survey_year}{form}_r{revision}.{name.kind}"


@pytest.fixture(scope="module")
def ingested(settings, tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    cases: dict[str, tuple[str, str]] = {}  # landed file name -> (kind, case)
    revision = 100
    for kind, names in (("pass", PASSING), ("fail", list(FAILING)), ("bad", sorted(
            p.name for p in (FIXTURES / "bad").iterdir()))):
        for case in names:
            for path in sorted((FIXTURES / kind / case).iterdir()):
                revision += 1
                target = landing / _landed_name(path, revision)
                shutil.copyfile(path, target)
                cases[target.name] = (kind, case)
    summary = pipeline.ingest_folder(settings, landing)
    with connect(settings, role=LOADER) as conn:
        rows = conn.execute("SELECT submission_id, file_name, form, outcome, failed_rules, soft_flags, "
                            "archived_path, form_version, sha256 FROM raw.submission "
                            "WHERE submission_id = ANY(%s)", (summary["submission_ids"],)).fetchall()
    by_case: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        by_case.setdefault(cases[row[1]], []).append(row)
    return summary, by_case, landing


def test_landing_is_emptied_and_every_file_is_registered(ingested):
    summary, by_case, landing = ingested
    assert list(landing.iterdir()) == []
    # the empty CSV and the 0-byte workbook are the same bytes: the second is a re-send of the first
    assert len(by_case) == summary["files"] - 1


@pytest.mark.parametrize("case", sorted(FAILING))
def test_each_rule_fixture_gets_its_outcome(ingested, case):
    _, by_case, _ = ingested
    rule = load_spec().rules[FAILING[case]]
    subs = by_case["fail", case]
    if rule.is_hard:
        assert {s[3] for s in subs} == {"quarantined"}
        assert all(rule.id in s[4] for s in subs)  # a workbook's three forms together
        assert all(Path(s[6]).is_relative_to(Path(s[6]).parents[2] / "quarantine") and Path(s[6]).exists()
                   for s in subs)
    else:
        assert {s[3] for s in subs} == {"accepted"}


@pytest.mark.parametrize("case", PASSING)
def test_legal_returns_are_accepted_without_flags(ingested, case):
    _, by_case, _ = ingested
    assert {(s[3], tuple(s[4]), tuple(s[5])) for s in by_case["pass", case]} == {("accepted", (), ())}


def test_bad_inputs_are_answered_and_get_one_row_with_nulls(ingested):
    _, by_case, _ = ingested
    for (kind, case), subs in by_case.items():
        if kind != "bad":
            continue
        expected = case.split("_")[0]
        assert [(s[3], s[4]) for s in subs] == [("quarantined", [expected])], case
        named_csv = files.parse_file_name(subs[0][1]) is not None and subs[0][1].endswith(".csv")
        assert (subs[0][2] is None) != named_csv  # NULL form unless the CSV's name gives it


def test_rows_are_loaded_with_money_in_wan_yuan_and_row_flags(settings, ingested):
    _, by_case, _ = ingested
    v2014 = {s[2]: s[0] for s in by_case["pass", "good_v2014"]}
    c11 = {s[2]: s[0] for s in by_case["fail", "C11"]}
    with connect(settings, role=LOADER) as conn:
        funding = conn.execute("SELECT funding_total, funding_provincial FROM raw.jcpt_county_rows "
                               "WHERE submission_id = %s", (v2014["JCPT-1"],)).fetchone()
        flags = conn.execute("SELECT source_row, quality_flags FROM raw.jcpt_township_rows WHERE "
                             "submission_id = %s ORDER BY source_row", (c11["JCPT-2"],)).fetchall()
        villages = conn.execute("SELECT count(*) FROM raw.jcpt_village_rows WHERE submission_id = %s",
                                (v2014["JCPT-3"],)).fetchone()[0]
    assert float(funding[0]) == 70.0 and funding[1] is None  # 700000 元; v2014 has no provincial funds
    assert flags == [(9, ["C11"]), (10, [])]
    assert villages == 4


def test_footer_names_go_to_the_restricted_table_only(settings, ingested):
    _, by_case, _ = ingested
    sid = by_case["pass", "good"][0][0]
    with connect(settings, role=LOADER) as conn:
        people = conn.execute("SELECT role, name, phone FROM raw.submission_contact WHERE submission_id = %s",
                              (sid,)).fetchall()
    assert {p[1] for p in people} == set(make_fixtures.FOOTER_NAMES)
    assert make_fixtures.FOOTER_PHONE in {p[2] for p in people}
    with connect(settings, role=TRANSFORMER) as conn:
        assert conn.execute("SELECT count(*) FROM raw.submission").fetchone()[0] > 0
    with connect(settings, role=TRANSFORMER) as conn, pytest.raises(Exception, match="permission denied"):
        conn.execute("SELECT * FROM raw.submission_contact")


def test_feedback_report_names_rule_row_column_and_is_formula_safe(settings, ingested):
    _, by_case, _ = ingested
    sid = next(s[0] for s in by_case["fail", "C03_formula_text"] if s[2] == "JCPT-2")
    report = next((settings.reports_dir / "feedback").glob(f"{sid}_*.csv"))
    with report.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    c03 = [r for r in rows if r["rule_id"] == "C03"]
    assert c03 and c03[0]["sheet"] == "JCPT-2" and c03[0]["row"] == "9" and c03[0]["column"] == "6"
    assert c03[0]["value"].startswith("'=")
    assert "第 9 行" in c03[0]["message_zh"] and "Row 9" in c03[0]["message_en"]
    html = report.with_suffix(".html").read_text(encoding="utf-8")
    assert "C03" in html and "<script" not in html
    assert (settings.docs_dir / "gx" / "index.html").exists()


def test_nothing_is_lost(settings, ingested):
    with connect(settings, role=LOADER) as conn:
        stored = conn.execute("SELECT DISTINCT archived_path FROM raw.submission").fetchall()
        receipts = conn.execute("SELECT stored_path FROM raw.receipt").fetchall()
    assert all(Path(p).exists() for (p,) in stored)
    assert all(load.stored_file(settings, p).exists() for (p,) in receipts)


def test_a_byte_identical_resend_is_a_receipt_only(settings, ingested, tmp_path):
    _, by_case, _ = ingested
    good = FIXTURES / "pass" / "good" / "150206_2017.xlsx"
    shutil.copyfile(good, tmp_path / "150206_2017_r999.xlsx")
    summary = pipeline.ingest_folder(settings, tmp_path)
    assert summary["submission_ids"] == [] and list(tmp_path.iterdir()) == []
    with connect(settings, role=LOADER) as conn:
        receipts = conn.execute("SELECT file_name FROM raw.receipt WHERE sha256 = %s ORDER BY receipt_id",
                                (by_case["pass", "good"][0][8],)).fetchall()
    assert [r[0] for r in receipts][-1] == "150206_2017_r999.xlsx" and len(receipts) == 2


def test_reprocessing_twice_changes_nothing_and_dry_run_changes_nothing(settings, ingested):
    def snapshot():
        with connect(settings, role=LOADER) as conn:
            return (conn.execute("SELECT submission_id, outcome, failed_rules, soft_flags, archived_path "
                                 "FROM raw.submission ORDER BY 1").fetchall(),
                    conn.execute("SELECT * FROM raw.jcpt_township_rows ORDER BY 1, 2").fetchall())

    before = snapshot()
    dry = pipeline.reprocess_year(settings, 2017, dry_run=True)
    assert dry["changed"] == [] and snapshot() == before
    first = pipeline.reprocess_year(settings, 2017, counties=["150206"])
    assert first["changed"] == [] and first["submissions"] > 0
    assert snapshot() == before
    assert pipeline.reprocess_year(settings, 2030)["submissions"] == 0
