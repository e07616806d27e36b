"""Survey returns generator (`hrss generate`): county returns as a county office would send them.

One workbook (or one CSV file per form) per reporting county and survey year, laid out exactly as
survey_spec/README.md describes, with the columns of forms.yaml (read through `load_spec()`), real
units from the division registry, values from `calibration`, legal messiness in a share of cells,
corrected second revisions, late arrivals and, with `bad_share`, later bad revisions that break one
hard rule (or trigger one soft rule). `DIR.manifest.json`, written beside the output folder, records
every file with its expected outcome. Output is byte-for-byte deterministic for a seed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from hrss_tools import calibration
from hrss_warehouse.config import SEED_PROVINCES
from hrss_warehouse.spec import Column, FormVersion, Spec, Version, load_spec
from hrss_warehouse.stages import reference
from hrss_warehouse.stages.parse import MAX_UNIT_ROWS

DEFAULT_YEARS: tuple[int, ...] = (2014, 2015, 2016, 2017, 2018)
SCALES = ("seed", "national")
WORKERS = 2

# Shares of counties (drawn per county and year from the seed); docs/calibration.md lists them.
CSV_SHARE = 0.15
CSV_ENCODINGS = (("utf-8-sig", 0.45), ("gb18030", 0.40), ("utf-8", 0.15))
NUMERIC_CODE_ROW_SHARE = 0.35  # code row stores 1, 2, … as numbers
CLEAN_SHARE = 0.4  # counties whose cells are all clean
MESS_RANGE = (0.02, 0.10)  # share of messy numeric cells in the other counties
REVISED_SHARE = 0.05  # counties sending a corrected `_r2`
LATE_SHARE = 0.04  # counties whose first file arrives after 31 March
SOFT_PER_BAD = 0.5  # soft-rule revisions per hard-bad revision

ISSUER = "制定机关：省人力资源和社会保障厅   批准机关：省统计局"
CHINA = timezone(timedelta(hours=8))
SOFT_RULES = ("C11", "C12", "R01", "R02")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")  # the spec lists full-width digits

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建文辉玲红波宁鹏飞雪梅斌海燕兰凤琴云莉"


class GenerateError(RuntimeError):
    """Bad arguments or an output folder that cannot be written; the message names it."""


# -- plan --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CountyPlan:
    """What one county sends for one survey year, decided before any value is drawn."""

    county: str
    name: str
    province: str
    year: int
    fmt: str
    encoding: str | None
    numeric_codes: bool
    mess: float
    revised: bool
    late: bool
    n_townships: int
    n_villages: int
    neighbour: str
    bad_rule: str | None = None
    soft_rule: str | None = None


def _draw(key: str, seed: int, salt: str) -> float:
    """A deterministic uniform [0, 1) draw for a key (county, year, ...)."""
    digest = hashlib.blake2b(f"{seed}|{salt}|{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _choose(options: tuple[tuple[str, float], ...], u: float) -> str:
    acc = 0.0
    for value, share in options:
        acc += share
        if u < acc:
            return value
    return options[-1][0]


def _producible(rule: str, plan: CountyPlan, version: str) -> bool:
    """Whether a file of this county, format and version can break `rule` and nothing else."""
    xlsx_only = {"S03", "S05", "S08", "C09"}
    if plan.fmt == "csv" and rule in xlsx_only:
        return False
    if rule == "C05" and version != "v2017":
        return False  # v2014 has no staff parts and no coordinators
    if rule == "C11" and version != "v2017":
        return False  # v2014 has no service population
    if rule in ("C01", "C02", "R02"):
        return plan.n_townships + plan.n_villages > 0
    if rule in ("C10", "C11"):
        return plan.n_townships > 0
    return True


def _hard_cycle(spec: Spec) -> list[str]:
    return [rule.id for rule in spec.rules.values() if rule.is_hard and rule.id in _HARD_MUTATIONS]


def plan_returns(provinces: list[str], years: list[int], bad_share: float, seed: int) -> list[CountyPlan]:
    """Every county-year to generate, with its format, messiness and deliberate faults."""
    spec = load_spec()
    plans: list[CountyPlan] = []
    cycle = _hard_cycle(spec)
    hard_i = soft_i = 0
    for year in years:
        counties = reference.reporting_counties(year)
        counties = counties[counties["province_code"].str[:2].isin(provinces)].sort_values("code")
        counts = _unit_counts(year)
        version = spec.version_for_year(year).name
        year_plans = []
        everyone = sorted(reference.reporting_counties(year)["county_code"])
        after = {c: everyone[(i + 1) % len(everyone)] for i, c in enumerate(everyone)}
        for row in counties.itertuples():
            key = f"{row.county_code}|{year}"
            mess_u = _draw(key, seed, "mess")
            year_plans.append(
                CountyPlan(
                    county=row.county_code,
                    name=row.name,
                    province=row.province_code,
                    year=year,
                    fmt="csv" if _draw(key, seed, "format") < CSV_SHARE else "xlsx",
                    encoding=_choose(CSV_ENCODINGS, _draw(key, seed, "encoding")),
                    numeric_codes=_draw(key, seed, "code-row") < NUMERIC_CODE_ROW_SHARE,
                    mess=0.0
                    if mess_u < CLEAN_SHARE
                    else MESS_RANGE[0]
                    + (MESS_RANGE[1] - MESS_RANGE[0]) * (mess_u - CLEAN_SHARE) / (1 - CLEAN_SHARE),
                    revised=_draw(key, seed, "revised") < REVISED_SHARE,
                    late=_draw(key, seed, "late") < LATE_SHARE,
                    n_townships=counts.get((row.county_code, "township"), 0),
                    n_villages=counts.get((row.county_code, "village"), 0),
                    neighbour=after[row.county_code],
                )
            )
        if bad_share > 0 and year_plans:
            n_bad = max(1, round(len(year_plans) * bad_share))
            n_soft = max(1, round(n_bad * SOFT_PER_BAD))
            order = sorted(
                range(len(year_plans)), key=lambda j: _draw(f"{year_plans[j].county}|{year}", seed, "bad")
            )
            for j in sorted(order[:n_bad]):
                plan = year_plans[j]
                for _ in range(len(cycle)):
                    rule = cycle[hard_i % len(cycle)]
                    hard_i += 1
                    if _producible(rule, plan, version):
                        year_plans[j] = replace(plan, bad_rule=rule)
                        break
            for j in sorted(order[n_bad : n_bad + n_soft]):
                plan = year_plans[j]
                for _ in range(len(SOFT_RULES)):
                    rule = SOFT_RULES[soft_i % len(SOFT_RULES)]
                    soft_i += 1
                    if _producible(rule, plan, version):
                        year_plans[j] = replace(plan, soft_rule=rule)
                        break
        plans += year_plans
    return plans


def _unit_counts(year: int) -> dict[tuple[str, str], int]:
    units = reference.edition(year)
    units = units[units["level"].isin(["township", "village"])]
    return {k: int(v) for k, v in units.groupby(["county_code", "level"]).size().items()}


# -- one return ----------------------------------------------------------------------------------


Table = dict[str, np.ndarray]  # one form's units: canonical column name -> values


def _size(table: Table) -> int:
    return len(table["code"])


def _take(table: Table, index) -> Table:
    return {k: v[index] for k, v in table.items()}


def _append(table: Table, rows: Table) -> Table:
    return {k: np.concatenate([v, np.asarray(rows[k], dtype=v.dtype)]) for k, v in table.items()}


@dataclass
class Return:
    """One county's return for one year: canonical values per form, plus a file-level fault."""

    county: str
    name: str
    year: int
    version: Version
    frames: dict[str, Table]
    file_fault: str | None = None  # S01 S02 S03 S04 S05 S08 C09: done by the writer
    forms: tuple[str, ...] = ()  # forms the submission sends (a workbook: all three)


def _money_cells(values: np.ndarray, version: Version) -> list:
    # held in hundredths of 万元: v2017 writes 万元 with two decimals, v2014 whole 元.
    if version.money_unit == "yuan":
        return (values * 100).tolist()
    return [v / 100 if v % 100 else v // 100 for v in values.tolist()]


def _cells(column: Column, table: Table, version: Version) -> list:
    if column.type == "code":
        return table["code"].tolist()
    if column.type == "text":
        return table["name"].tolist()
    values = table[column.name]
    if column.type == "money":
        return _money_cells(values, version)
    if column.type == "enum":
        return [v if v else None for v in values.tolist()]
    return values.tolist()


def _messy(value, column: Column, on_platform: bool, pick: int):
    """One legal variant of a cell (README "Values as they occur in real returns")."""
    if value is None:
        return None
    text = str(value)
    if pick == 0:
        return text
    if pick == 1:
        return f"{value:,}"
    if pick == 2:
        return text.translate(FULLWIDTH)
    if pick == 3:
        return f" {text} " if isinstance(value, int) else f"{text}  "
    if pick == 4 and column.type == "flag":
        return "是" if value == 1 else "否"
    if (
        pick == 5
        and not on_platform
        and value == 0
        and not column.blank_stays_null
        and column.name != "has_platform"
    ):
        return None
    return text


def _rows(
    fv: FormVersion, table: Table, version: Version, mess: float, rng: np.random.Generator
) -> list[list]:
    columns = []
    on = table["has_platform"] == 1
    for column in fv.columns:
        cells = _cells(column, table, version)
        if mess and column.is_numeric and cells:
            chosen = np.flatnonzero(rng.random(len(cells)) < mess)
            picks = rng.integers(0, 6, len(chosen))
            for i, pick in zip(chosen.tolist(), picks.tolist(), strict=True):
                cells[i] = _messy(cells[i], column, bool(on[i]), pick)
        columns.append(cells)
    return [list(r) for r in zip(*columns, strict=True)] if _size(table) else []


def _totals(fv: FormVersion, table: Table, version: Version) -> list:
    """The total row as README row 8 has it: 合计 in 乙, 甲 and 丙 blank, sums in the columns coded 1, 2, …"""
    summed = set(fv.summed_columns)
    out: list = []
    for column in fv.columns:
        if column.type == "text":
            out.append("合计")
        elif column not in summed:
            out.append(None)
        else:
            total = int(table[column.name].sum())
            out.append(_money_cells(np.array([total]), version)[0] if column.type == "money" else total)
    return out


# -- file writers --------------------------------------------------------------------------------


def _people(plan: CountyPlan, seed: int) -> tuple[str, str, str, str]:
    names = []
    for role in ("head", "stat", "filler"):
        u = _draw(f"{plan.county}|{plan.year}|{role}", seed, "person")
        s = SURNAMES[int(u * len(SURNAMES))]
        g1 = GIVEN[int(u * 7919) % len(GIVEN)]
        g2 = GIVEN[int(u * 104729) % len(GIVEN)] if u > 0.35 else ""
        names.append(s + g1 + g2)
    u = _draw(f"{plan.county}|{plan.year}", seed, "phone")
    if u < 0.5:
        phone = f"0{plan.county[:2]}{int(u * 97) % 10}-{int(u * 1e12) % 90_000_000 + 10_000_000}"
    else:
        phone = f"1{3 + int(u * 10) % 7}{int(u * 1e13) % 900_000_000 + 100_000_000}"
    return names[0], names[1], names[2], phone


def _footer(plan: CountyPlan, seed: int, sent: datetime) -> str:
    head, stat, filler, phone = _people(plan, seed)
    day = sent.astimezone(CHINA)
    return (
        f"单位负责人：{head}   统计负责人：{stat}   填表人：{filler}   联系电话：{phone}   "
        f"报出日期：{day.year}年{day.month}月{day.day}日"
    )


def _write_xlsx(
    path: Path, ret: Return, plan: CountyPlan, spec: Spec, seed: int, sent: datetime, rng: np.random.Generator
) -> None:
    version = ret.version
    unit_line = version.unit_line
    if ret.file_fault == "S08":  # the other version's money unit
        unit_line = next(v.unit_line for v in spec.versions.values() if v.money_unit != version.money_unit)
    header_year = ret.year - 1 if ret.file_fault == "S05" else ret.year
    # Written straight to its file: constant_memory streams each row (in_memory would turn it off).
    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    wb.set_properties(
        {"title": f"{spec.survey} {ret.year}", "author": plan.name, "created": datetime(ret.year + 1, 1, 15)}
    )
    title_fmt = wb.add_format({"bold": True, "font_size": 14, "align": "center"})
    head_fmt = wb.add_format(
        {"bold": True, "align": "center", "valign": "vcenter", "text_wrap": True, "border": 1}
    )
    for form in spec.form_codes:
        fv = spec.form(form, version.name)
        columns = list(fv.columns)
        if ret.file_fault == "S04" and form == "JCPT-2":
            columns = columns[:-1]
        frame = ret.frames[form]
        rows = _rows(fv, frame, version, plan.mess, rng)
        n = len(columns)
        sheet_name = "Sheet3" if ret.file_fault == "S03" and form == "JCPT-3" else form
        ws = wb.add_worksheet(sheet_name)
        ws.set_column(0, 0, 15)
        ws.set_column(1, 1, 22)
        ws.set_column(2, n - 1, 11)
        ws.merge_range(0, 0, 0, n - 1, fv.title, title_fmt)
        ws.merge_range(1, 0, 1, n - 1, f"表号：{form}表   {ISSUER}   有效期至：{version.valid_until_label}")
        ws.merge_range(
            2, 0, 2, n - 1, f"填报单位：{ret.name}（区划代码：{ret.county}）   报告期：{header_year}年"
        )
        ws.merge_range(3, 0, 3, n - 1, unit_line)
        _write_headings(ws, columns, spec, head_fmt)
        codes = [int(c.code) if plan.numeric_codes and c.code.isdigit() else c.code for c in columns]
        ws.write_row(6, 0, codes)
        if fv.has_total_row:
            totals = _totals(fv, frame, version)[:n]
            if ret.file_fault == "C09" and form == "JCPT-2":
                i = next(i for i, c in enumerate(columns) if c.name == "has_platform")
                totals[i] += 1
            _write_row(ws, 7, totals)
        for r, row in enumerate(rows):
            _write_row(ws, 8 + r, row[:n])
        ws.write_string(8 + len(rows) + 1, 0, _footer(plan, seed, sent))
    wb.close()
    if ret.file_fault == "S01":  # a broken transfer: the zip is cut off
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])


def _write_headings(ws, columns: list[Column], spec: Spec, fmt) -> None:
    """Rows 5-6: group headings merged over their columns, other headings merged over both rows.

    In constant_memory mode a row is flushed once a later row is written, so row 5 is finished
    before row 6: the two-row merges are declared without a format (which writes nothing in row 6)
    and their first cell is rewritten with the format.
    """
    c = 0
    while c < len(columns):
        group = columns[c].group
        if group is None:
            ws.merge_range(4, c, 5, c, columns[c].zh)
            ws.write_string(4, c, columns[c].zh, fmt)
            c += 1
            continue
        end = c
        while end + 1 < len(columns) and columns[end + 1].group == group:
            end += 1
        if end > c:
            ws.merge_range(4, c, 4, end, spec.groups[group], fmt)
        else:
            ws.write_string(4, c, spec.groups[group], fmt)
        c = end + 1
    for c, column in enumerate(columns):
        if column.group is None:
            ws.write_blank(5, c, None, fmt)
        else:
            ws.write_string(5, c, column.zh, fmt)


def _write_row(ws, r: int, row: list) -> None:
    for c, value in enumerate(row):
        if value is None:
            continue
        if isinstance(value, str):
            ws.write_string(r, c, value)
        else:
            ws.write_number(r, c, value)


def _csv_cell(value) -> str:
    return "" if value is None else str(value)


def _write_csv(
    path: Path, form: str, ret: Return, plan: CountyPlan, spec: Spec, rng: np.random.Generator
) -> None:
    fv = spec.form(form, ret.version.name)
    columns = list(fv.columns)
    if ret.file_fault == "S04":
        columns = columns[:-1]
    rows = _rows(fv, ret.frames[form], ret.version, plan.mess, rng)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.code for c in columns])
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row[: len(columns)]])
    encoding = "utf-16" if ret.file_fault == "S01" else plan.encoding
    path.write_bytes(out.getvalue().encode(encoding))


# -- faults ----------------------------------------------------------------------------------------


def _first_unit_form(ret: Return) -> str:
    return "JCPT-3" if _size(ret.frames["JCPT-3"]) else "JCPT-2"


def _fault_c01(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    form = _first_unit_form(ret)
    row = _take(ret.frames[form], [0])
    row["code"] = np.array([plan.neighbour + str(row["code"][0])[6:]])  # a row keyed to the next county
    ret.frames[form] = _append(ret.frames[form], row)
    return form


def _fault_c02(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    form = _first_unit_form(ret)
    ret.frames[form] = _append(ret.frames[form], _take(ret.frames[form], [0]))
    return form


def _county_edit(ret: Return, **changes) -> str:
    table = ret.frames["JCPT-1"]
    for name, value in changes.items():
        table[name][0] = value(table) if callable(value) else value
    return "JCPT-1"


def _fault_c03(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    return _county_edit(ret, service_windows=-1)


def _fault_c04(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    ret.frames["JCPT-1"] = _take(ret.frames["JCPT-1"], slice(0, 0))
    return "JCPT-1"


def _fault_c05(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    return _county_edit(ret, staff_other=lambda t: t["staff_other"][0] + 1)


def _fault_c06(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    if ret.version.name == "v2014":
        return _county_edit(ret, funding_central=lambda t: t["funding_total"][0] + 100)
    return _county_edit(ret, funding_county=lambda t: t["funding_county"][0] + 100)


def _fault_c07(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    if ret.frames["JCPT-1"]["staff_total"][0] == 0:
        _county_edit(ret, staff_total=1, staff_other=lambda t: t["staff_other"][0] + 1)
    return _county_edit(ret, has_platform=0)


def _fault_c08(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    if ret.version.name == "v2014":
        return _county_edit(ret, staff_establishment=lambda t: t["staff_total"][0] + 1)
    return _county_edit(ret, staff_trained=lambda t: t["staff_total"][0] + 1)


def _fault_c10(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    table = ret.frames["JCPT-2"]
    on = np.flatnonzero(table["has_platform"] == 1)
    if len(on):
        table["service_sites"][on[0]] = 0
    else:  # a platform reported with nothing else: no sites, no set-up mode
        table["has_platform"][0] = 1
    return "JCPT-2"


def _unknown_codes(county: str, known: set[str], count: int, start: int) -> list[str]:
    codes, i = [], start
    while len(codes) < count:
        code = f"{county}{i // 1000:03d}{i % 1000:03d}"
        if code not in known:
            codes.append(code)
        i += 1
    return codes


def _filler(table: Table, codes: list[str], names: list[str], county: str, **values: int) -> Table:
    """Rows of unknown units without a platform: zeros except the given values."""
    n = len(codes)
    rows = {k: np.zeros(n, dtype=v.dtype) for k, v in table.items()}
    rows.update(code=np.array(codes), name=np.array(names, dtype=object), county_code=np.array([county] * n))
    for name, value in values.items():
        rows[name] = np.full(n, value)
    return rows


def _fault_s06(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    table = ret.frames["JCPT-3"]
    extra = MAX_UNIT_ROWS + 1 - _size(table)
    codes = _unknown_codes(ret.county, known, extra, 900_000)
    names = [f"未命名单位{i + 1}" for i in range(extra)]
    ret.frames["JCPT-3"] = _append(table, _filler(table, codes, names, ret.county, urban_rural_code=220))
    return "JCPT-3"


def _fault_s07(ret: Return, plan: CountyPlan, known: set[str]) -> str:
    """A county code mistyped everywhere (file name, header, rows): no such county that year."""
    counties = {c[:6] for c in known if c.endswith("000000")}
    prefix = ret.county[:4]
    fake = next(f"{prefix}{k:02d}" for k in range(99, 0, -1) if f"{prefix}{k:02d}" not in counties)
    for table in ret.frames.values():
        table["code"] = np.array([fake + str(c)[6:] for c in table["code"]], dtype=table["code"].dtype)
    ret.county = fake
    return "JCPT-1"


def _file_fault(rule: str, form: str):
    def fault(ret: Return, plan: CountyPlan, known: set[str]) -> str:
        ret.file_fault = rule
        return form

    return fault


_HARD_MUTATIONS = {
    "S01": _file_fault("S01", "JCPT-2"),
    "S02": _file_fault("S02", "JCPT-2"),
    "S03": _file_fault("S03", "JCPT-3"),
    "S04": _file_fault("S04", "JCPT-2"),
    "S05": _file_fault("S05", "JCPT-1"),
    "S06": _fault_s06,
    "S07": _fault_s07,
    "S08": _file_fault("S08", "JCPT-1"),
    "C01": _fault_c01,
    "C02": _fault_c02,
    "C03": _fault_c03,
    "C04": _fault_c04,
    "C05": _fault_c05,
    "C06": _fault_c06,
    "C07": _fault_c07,
    "C08": _fault_c08,
    "C09": _file_fault("C09", "JCPT-2"),
    "C10": _fault_c10,
}


def _soft_case(rule: str, ret: Return, known: set[str]) -> tuple[str, str]:
    """Make one soft rule fire while the calibrated sums stay (nearly) as they were: (rule, form)."""
    if rule == "C11":
        table = ret.frames["JCPT-2"]
        ok = np.flatnonzero(table["service_population"] < table["resident_population"])
        if len(ok):  # swap the two: sums over the province are unchanged
            i = ok[0]
            table["service_population"][i], table["resident_population"][i] = (
                table["resident_population"][i],
                table["service_population"][i],
            )
            return rule, "JCPT-2"
        rule = "C12"
    if rule == "C12":
        for form in ("JCPT-1", "JCPT-3", "JCPT-2"):
            table = ret.frames[form]
            staffed = np.flatnonzero(table["staff_total"] > 0)
            if len(staffed):
                table["persons_served"][staffed[0]] = int(table["staff_total"][staffed[0]]) * 50_000 + 1_000
                return rule, form
        rule = "R01"
    if rule == "R01":
        table = ret.frames["JCPT-3"]
        codes = _unknown_codes(ret.county, known, 1, 998_001)
        ret.frames["JCPT-3"] = _append(
            table, _filler(table, codes, ["新建社区居委会"], ret.county, urban_rural_code=111)
        )
        return rule, "JCPT-3"
    form = _first_unit_form(ret)  # R02: the last unit is left out
    ret.frames[form] = _take(ret.frames[form], slice(0, -1))
    return rule, form


# -- one province and year -----------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    province: str
    year: int
    plans: tuple[CountyPlan, ...]
    out_dir: str
    seed: int


def _units(year: int, province: str, counties: set[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    edition = reference.edition(year)
    own = edition[edition["province_code"].str[:2] == province[:2]]
    county = reference.reporting_counties(year)
    county = county[county["county_code"].isin(counties)].sort_values("code")
    township = own[(own["level"] == "township") & own["county_code"].isin(counties)].sort_values("code")
    village = own[(own["level"] == "village") & own["county_code"].isin(counties)].sort_values("code")
    return county, township, village


def _split(frame: pd.DataFrame) -> dict[str, Table]:
    """Per county, its rows as arrays (frames are sorted by code, so a county's rows are contiguous)."""
    arrays = {c: frame[c].to_numpy() for c in frame.columns}
    arrays["code"] = arrays["code"].astype(str)
    counties = arrays["county_code"]
    starts = np.flatnonzero(np.r_[True, counties[1:] != counties[:-1]]) if len(counties) else []
    bounds = [*starts, len(counties)]
    return {str(counties[a]): {k: v[a:b] for k, v in arrays.items()} for a, b in itertools.pairwise(bounds)}


def _file_times(plan: CountyPlan, seed: int) -> datetime:
    key = f"{plan.county}|{plan.year}"
    hour = 9 + int(_draw(key, seed, "hour") * 8)
    if plan.late:
        day = datetime(plan.year + 1, 4, 3, hour, tzinfo=CHINA) + timedelta(
            days=int(_draw(key, seed, "day") * 70)
        )
    else:
        day = datetime(plan.year + 1, 2, 1, hour, tzinfo=CHINA) + timedelta(
            days=int(_draw(key, seed, "day") * 50)
        )
    return day + timedelta(minutes=int(_draw(key, seed, "minute") * 60))


def _deadline(year: int) -> datetime:
    return datetime(year + 1, 3, 31, 23, 59, 59, tzinfo=CHINA)


def _later(when: datetime, plan: CountyPlan, seed: int, salt: str, stay_on_time: bool) -> datetime:
    """A later receipt time, kept clear of the days around the deadline so no time zone blurs it."""
    nxt = when + timedelta(days=2 + int(_draw(f"{plan.county}|{plan.year}", seed, salt) * 8))
    grey_from = datetime(plan.year + 1, 3, 29, tzinfo=CHINA)
    grey_to = datetime(plan.year + 1, 4, 3, 10, tzinfo=CHINA)
    if grey_from <= nxt < grey_to:
        nxt = datetime(plan.year + 1, 3, 28, 16, tzinfo=CHINA) if stay_on_time else grey_to
    return nxt


def _province_year(task: Task) -> list[dict]:
    spec = load_spec()
    counties = {p.county for p in task.plans}
    county_units, townships, villages = _units(task.year, task.province, counties)
    values = calibration.calibrate(task.province, task.year, county_units, townships, villages, task.seed)
    by_level = {
        "county": _split(values.county),
        "township": _split(values.township),
        "village": _split(values.village),
    }
    known = set(values.county["code"]) | set(values.township["code"]) | set(values.village["code"])
    known |= set(reference.reporting_counties(task.year)["code"])
    version = spec.version_for_year(task.year)
    out = Path(task.out_dir)
    entries: list[dict] = []
    levels = {"county": values.county, "township": values.township, "village": values.village}
    empty = {
        level: {c: frame[c].to_numpy()[0:0].copy() for c in frame.columns} for level, frame in levels.items()
    }
    for plan in task.plans:
        frames = {}
        for form in spec.form_codes:
            level = spec.level_of(form)
            table = by_level[level].get(plan.county, empty[level])
            frames[form] = {k: v.copy() for k, v in table.items()}
        entries += _county_files(plan, version, frames, spec, known, out, task.seed)
    return entries


def _counted(task: Task) -> tuple[int, list[dict]]:
    return len(task.plans), _province_year(task)


def _county_files(
    plan: CountyPlan,
    version: Version,
    frames: dict[str, Table],
    spec: Spec,
    known: set[str],
    out: Path,
    seed: int,
) -> list[dict]:
    """Every file one county sends for one year, in the order it sends them."""
    rng = np.random.default_rng([seed, int(plan.county), plan.year])
    sent = _file_times(plan, seed)
    revisions = dict.fromkeys(spec.form_codes, 0)  # the unit of revision is (county, year, form)
    entries = []

    def send(ret: Return, forms: tuple[str, ...], kind: str, hard: list[str], soft: list[str]) -> None:
        ret.forms = spec.form_codes if plan.fmt == "xlsx" else forms
        revision = max(revisions[f] for f in ret.forms) + 1
        revisions.update(dict.fromkeys(ret.forms, revision))
        entries.extend(_send(ret, plan, spec, out, seed, rng, sent, revision, kind, hard, soft))

    good = Return(plan.county, plan.name, plan.year, version, frames)
    if plan.revised:  # a first return with a slip in JCPT-1, corrected by a second revision
        first = _copy(good)
        _county_edit(
            first,
            persons_served=lambda t: (
                max(0, int(t["persons_served"][0] * 0.95) - 1) if t["persons_served"][0] > 0 else 1
            ),
        )
        send(first, spec.form_codes, "first", [], [])
        sent = _later(sent, plan, seed, "correction", stay_on_time=not plan.late)
        send(good, ("JCPT-1",), "correction", [], [])
    else:
        send(good, spec.form_codes, "return", [], [])
    if plan.soft_rule:
        soft = _copy(good)
        rule, form = _soft_case(plan.soft_rule, soft, known)
        sent = _later(sent, plan, seed, "soft", stay_on_time=False)
        send(soft, (form,), "soft", [], [rule])
        good = soft  # accepted: the soft revision is the one in force
    if plan.bad_rule:
        bad = _copy(good)
        form = _HARD_MUTATIONS[plan.bad_rule](bad, plan, known)
        sent = _later(sent, plan, seed, "bad", stay_on_time=False)
        send(bad, (form,), "bad", [plan.bad_rule], [])
    return entries


def _copy(ret: Return) -> Return:
    return Return(
        ret.county,
        ret.name,
        ret.year,
        ret.version,
        {f: {k: v.copy() for k, v in t.items()} for f, t in ret.frames.items()},
        ret.file_fault,
    )


def _suffix(revision: int) -> str:
    return f"_r{revision}" if revision > 1 else ""


def _send(
    ret: Return,
    plan: CountyPlan,
    spec: Spec,
    out: Path,
    seed: int,
    rng: np.random.Generator,
    sent: datetime,
    revision: int,
    kind: str,
    hard: list[str],
    soft: list[str],
) -> list[dict]:
    """Write one submission (one workbook, or one CSV per form sent) and describe it for the manifest."""
    late = sent > _deadline(plan.year)
    base = {
        "county": ret.county,
        "year": ret.year,
        "revision": revision,
        "version": ret.version.name,
        "kind": kind,
        "outcome": "quarantined" if hard else "accepted",
        "hard_rules": hard,
        "soft_rules": soft,
        "late": late,
        "mtime": sent.isoformat(),
    }
    if ret.county != plan.county:
        base["intended_county"] = plan.county
    files: list[tuple[Path, dict]] = []
    if plan.fmt == "xlsx":
        name = f"{ret.county}_{ret.year}{_suffix(revision)}.xlsx"
        if ret.file_fault == "S02":
            name = f"{ret.county}_{ret.year}{_suffix(revision)}(修改稿).xlsx"
        path = _staging(out) / name
        _write_xlsx(path, ret, plan, spec, seed, sent, rng)
        files.append((path, {"forms": list(spec.form_codes), "format": "xlsx", "encoding": None}))
    else:
        for form in ret.forms:
            name = f"{ret.county}_{ret.year}_{form}{_suffix(revision)}.csv"
            if ret.file_fault == "S02":  # a CSV must name its form
                name = f"{ret.county}_{ret.year}{_suffix(revision)}.csv"
            path = _staging(out) / name
            _write_csv(path, form, ret, plan, spec, rng)
            encoding = "utf-16" if ret.file_fault == "S01" else plan.encoding
            files.append((path, {"forms": [form], "format": "csv", "encoding": encoding}))
    entries = []
    stamp = sent.timestamp()
    for path, extra in files:
        data = path.read_bytes()
        os.utime(path, (stamp, stamp))
        os.replace(path, out / path.name)  # a watcher of the landing folder never sees half a file
        entries.append(
            {
                "file": path.name,
                **base,
                **extra,
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )
    return entries


# -- the run ---------------------------------------------------------------------------------------


def manifest_path(out_dir: Path) -> Path:
    """The manifest sits beside the landing folder, never in it (it would be taken for a return)."""
    out_dir = Path(out_dir).resolve()
    return out_dir.parent / f"{out_dir.name}.manifest.json"


def _staging(out_dir: Path) -> Path:
    """Where files are written before they are moved into the landing folder (same file system)."""
    return out_dir.parent / f".{out_dir.name}.partial"


def _prepare(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(_staging(out_dir), ignore_errors=True)
    _staging(out_dir).mkdir()
    # A rerun gives the same folder: earlier generated returns go, anything else is left alone.
    for old in list(out_dir.glob("*.xlsx")) + list(out_dir.glob("*.csv")):
        old.unlink()


def generate(
    out_dir: Path,
    provinces: list[str] | None = None,
    years: list[int] | None = None,
    scale: str = "seed",
    bad_share: float = 0.02,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Write the returns of `provinces` (2-digit codes) and `years` into `out_dir`, and the manifest.

    scale "national" takes every province of the registry. Returns a summary: files, bytes,
    seconds, manifest (path) and counts per outcome.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    if scale not in SCALES:
        raise GenerateError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if not 0 <= bad_share <= 0.5:
        raise GenerateError(f"--bad-share must be between 0 and 0.5, got {bad_share}")
    years = sorted(set(years or DEFAULT_YEARS))
    current = datetime.now(UTC).year
    if years[0] < 2014 or years[-1] > current - 1:
        raise GenerateError(
            f"survey years must lie between 2014 and {current - 1}, got {years[0]}-{years[-1]}"
        )
    known = sorted(reference.reporting_counties(years[0])["province_code"].str[:2].unique())
    if scale == "national":
        provinces = known
    provinces = sorted({str(p).strip()[:2] for p in (provinces or SEED_PROVINCES)})
    unknown = [p for p in provinces if p not in known]
    if unknown:
        raise GenerateError(f"unknown province code(s) {', '.join(unknown)}; known: {', '.join(known)}")
    out_dir = Path(out_dir).resolve()
    _prepare(out_dir)

    plans = plan_returns(provinces, years, bad_share, seed)
    tasks = [
        Task(p, y, tuple(pl for pl in plans if pl.year == y and pl.province[:2] == p), str(out_dir), seed)
        for y in years
        for p in provinces
    ]
    tasks = [t for t in tasks if t.plans]
    # biggest first, so the two workers finish together
    tasks.sort(key=lambda t: -sum(p.n_villages + 20 * p.n_townships for p in t.plans))
    entries: list[dict] = []
    bar = tqdm(total=len(plans), unit="county", desc="generate", file=sys.stderr, disable=not progress)
    if len(tasks) > 1:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(WORKERS) as pool:
            # results come in any order; the manifest is sorted by file name, so output stays fixed
            for counties, result in pool.imap_unordered(_counted, tasks):
                entries += result
                bar.update(counties)
    else:
        for task in tasks:
            entries += _province_year(task)
            bar.update(len(task.plans))
    bar.close()
    entries.sort(key=lambda e: e["file"])
    names = [e["file"] for e in entries]
    if len(names) != len(set(names)):
        raise GenerateError("two generated files share a name (a planning error)")
    manifest = {
        "generator": "hrss generate",
        "seed": seed,
        "scale": scale,
        "provinces": provinces,
        "years": years,
        "bad_share": bad_share,
        "landing_folder": out_dir.name,
        "files": entries,
        "counties": [
            {
                k: v
                for k, v in asdict(p).items()
                if k in ("county", "year", "fmt", "bad_rule", "soft_rule", "revised", "late")
            }
            for p in plans
        ],
    }
    _staging(out_dir).rmdir()
    path = manifest_path(out_dir)
    path.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    outcomes: dict[str, int] = {}
    for e in entries:
        outcomes[e["outcome"]] = outcomes.get(e["outcome"], 0) + 1
    return {
        "files": len(entries),
        "bytes": sum(e["bytes"] for e in entries),
        "seconds": round(time.perf_counter() - started, 1),
        "manifest": str(path),
        "counties": len(plans),
        "outcomes": outcomes,
    }
