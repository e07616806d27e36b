"""The returns generator: layout per forms.yaml, encodings, determinism, manifest, faults, calibration.

Every check re-reads the written files with python-calamine or the csv module (a deliberately
simple reader, not the ingest parser) and never looks at the generator's own numbers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from hrss_tools.calibration import published_figures
from hrss_tools.generate import generate, manifest_path
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import reference

SPEC = load_spec()
UNFULL = str.maketrans("０１２３４５６７８９．，－", "0123456789.,-")
CODE12 = re.compile(r"^\d{12}$")
FILE_NAME = re.compile(r"^(\d{6})_(\d{4})(?:_(JCPT-\d))?(?:_r(\d+))?\.(xlsx|csv)$")


# -- a simple independent reader ------------------------------------------------------------------


def number(cell):
    """A cell as a number: the legal variants of README "Values as they occur"; blank → None."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, (int, float)):
        return cell
    text = str(cell).strip().translate(UNFULL).replace(",", "")
    if text in ("是", "否"):
        return 1 if text == "是" else 0
    return float(text) if text else None


def code_text(cell) -> str:
    return str(int(cell)) if isinstance(cell, float) else str(cell).strip()


def sheet_rows(path: Path, sheet: str) -> list[list]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def units_from_rows(rows: list[list], version: str, form: str, codes: list[str]) -> list[dict]:
    """Unit rows (found by the 12-digit code in column 甲) as {canonical name: value}."""
    columns = {c.code: c for c in SPEC.form(form, version).columns}
    out = []
    for row in rows:
        if not row or not CODE12.match(str(row[0]).strip()):
            continue
        unit = {}
        for code, cell in zip(codes, row, strict=False):
            column = columns[code]
            unit[column.name] = str(cell).strip() if not column.is_numeric else number(cell)
        on = unit.get("has_platform")
        for column in columns.values():  # without a platform a blank means 0 (an enum: none)
            if (
                column.is_numeric
                and column.type != "enum"
                and unit.get(column.name) is None
                and on == 0
                and not column.blank_stays_null
            ):
                unit[column.name] = 0
        out.append(unit)
    return out


def read_xlsx(path: Path, version: str) -> dict[str, list[dict]]:
    book = CalamineWorkbook.from_path(str(path))
    forms = {}
    for form in SPEC.form_codes:
        rows = book.get_sheet_by_name(form).to_python()
        codes = [code_text(c) for c in rows[6] if c != ""]
        forms[form] = units_from_rows(rows, version, form, codes)
    return forms


def decode_csv(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("neither UTF-8 nor GB18030")


def read_csv(path: Path, version: str, form: str) -> list[dict]:
    rows = list(csv.reader(io.StringIO(decode_csv(path.read_bytes()))))
    return units_from_rows(rows[1:], version, form, [c.strip() for c in rows[0]])


def in_force(folder: Path, manifest: dict, year: int) -> dict[tuple[str, str], list[dict]]:
    """(county, form) → unit rows of the accepted submission in force: highest revision, then latest."""
    best: dict[tuple[str, str], tuple] = {}
    for entry in manifest["files"]:
        if entry["year"] != year or entry["outcome"] != "accepted":
            continue
        for form in entry["forms"]:
            key = (entry["county"], form)
            rank = (entry["revision"], entry["mtime"])
            if key not in best or rank > best[key][0]:
                best[key] = (rank, entry)
    out = {}
    cache: dict[str, dict] = {}
    for (county, form), (_, entry) in best.items():
        path = folder / entry["file"]
        if entry["format"] == "xlsx":
            if entry["file"] not in cache:
                cache[entry["file"]] = read_xlsx(path, entry["version"])
            out[(county, form)] = cache[entry["file"]][form]
        else:
            out[(county, form)] = read_csv(path, entry["version"], form)
    return out


# -- an independent check of the hard content rules on read-back rows --------------------------------


def content_violations(units: dict[str, list[dict]], county: str, version: str) -> set[str]:
    found = set()
    county_rows = units.get("JCPT-1")
    if county_rows is not None and (
        len(county_rows) != 1 or county_rows[0]["region_code"] != county + "000000"
    ):
        found.add("C04")
    for form, rows in units.items():
        codes = [r["region_code"] for r in rows]
        if len(codes) != len(set(codes)):
            found.add("C02")
        for r in rows:
            g = r.get
            if not CODE12.match(r["region_code"]) or r["region_code"][:6] != county:
                found.add("C01")
            for column in SPEC.form(form, version).numeric_columns:
                v = g(column.name)
                bad = v is not None and (
                    v < 0
                    or (column.type in ("flag", "count") and v != int(v))
                    or (column.type == "flag" and v not in (0, 1))
                    or (column.type == "enum" and int(v) not in column.values)
                )
                if bad:
                    found.add("C03")
            if version == "v2017":
                parts = (
                    ("staff_fulltime", "staff_parttime")
                    if form == "JCPT-3"
                    else ("staff_establishment", "staff_welfare", "staff_other")
                )
                if g("staff_total") != sum(g(p) for p in parts):
                    found.add("C05")
                if form == "JCPT-3" and g("coordinators") > g("staff_total"):
                    found.add("C05")
                sources = ("funding_central", "funding_provincial", "funding_municipal", "funding_county")
                if abs(g("funding_total") - sum(g(s) for s in sources)) > 0.01:
                    found.add("C06")
            elif g("funding_central") is not None and g("funding_central") > g("funding_total"):
                found.add("C06")
            if g("has_platform") == 0 and (
                g("standardized", 0) or g("staff_total") or g("service_sites", 0) or g("platform_mode")
            ):
                found.add("C07")
            for limited in ("staff_trained", "staff_certified") + (
                ("staff_establishment",) if version == "v2014" else ()
            ):
                if g(limited) is not None and g(limited) > g("staff_total"):
                    found.add("C08")
            if (
                form == "JCPT-2"
                and g("has_platform") == 1
                and (not g("service_sites") or (version == "v2017" and g("platform_mode") not in (1, 2)))
            ):
                found.add("C10")
    return found


def total_row_ok(rows: list[list], form: str, version: str) -> bool:
    codes = [code_text(c) for c in rows[6] if c != ""]
    units = [r for r in rows if r and CODE12.match(str(r[0]).strip())]
    columns = {c.code: c for c in SPEC.form(form, version).columns}
    for i, code in enumerate(codes):
        column = columns[code]
        if not code.isdigit():  # README row 8: 甲 and 丙 blank, 合计 in 乙
            if code != "乙" and i < len(rows[7]) and rows[7][i] not in ("", None):
                return False
            continue
        total = sum(number(r[i]) or 0 for r in units)
        tolerance = 0.01 * len(units) if column.type in ("money", "area") else 1e-9
        if abs(number(rows[7][i]) - total) > tolerance:
            return False
    return rows[7][1] == "合计"


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chongqing(tmp_path_factory) -> tuple[Path, dict]:
    """Chongqing 2016 (v2014) and 2017 (v2017) with many faulty revisions."""
    folder = tmp_path_factory.mktemp("cq") / "landing"
    generate(folder, ["50"], [2016, 2017], bad_share=0.35, seed=7, progress=False)
    return folder, json.loads(manifest_path(folder).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def seed_in_force(seed_2017) -> dict[tuple[str, str], list[dict]]:
    folder, manifest, _ = seed_2017
    return in_force(folder, manifest, 2017)


@pytest.fixture(scope="module")
def seed_2017(tmp_path_factory) -> tuple[Path, dict, float]:
    folder = tmp_path_factory.mktemp("seed") / "landing"
    started = time.perf_counter()
    generate(folder, None, [2017], bad_share=0.02, seed=0, progress=False)
    seconds = time.perf_counter() - started
    return folder, json.loads(manifest_path(folder).read_text(encoding="utf-8")), seconds


# -- tests ---------------------------------------------------------------------------------------------


def test_manifest_sits_beside_the_folder(chongqing):
    folder, manifest = chongqing
    assert manifest_path(folder) == folder.parent / "landing.manifest.json"
    assert not list(folder.glob("*.json"))
    on_disk = {p.name for p in folder.iterdir()}
    assert on_disk == {e["file"] for e in manifest["files"]}
    for entry in manifest["files"]:
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_workbook_layout_follows_the_spec(chongqing):
    folder, manifest = chongqing
    for year, version in ((2016, "v2014"), (2017, "v2017")):
        entry = next(
            e
            for e in manifest["files"]
            if e["year"] == year and e["format"] == "xlsx" and e["kind"] == "return"
        )
        path = folder / entry["file"]
        assert CalamineWorkbook.from_path(str(path)).sheet_names == list(SPEC.form_codes)
        for form in SPEC.form_codes:
            fv = SPEC.form(form, version)
            rows = sheet_rows(path, form)
            assert rows[0][0] == fv.title
            assert (
                rows[1][0].startswith(f"表号：{form}表")
                and f"有效期至：{SPEC.versions[version].valid_until_label}" in rows[1][0]
            )
            assert re.fullmatch(
                rf"填报单位：.+（区划代码：{entry['county']}）\s+报告期：{year}年", rows[2][0]
            )
            assert rows[3][0] == SPEC.versions[version].unit_line
            assert ("万元" in rows[3][0]) == (version == "v2017")
            assert [code_text(c) for c in rows[6] if c != ""] == list(fv.codes)
            grouped = [c for c in fv.columns if c.group]
            assert SPEC.groups[grouped[0].group] in rows[4] and grouped[0].zh in rows[5]
            assert all(rows[4][i] == c.zh for i, c in enumerate(fv.columns) if not c.group)
            if fv.has_total_row:
                assert total_row_ok(rows, form, version)
            else:
                assert all(c == "" for c in rows[7])
            assert CODE12.match(rows[8][0])
            assert rows[-2][0] == "" and re.match(
                r"单位负责人：.+统计负责人：.+填表人：.+联系电话：[\d-]+\s+报出日期：\d{4}年\d{1,2}月\d{1,2}日$",
                rows[-1][0],
            )
            units = [r for r in rows if r and CODE12.match(str(r[0]))]
            registry = {"JCPT-1": 1}
            if form != "JCPT-1":
                registry[form] = len(reference.units_of_county(year, entry["county"], SPEC.level_of(form)))
            assert len(units) == registry[form]


def test_csv_exports_decode_in_both_encodings(chongqing):
    folder, manifest = chongqing
    seen = set()
    for entry in manifest["files"]:
        if entry["format"] != "csv" or entry["kind"] != "return":
            continue
        data = (folder / entry["file"]).read_bytes()
        assert data.startswith(b"\xef\xbb\xbf") == (entry["encoding"] == "utf-8-sig")
        text = data.decode(entry["encoding"])
        header = next(csv.reader(io.StringIO(text)))
        assert header == list(SPEC.form(entry["forms"][0], entry["version"]).codes)
        assert decode_csv(data) == text.removeprefix("\ufeff")
        seen.add(entry["encoding"])
    assert {"utf-8-sig", "gb18030"} <= seen


def test_same_seed_same_bytes(tmp_path):
    runs = []
    for name in ("a", "b"):
        folder = tmp_path / name / "landing"
        generate(folder, ["64"], [2014], bad_share=0.1, seed=3, progress=False)
        runs.append(
            {
                p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
                for p in folder.iterdir()
            }
        )
        runs[-1]["manifest"] = manifest_path(folder).read_bytes()
    assert runs[0] == runs[1]
    other = tmp_path / "c" / "landing"
    generate(other, ["64"], [2014], bad_share=0.1, seed=4, progress=False)
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in other.iterdir()} != {
        k: v[0] for k, v in runs[0].items() if k != "manifest"
    }


def test_accepted_returns_pass_every_hard_rule_and_late_files_are_late(chongqing):
    folder, manifest = chongqing
    for entry in manifest["files"]:
        mtime = (folder / entry["file"]).stat().st_mtime
        deadline = datetime(
            entry["year"] + 1, 3, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8))
        ).timestamp()
        assert (mtime > deadline) == entry["late"], entry["file"]
        if entry["outcome"] != "accepted":
            continue
        assert FILE_NAME.match(entry["file"])
        if entry["format"] == "xlsx":
            units = read_xlsx(folder / entry["file"], entry["version"])
            for form in ("JCPT-2", "JCPT-3"):
                assert total_row_ok(sheet_rows(folder / entry["file"], form), form, entry["version"])
            assert content_violations(units, entry["county"], entry["version"]) == set(), entry["file"]
    assert any(e["late"] for e in manifest["files"]) or len(manifest["counties"]) < 60


def _check_structure_fault(rule: str, path: Path, entry: dict) -> bool:
    """Whether the file shows the structural fault `rule` (S01-S08)."""
    if rule == "S01":
        if entry["format"] == "csv":
            with pytest.raises(ValueError):
                decode_csv(path.read_bytes())
            return True
        with pytest.raises(Exception):  # noqa: B017 - calamine raises its own error types
            CalamineWorkbook.from_path(str(path))
        return True
    if rule == "S02":
        return FILE_NAME.match(path.name) is None
    if rule == "S03":
        return "JCPT-3" not in CalamineWorkbook.from_path(str(path)).sheet_names
    if rule == "S04":
        if entry["format"] == "csv":
            header = next(csv.reader(io.StringIO(decode_csv(path.read_bytes()))))
        else:
            header = [code_text(c) for c in sheet_rows(path, "JCPT-2")[6] if c != ""]
        return header != list(
            SPEC.form(entry["forms"][0] if entry["format"] == "csv" else "JCPT-2", entry["version"]).codes
        )
    if rule == "S05":
        line = sheet_rows(path, "JCPT-1")[2][0]
        return f"报告期：{entry['year']}年" not in line and entry["county"] in line
    if rule == "S06":
        if entry["format"] == "csv":
            return len(decode_csv(path.read_bytes()).splitlines()) - 1 > 20_000
        return sum(1 for r in sheet_rows(path, "JCPT-3") if r and CODE12.match(str(r[0]))) > 20_000
    if rule == "S07":
        return entry["county"] not in set(reference.reporting_counties(entry["year"])["county_code"])
    if rule == "S08":
        line = sheet_rows(path, "JCPT-1")[3][0]
        return ("万元" in line) != (entry["version"] == "v2017")
    raise AssertionError(rule)


def test_bad_revisions_break_exactly_their_rule(chongqing):
    folder, manifest = chongqing
    bad = [e for e in manifest["files"] if e["outcome"] == "quarantined"]
    rules = {e["hard_rules"][0] for e in bad}
    assert len(rules) >= 12, rules  # the cycle reaches most hard rules even in one small province
    for entry in bad:
        (rule,) = entry["hard_rules"]
        path = folder / entry["file"]
        if rule.startswith("S"):
            assert _check_structure_fault(rule, path, entry), entry["file"]
            continue
        if entry["format"] == "xlsx":
            units = read_xlsx(path, entry["version"])
            totals_ok = all(
                total_row_ok(sheet_rows(path, f), f, entry["version"]) for f in ("JCPT-2", "JCPT-3")
            )
            found = content_violations(units, entry["county"], entry["version"]) | (
                set() if totals_ok else {"C09"}
            )
        else:
            # a CSV revision holds one form: the others come from the county's accepted files
            form = entry["forms"][0]
            units = {
                f: rows
                for (county, f), rows in in_force(folder, manifest, entry["year"]).items()
                if county == entry["county"]
            }
            units[form] = read_csv(path, entry["version"], form)
            found = content_violations(units, entry["county"], entry["version"])
        assert found == {rule}, (entry["file"], found)


def test_soft_cases_fire_their_rule(chongqing):
    folder, manifest = chongqing
    soft = [e for e in manifest["files"] if e["soft_rules"]]
    assert {e["soft_rules"][0] for e in soft} >= {"C11", "C12", "R01", "R02"}
    for entry in soft:
        (rule,) = entry["soft_rules"]
        path = folder / entry["file"]
        forms = (
            read_xlsx(path, entry["version"])
            if entry["format"] == "xlsx"
            else {entry["forms"][0]: read_csv(path, entry["version"], entry["forms"][0])}
        )
        rows = [r for form_rows in forms.values() for r in form_rows]
        assert content_violations(forms, entry["county"], entry["version"]) == set()
        if rule == "C11":
            assert any(r["service_population"] > r["resident_population"] for r in forms["JCPT-2"])
        elif rule == "C12":
            assert any(r["staff_total"] and r["persons_served"] / r["staff_total"] > 50_000 for r in rows)
        else:
            level_form = next(iter(forms)) if entry["format"] == "csv" else "JCPT-3"
            level = SPEC.level_of(level_form)
            registry = set(reference.units_of_county(entry["year"], entry["county"], level)["code"])
            codes = {r["region_code"] for r in forms[level_form]}
            if rule == "R01":
                assert codes - registry
            else:
                if not registry - codes:  # the county had no villages: a township was left out
                    registry = set(
                        reference.units_of_county(entry["year"], entry["county"], "township")["code"]
                    )
                    codes = {r["region_code"] for r in forms["JCPT-2"]}
                assert registry - codes


# -- the calibration test ------------------------------------------------------------------------------


def _metric(metric: str, rows: list[dict]) -> float:
    def count(name: str, value: int = 1) -> int:
        return sum(1 for r in rows if r.get(name) == value)

    def total(name: str) -> float:
        return sum(r.get(name) or 0 for r in rows)

    simple = {
        "units_total": lambda: len(rows),
        "platforms_total": lambda: count("has_platform"),
        "coverage_rate": lambda: count("has_platform") / len(rows),
        "standardized_platforms": lambda: count("standardized"),
        "standardized_rate": lambda: count("standardized") / count("has_platform"),
        "dedicated_office_share": lambda: count("platform_mode") / len(rows),
        "coordinators_total": lambda: total("coordinators"),
        "served_population_share": lambda: total("service_population") / total("resident_population"),
    }
    return simple[metric]() if metric in simple else total(metric)


@pytest.mark.slow
def test_seed_provinces_reproduce_the_published_2017_figures(seed_2017, seed_in_force):
    _, manifest, seconds = seed_2017
    print(f"\nseed provinces, 2017: {len(manifest['files'])} files in {seconds:.1f} s")
    units = seed_in_force
    by_level: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for (county, form), rows in units.items():
        by_level[(county[:2], SPEC.level_of(form))] += rows
    checked = []
    for fig in published_figures():
        if fig.comparable != "yes" or fig.as_of_year != 2017:
            continue
        levels = ("township", "village") if fig.level == "township_and_village" else (fig.level,)
        rows = [r for level in levels for r in by_level[(fig.province_code[:2], level)]]
        value = _metric(fig.metric, rows)
        target = fig.base_value
        if fig.qualifier == "at_least":
            ok = value >= target
        else:
            ok = abs(value - target) <= (0.005 if fig.qualifier == "exact" else 0.02) * target
        checked.append((fig.fact_id, round(value, 4), target, ok))
    assert len(checked) == sum(
        1 for f in published_figures() if f.comparable == "yes" and f.as_of_year == 2017
    )
    assert all(ok for *_, ok in checked), [c for c in checked if not c[-1]]


@pytest.mark.slow
def test_seed_returns_cover_every_registry_unit(seed_2017, seed_in_force):
    _, manifest, _ = seed_2017
    units = seed_in_force
    counties = reference.reporting_counties(2017)
    seed_counties = set(
        counties[counties["province_code"].str[:2].isin(manifest["provinces"])]["county_code"]
    )
    assert {county for county, _ in units} == seed_counties
    county = next(c["county"] for c in manifest["counties"] if not c["soft_rule"] and not c["bad_rule"])
    codes = {r["region_code"] for r in units[(county, "JCPT-3")]}
    assert codes == set(reference.units_of_county(2017, county, "village")["code"])


@pytest.mark.slow
def test_seed_returns_raise_no_soft_flag_by_accident(seed_2017, seed_in_force):
    _, manifest, _ = seed_2017
    soft_counties = {c["county"] for c in manifest["counties"] if c["soft_rule"]}
    for (county, _form), rows in seed_in_force.items():
        if county in soft_counties:
            continue
        for r in rows:
            if r.get("service_population") is not None:
                assert r["service_population"] <= r["resident_population"], (county, r["region_code"])
            if r.get("staff_total"):
                assert r["persons_served"] / r["staff_total"] <= 50_000, (county, r["region_code"])


def test_cli_writes_returns_and_names_bad_arguments(tmp_path, capsys):
    from hrss_warehouse.cli import main

    folder = tmp_path / "landing"
    assert (
        main(["generate", "--out", str(folder), "--provinces", "64", "--years", "2017", "--bad-share", "0"])
        == 0
    )
    assert "manifest" in capsys.readouterr().out
    assert manifest_path(folder).exists() and any(folder.glob("640*_2017*"))
    assert main(["generate", "--out", str(folder), "--years", "2010-2011"]) == 2
    assert "survey years must lie between 2014" in capsys.readouterr().err
    assert main(["generate", "--out", str(folder), "--provinces", "99"]) == 2
    assert "unknown province code(s) 99" in capsys.readouterr().err
