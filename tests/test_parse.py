"""Parsing: every legal variation reads to the same values; bad files are answered, never raised;
S06 limits hold (a zip bomb in a subprocess under a 1 GiB address-space limit); fuzzing."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_helpers import FIXTURES, fixture_file, make_fixtures

from hrss_warehouse.files import parse_file_name
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import parse


def _parse(path: Path, file_name: str | None = None) -> parse.ParsedFile:
    file_name = file_name or path.name
    return parse.parse_file(path, parse_file_name(file_name), file_name)


def _values(parsed: parse.ParsedFile, form: str) -> pd.DataFrame:
    pf = parsed.forms[form]
    fv = load_spec().form(form, pf.version)
    frame = parse.normalise(pf.cells, fv)
    return frame[list(fv.names)].sort_values("region_code").reset_index(drop=True)


@pytest.fixture(scope="module")
def good() -> parse.ParsedFile:
    return _parse(fixture_file("pass", "good"))


def test_good_workbook_reads_header_rows_and_footer(good):
    assert good.findings == []
    assert set(good.forms) == {"JCPT-1", "JCPT-2", "JCPT-3"}
    township = good.forms["JCPT-2"]
    assert township.version == "v2017" and township.total_row == 8
    assert list(township.cells["source_row"]) == [9, 10]
    assert township.contacts["preparer"] == make_fixtures.FOOTER_NAMES[2]
    assert township.contacts["phone"] == make_fixtures.FOOTER_PHONE
    values = _values(good, "JCPT-2")
    # no platform: a blank count is 0, resident population stays what it is, a blank enum stays NULL
    no_platform = values[values["region_code"] == "150206002000"].iloc[0]
    assert no_platform["staff_total"] == 0 and no_platform["resident_population"] == 15000
    assert pd.isna(no_platform["platform_mode"])


@pytest.mark.parametrize("case", [c for c in make_fixtures.PASSING if c != "good"])
def test_every_legal_variation_reads_like_the_plain_return(good, case):
    parsed = _parse(fixture_file("pass", case))
    assert parsed.findings == []
    for form in good.forms:
        pd.testing.assert_frame_equal(_values(parsed, form), _values(good, form), check_dtype=False)


@pytest.mark.parametrize(("case", "form"), [("csv_utf8", "JCPT-1"), ("csv_utf8_bom", "JCPT-2"),
                                            ("csv_gb18030", "JCPT-3")])
def test_csv_in_every_encoding_reads_like_the_workbook(good, case, form):
    parsed = _parse(fixture_file("pass", case))
    assert parsed.findings == [] and list(parsed.forms) == [form]
    pd.testing.assert_frame_equal(_values(parsed, form), _values(good, form), check_dtype=False)
    assert parsed.forms[form].cells["source_row"].iloc[0] == 2  # line numbers: the header is line 1


def test_v2014_is_recognised_and_keeps_its_unit():
    parsed = _parse(fixture_file("pass", "good_v2014"))
    assert parsed.findings == [] and {pf.version for pf in parsed.forms.values()} == {"v2014"}
    assert _values(parsed, "JCPT-1")["funding_total"].iloc[0] == 700000  # 元; load converts to 万元


@pytest.mark.parametrize(("case", "rule"), [
    ("S01_corrupt_zip", "S01"), ("S01_zero_byte", "S01"), ("S01_empty_csv", "S01"),
    ("S01_misencoded_csv", "S01"), ("S01_csv_as_xlsx", "S01"), ("S02_wrong_extension", "S02"),
    ("S02_path_traversal", "S02"), ("S02_backslash_traversal", "S02"), ("S02_sql_name", "S02"),
    ("S02_csv_without_form", "S02"), ("S02_future_year", "S02")])
def test_bad_input_is_answered_by_its_rule(case, rule):
    path = fixture_file("bad", case)
    parsed = _parse(path)
    assert [f.rule_id for f in parsed.findings] == [rule]
    assert parsed.findings[0].params  # the message's placeholders are filled


def test_too_many_rows_is_s06(tmp_path):
    over = make_fixtures.write_many_rows_csv(tmp_path / "150206_2017_JCPT-3.csv", parse.MAX_UNIT_ROWS + 1)
    assert [f.rule_id for f in _parse(over).findings] == ["S06"]
    million = make_fixtures.write_many_rows_csv(tmp_path / "m" / "150206_2017_JCPT-3.csv", 1_000_000)
    assert [f.rule_id for f in _parse(million).findings] == ["S06"]


def test_a_workbook_at_the_row_limit_is_read(tmp_path):
    at_limit = make_fixtures.write_many_rows_csv(tmp_path / "150206_2017_JCPT-3.csv", 2_000)
    parsed = _parse(at_limit)
    assert parsed.findings == [] and len(parsed.forms["JCPT-3"].cells) == 2_000


_BOMB_CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from pathlib import Path
from hrss_warehouse.stages import parse
from hrss_warehouse.files import parse_file_name
path = Path(sys.argv[1])
parsed = parse.parse_file(path, parse_file_name(path.name), path.name)
print(json.dumps([[f.rule_id, f.params] for f in parsed.findings]))
"""


def test_zip_bomb_is_refused_from_the_zip_directory_under_1gib(tmp_path):
    bomb = make_fixtures.write_zip_bomb(tmp_path / "150206_2017.xlsx")
    declared = sum(i.file_size for i in zipfile.ZipFile(bomb).infolist())
    assert declared > 1_000_000_000 and bomb.stat().st_size < 20_000_000
    done = subprocess.run([sys.executable, "-c", _BOMB_CHILD, str(bomb)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    findings = json.loads(done.stdout.strip().splitlines()[-1])
    assert [f[0] for f in findings] == ["S06"]


_CELL = st.one_of(st.none(), st.text(max_size=12), st.integers(-10**6, 10**12),
                  st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                  st.sampled_from(["是", "否", " 1,234 ", "１２", "1e5", "nan", "-0", "0.5", "=1+1"]))


def _one_column_per_type() -> list:
    fv = load_spec().form("JCPT-2", "v2017")
    return list({c.type: c for c in fv.numeric_columns}.values())


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CELL, min_size=1, max_size=30))
def test_any_cell_value_reads_as_a_value_of_its_type_or_as_bad(cells):
    for column in _one_column_per_type():
        values, bad = parse.read_numeric(pd.Series(cells, dtype=object), column)
        for value, text in zip(values, bad, strict=True):
            assert pd.isna(value) or text is None or pd.isna(text)
            if not pd.isna(value):
                assert np.isfinite(value) and value >= 0
                if column.type in ("flag", "enum", "count"):
                    assert float(value).is_integer()
                if column.type == "flag":
                    assert value in (0, 1)
                if column.type == "enum":
                    assert value in column.values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000), kind=st.sampled_from(["150206_2017.xlsx", "150206_2017_JCPT-2.csv"]))
def test_random_bytes_are_answered_never_raised(tmp_path, data, kind):
    path = tmp_path / kind
    path.write_bytes(data)
    parsed = _parse(path)
    assert parsed.findings or parsed.forms  # a rule id, or (for a lucky CSV) rows to check


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=64), offset=st.integers(0, 5000))
def test_damaged_workbooks_are_answered_never_raised(tmp_path, data, offset):
    good = (FIXTURES / "pass" / "good" / "150206_2017.xlsx").read_bytes()
    offset = offset % len(good)
    path = tmp_path / "150206_2017.xlsx"
    path.write_bytes(good[:offset] + data + good[offset + len(data):])
    parsed = _parse(path)
    assert parsed.findings or set(parsed.forms) == {"JCPT-1", "JCPT-2", "JCPT-3"}


def test_committed_fixtures_are_what_make_fixtures_writes(tmp_path):
    make_fixtures.build_all(tmp_path)
    for kind in ("pass", "fail", "bad"):
        built = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / kind).rglob("*") if p.is_file()}
        committed = {p.relative_to(FIXTURES): p.read_bytes() for p in (FIXTURES / kind).rglob("*")
                     if p.is_file()}
        assert built == committed, f"tests/fixtures/{kind} is stale: run tests/fixtures/make_fixtures.py"
