"""The benchmark harness: naive peer, floors and measurement on real workbooks and a real PostgreSQL.

The parts that measure other stages ((a) ingest, (d) dbt, (e) Airflow) run once their modules exist.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
import xlsxwriter

from hrss_tools import bench, bench_naive
from hrss_warehouse.db import connect
from hrss_warehouse.spec import load_spec

COUNTY = "640104"
YEAR = 2017


def _unit_values(form: str, version: str, code: str, index: int) -> list[object]:
    """One plausible unit row in template order: code, name, then numbers typed by the spec."""
    row: list[object] = []
    for column in load_spec().form(form, version).columns:
        if column.type == "code":
            row.append(code)
        elif column.type == "text":
            row.append(f"单位{index}")
        elif column.type == "enum":
            row.append(column.values[index % len(column.values)])
        elif column.type == "flag":
            row.append(1)
        else:
            row.append(index + 1)
    return row


def _units(form: str, county: str, count: int) -> list[str]:
    if load_spec().level_of(form) == "county":
        return [f"{county}000000"]
    if load_spec().level_of(form) == "township":
        return [f"{county}{i + 1:03d}000" for i in range(count)]
    return [f"{county}001{i + 1:03d}" for i in range(count)]


def write_workbook(folder: Path, county: str = COUNTY, year: int = YEAR, units: int = 5,
                   codes_as_numbers: bool = False) -> tuple[Path, int]:
    """A return in the official layout (header block, code row 7, 合计 row 8, units, footer)."""
    spec = load_spec()
    version = spec.version_for_year(year)
    path = folder / f"{county}_{year}.xlsx"
    book = xlsxwriter.Workbook(path)
    total_units = 0
    for form in spec.form_codes:
        definition = spec.form(form, version.name)
        sheet = book.add_worksheet(form)
        sheet.write(0, 0, definition.title)
        sheet.write(1, 0, f"表号：{form}表   有效期至：{version.valid_until_label}")
        sheet.write(2, 0, f"填报单位：测试县（区划代码：{county}）   报告期：{year}年")
        sheet.write(3, 0, version.unit_line)
        for col, column in enumerate(definition.columns):
            sheet.write(4, col, column.zh)
            code = column.code
            sheet.write(6, col, int(code) if codes_as_numbers and code.isdigit() else code)
        if definition.has_total_row:
            sheet.write(7, 1, "合计")
        unit_codes = _units(form, county, units)
        for i, unit in enumerate(unit_codes):
            sheet.write_row(8 + i, 0, _unit_values(form, version.name, unit, i))
        footer = "单位负责人：张三 统计负责人：李四 填表人：王五 联系电话：13800000000"
        sheet.write(8 + len(unit_codes) + 1, 0, footer)
        total_units += len(unit_codes)
    book.close()
    return path, total_units


def write_csv(folder: Path, form: str = "JCPT-3", county: str = COUNTY, year: int = YEAR, units: int = 4,
              encoding: str = "gb18030") -> tuple[Path, int]:
    spec = load_spec()
    version = spec.version_for_year(year).name
    path = folder / f"{county}_{year}_{form}.csv"
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(spec.form(form, version).codes)
        for i, unit in enumerate(_units(form, county, units)):
            writer.writerow(_unit_values(form, version, unit, i))
    return path, units


@pytest.fixture
def returns(tmp_path: Path) -> tuple[list[Path], int]:
    first, n1 = write_workbook(tmp_path, units=6)
    second, n2 = write_workbook(tmp_path, county="640105", units=3, codes_as_numbers=True)
    export, n3 = write_csv(tmp_path, county="640106")
    return [first, second, export], n1 + n2 + n3


def test_naive_peer_loads_every_unit_row(settings, returns):
    files, expected = returns
    bench_naive.reset_schema(settings)
    try:
        result = bench_naive.naive_load(settings, files)
        assert result == {"rows": expected, "files": 3, "failed_files": 0, "failed": []}
        with connect(settings) as conn:
            counts = dict(conn.execute(
                "SELECT 'village', count(*) FROM bench_naive.jcpt_village_rows UNION ALL "
                "SELECT 'county', count(*) FROM bench_naive.jcpt_county_rows").fetchall())
            codes = [r[0] for r in conn.execute(
                "SELECT region_code FROM bench_naive.jcpt_township_rows ORDER BY 1").fetchall()]
        assert counts == {"village": 6 + 3 + 4, "county": 2}
        # 12-digit codes stay text: no float round trip through pandas
        assert codes[0] == f"{COUNTY}001000" and all(len(c) == 12 and c.isdigit() for c in codes)
    finally:
        bench_naive.reset_schema(settings, create=False)
    with connect(settings) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'bench_naive'").fetchone() is None


def test_naive_peer_skips_a_file_it_cannot_read(settings, returns, tmp_path):
    files, expected = returns
    broken = tmp_path / "640107_2017.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    bench_naive.reset_schema(settings)
    try:
        result = bench_naive.naive_load(settings, [*files, broken])
    finally:
        bench_naive.reset_schema(settings, create=False)
    assert result["rows"] == expected and result["failed_files"] == 1


def test_read_floor_reads_every_unit_row_on_two_processes(returns, tmp_path):
    files, expected = returns
    broken = tmp_path / "640107_2017.xlsx"
    broken.write_bytes(b"")
    result = bench.read_floor([str(f) for f in [*files, broken]], workers=2)
    assert result == {"rows": expected, "unreadable_files": 1, "files": 4, "workers": 2}


def test_load_floor_copies_the_canonical_rows(settings, tmp_path):
    spec = load_spec()
    with connect(settings) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_src CASCADE")
        conn.execute("CREATE SCHEMA bench_src")
        for form in spec.form_codes:
            conn.execute(spec.raw_table_ddl(form, schema="bench_src"))
        names = [c.name for c in spec.canonical_columns("JCPT-3")]
        with conn.cursor().copy(f"COPY bench_src.jcpt_village_rows (submission_id, source_row, "
                                f"{', '.join(names)}) FROM STDIN") as copy:
            for i in range(250):
                values = _unit_values("JCPT-3", "v2017", f"{COUNTY}001{i + 1:03d}", i)
                by_name = dict(zip(spec.form("JCPT-3", "v2017").names, values, strict=True))
                copy.write_row([1, 9 + i, *(by_name.get(n) for n in names)])
        conn.commit()
    try:
        csvs = bench.export_canonical(settings, tmp_path / "canonical", schema="bench_src")
        assert {form: rows for form, (_p, rows) in csvs.items()} == {"JCPT-1": 0, "JCPT-2": 0, "JCPT-3": 250}
        bench.prepare_floor_tables(settings)
        assert bench.load_floor(settings, csvs) == {"rows": 250, "tables": 3}
        with connect(settings) as conn:
            same = conn.execute("SELECT count(*) FROM (SELECT * FROM bench_floor.jcpt_village_rows "
                                "EXCEPT SELECT * FROM bench_src.jcpt_village_rows) d").fetchone()[0]
            assert same == 0
            assert conn.execute("SELECT count(*) FROM bench_floor.jcpt_village_rows").fetchone()[0] == 250
    finally:
        bench.prepare_floor_tables(settings, create=False)
        with connect(settings) as conn:
            conn.execute("DROP SCHEMA bench_src CASCADE")
            conn.commit()


def test_measure_runs_each_part_in_its_own_process(settings, returns, tmp_path):
    files, expected = returns
    logs = tmp_path / "logs"
    read = bench.measure(settings, "read_floor", {"files": [str(f) for f in files]}, "read", logs)
    naive = bench.measure(settings, "naive", {"files": [str(f) for f in files]}, "naive", logs)
    assert read.rows == naive.rows == expected
    assert 0 < read.seconds < 30 and 0 < naive.seconds < 60
    # a Python process with pandas and SQLAlchemy loaded takes tens of MiB; far less than a GiB
    assert 30 * 1024**2 < naive.peak_rss < 1024**3
    assert read.peak_rss > 10 * 1024**2


def test_a_failing_part_names_its_log(settings, tmp_path):
    with pytest.raises(bench.BenchError, match=r"bench-load_floor\.log"):
        bench.measure(settings, "load_floor", {"csvs": {"JCPT-3": [str(tmp_path / "missing.csv"), 1]}},
                      "load", tmp_path)


def _m(key: str, rows: int, seconds: float, rss_mib: int = 100, **detail) -> bench.Measurement:
    return bench.Measurement(key, key, rows, seconds, rss_mib * 1024**2, detail)


def test_targets_are_judged_from_the_figures():
    found = {m.key: m for m in [
        _m("ingest", 10_000, 2.0, 900, copy_seconds=0.5, copies=10), _m("naive", 5_000, 12.0),
        _m("read_floor", 10_000, 0.5), _m("load_floor", 10_000, 0.2),
        _m("dbt_full", 0, 50.0), _m("dbt_incremental", 0, 6.0), _m("reprocess", 10_000, 3.0)]}
    targets = {t.name: t for t in bench.evaluate(found, "reprocess completes")}
    assert targets["(a) ≥ 15× faster than (b) per row"].met is False  # 12× per row (subset extrapolated)
    assert targets["(a) within 2× of read floor + load floor"].met is False  # 2.0 vs 0.7 s: 2.9×
    assert targets["load part of (a) within 1.5× of load floor"].met is False  # 0.5 vs 0.2 s
    assert targets["incremental dbt ≤ 10% of full"].met is False  # 12%
    assert targets["peak RSS of (a) ≤ 1.5 GB"].met is True
    # a small landing (the quick run): (a) need only be no slower than (b)
    quick = {t.name: t for t in bench.evaluate(found, "reprocess completes", quick=True)}
    assert quick["(a) no slower than (b) per row"].met is True
    assert targets["reprocess completes"].met is True
    report = bench.render("t", list(found.values()), list(targets.values()), bench.machine(), ["n"])
    assert "| ingest | 10,000 | 2.00 | 5,000 |  | 900 MiB | 1.00× |" in report
    assert "| naive | 5,000 | 12.00 | 417 |  | 100 MiB | 12× |" in report
    assert "- cores: " in report and "not met" in report


def test_incremental_dbt_is_met_only_when_every_warehouse_built_meets_it():
    """Issue 16: incremental ≤ 10 % of full on the one-year warehouse too, not only on the decade's."""
    def judged(one_year_s: float) -> bench.Target:
        found = {m.key: m for m in [_m("dbt_full", 0, 50.0), _m("dbt_incremental", 0, one_year_s),
                                    _m("dbt_full_decade", 0, 400.0), _m("dbt_incremental_decade", 0, 8.0)]}
        return next(t for t in bench.evaluate(found, "r") if t.name == "incremental dbt ≤ 10% of full")

    assert judged(6.0).met is False
    assert judged(6.0).figures == "one year: 12% (6.0 s vs 50.0 s); ten years: 2% (8.0 s vs 400.0 s)"
    assert judged(5.0).met is True


def test_a_target_not_met_says_what_holds_it_back():
    """Issue 16: each target met, or printed with the figures of this run that say where the time goes."""
    found = {m.key: m for m in [
        _m("ingest", 10_000, 20.0, 900, copy_seconds=2.0, copies=8, check_workers=2,
           phases={"register": 3.0, "warm_up": 4.0, "reports": 1.5}),
        _m("naive", 10_000, 10.0), _m("read_floor", 10_000, 0.5), _m("load_floor", 10_000, 0.2),
        _m("dbt_full", 0, 50.0),
        _m("dbt_incremental", 0, 20.0, nodes=127, node_seconds=31.5,
           slowest=[["mart_rollup_figures", 4.1], ["mart_revisions", 3.9]]),
        _m("county", 7, 9.25, fixed_seconds={"import great_expectations": 3.91})]}
    targets = {t.name: t for t in bench.evaluate(found, "r", quick=True)}
    county = targets["one county's file through `hrss ingest` ≤ 3 s"]
    assert county.met is False and county.figures == "9.25 s wall"
    assert "import great_expectations 3.91 s" in county.holds
    ingest = targets["(a) no slower than (b) per row"]
    assert ingest.met is False
    assert ingest.holds.startswith("serial phases: registering the files 3.0 s, starting GX and reading the "
                                   "registry before the check processes fork 4.0 s, the feedback reports "
                                   "and Data Docs 1.5 s; the checks and loads between them 11.5 s on 2")
    assert "mart_rollup_figures 4.1 s, mart_revisions 3.9 s" in targets["incremental dbt ≤ 10% of full"].holds
    assert "250 ms a COPY block" in targets["load part of (a) within 1.5× of load floor"].holds
    report = bench.render("t", list(found.values()), list(targets.values()), bench.machine(), [])
    assert "## What holds back the targets not met" in report
    assert f"- **{county.name}**: {county.holds}" in report
    found["ingest"] = _m("ingest", 10_000, 20.0, 1_700, peak_tree_mib=[700, 500, 500])
    rss = next(t for t in bench.evaluate(found, "r") if t.name == "peak RSS of (a) ≤ 1.5 GB")
    assert rss.met is False
    assert rss.holds == ("at the tree's peak (1,700 MiB of PSS) the main process held 700 MiB and the 2 "
                         "processes under it 500, 500 MiB")
    # a target met has nothing to explain
    found["county"] = _m("county", 7, 2.5, fixed_seconds={})
    assert next(t for t in bench.evaluate(found, "r") if t.name == county.name).met is True


def test_targets_without_measurements_say_so():
    targets = bench.evaluate({}, "national 10-year reprocess completes")
    assert all(t.met is None for t in targets)


def _require(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not written yet: the (a)/(d)/(e) rows need it")


def _quick_run(settings, tmp_path: Path, parts: set[str]) -> str:
    _require("hrss_tools.generate", "hrss_warehouse.pipeline")
    outcome = bench.run(settings, bench.Plan.make(quick=True, parts=parts), out=tmp_path / "bench.md",
                        log=lambda _msg: None)
    assert outcome.failures == []
    assert (tmp_path / "bench.md").read_text(encoding="utf-8") == outcome.report
    return outcome.report


@pytest.mark.soak
def test_quick_bench_measures_ingest_floors_county_reprocess_and_dag_parse(settings, tmp_path):
    """(a) with its manifest check, the load floor, one county's `hrss ingest`, the reprocess and the DAG
    files' parse time.

    `hrss run` (the other (e) row) is left to `make bench`: it repeats the ingest and build through Airflow.
    """
    _require("hrss_warehouse.airflow.orchestration")
    report = _quick_run(settings, tmp_path, {"ingest", "load_floor", "county", "reprocess", "dag_parse"})
    for label in ("(a) ingest", "(c) load floor", "one county's file through `hrss ingest folder`",
                  "import great_expectations alone", "reprocess of 2017", "(e) DAG files parsed",
                  "jcpt_nightly.py"):
        assert label in report
    assert "quarantined files match the manifest" in report
    assert "| reprocess completes (quick: one year) | met |" in report


@pytest.mark.soak
def test_quick_bench_measures_dbt_full_and_incremental(settings, tmp_path):
    _require("hrss_warehouse.stages.transform")
    report = _quick_run(settings, tmp_path, {"ingest", "dbt"})
    assert "(d) dbt build, full" in report and "(d) dbt build, incremental" in report
    assert "| incremental dbt ≤ 10% of full | not measured |" not in report


def test_a_part_that_overruns_is_stopped_with_its_children(settings, tmp_path):
    # a read of a FIFO nobody writes to blocks forever: the stand-in for a hung dbt or COPY
    import os
    import time

    fifo = tmp_path / "640104_2017_JCPT-3.csv"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(bench.BenchError, match="failed"):
        bench.measure(settings, "read_floor", {"files": [str(fifo)]}, "read", tmp_path, timeout_s=2)
    assert time.monotonic() - started < 30
    assert "stopped after 2 s" in (tmp_path / "bench-read_floor.log").read_text()


def test_the_airflow_targets_are_judged_from_their_parts() -> None:
    """(e) ≤ 1.3× its parts, (f) ≤ 1.5× its parts and ≤ 30 s, each DAG file < 0.5 s CPU (issue 16)."""
    def m(key: str, seconds: float, **detail) -> bench.Measurement:
        return bench.Measurement(key, key, 0, seconds, 0, detail)

    files = {"jcpt_nightly.py": {"seconds": 1.2, "cpu_seconds": 0.41},
             "reference_divisions.py": {"seconds": 0.3, "cpu_seconds": 0.12}}
    met = {t.name.split()[0]: t.met for t in bench.airflow_targets({
        "airflow_run": m("airflow_run", 130.0), "airflow_parts": m("airflow_parts", 100.0),
        "nightly_run": m("nightly_run", 29.0), "nightly_parts": m("nightly_parts", 20.0),
        "dag_parse": m("dag_parse", 2.0, files=files)})}
    assert met == {"(e)": True, "(f)": True, "each": True}
    files["jcpt_nightly.py"]["cpu_seconds"] = 0.5
    targets = bench.airflow_targets({
        "airflow_run": m("airflow_run", 131.0), "airflow_parts": m("airflow_parts", 100.0),
        "nightly_run": m("nightly_run", 31.0), "nightly_parts": m("nightly_parts", 30.0),
        "dag_parse": m("dag_parse", 2.0, files=files)})
    assert [t.met for t in targets] == [False, False, False]
    assert "1.31× (131.0 s vs 100.0 s)" in targets[0].figures
    assert "jcpt_nightly.py 0.50 s CPU (1.20 s wall)" in targets[2].figures
    assert [t.met for t in bench.airflow_targets({})] == [None, None, None]
