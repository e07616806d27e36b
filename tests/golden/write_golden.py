"""Write the golden corpus (cases.yaml over returns.yaml) as files, cell by cell.

Independent of the warehouse on purpose: this module imports nothing from hrss_warehouse (not the
generator, the spec loader or the parser), only PyYAML, openpyxl and the csv module, and lays a file
out as survey_spec/README.md describes it. A test keeps it that way.

    python tests/golden/write_golden.py OUT_DIR   # writes OUT_DIR/<case id>/<file name>
"""

from __future__ import annotations

import copy
import csv
import io
import sys
from datetime import datetime
from pathlib import Path

import openpyxl
import yaml

HERE = Path(__file__).resolve().parent
ISSUER = "制定机关：省人力资源和社会保障厅   批准机关：省统计局"
FOOTER = [("单位负责人", "王建国"), ("统计负责人", "李红"), ("填表人", "张敏"), ("联系电话", "0472-5123456"),
          ("报出日期", "2018年3月20日")]
FORMS = ("JCPT-1", "JCPT-2", "JCPT-3")
FIXED_TIME = datetime(2018, 3, 20, 9, 0, 0)


def load_cases() -> list[dict]:
    return yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))["cases"]


def load_returns() -> dict:
    return yaml.safe_load((HERE / "returns.yaml").read_text(encoding="utf-8"))


def file_name(case: dict, returns: dict) -> str:
    if "file" in case:
        return case["file"]
    ret = returns["returns"][case["return"]]
    form = f"_{case['form']}" if case.get("format") == "csv" else ""
    extension = "csv" if case.get("format") == "csv" else "xlsx"
    return f"{ret['county']}_{ret['year']}{form}.{extension}"


def _number(value: object) -> object:
    """A sum as a spreadsheet number: integral sums as int, others rounded off binary noise."""
    if isinstance(value, float):
        value = round(value, 6)
        return int(value) if value.is_integer() else value
    return value


class Sheet:
    """One form of one case: the code row, the unit rows as meant and as written, the total row."""

    def __init__(self, form: str, template: dict, rows: list[list], case: dict) -> None:
        self.form = form
        self.codes = [str(c) for c in template["codes"]]
        self.title = template["title"]
        self.meant = [list(r) for r in rows]
        self.written = [list(r) for r in rows]
        drop = case.get("drop_units", {}).get(form)
        if drop == "all":
            self.meant, self.written = [], []
        elif drop:
            keep = [i for i, r in enumerate(self.meant) if r[0] not in drop]
            self.meant = [self.meant[i] for i in keep]
            self.written = [self.written[i] for i in keep]
        for extra in case.get("add_units", {}).get(form, []):
            self.meant.append(list(extra))
            self.written.append(list(extra))
        for edit in case.get("edits", []):
            if edit["sheet"] != form:
                continue
            row = next(i for i, r in enumerate(self.meant) if r[0] == edit["unit"])
            column = self.codes.index(str(edit["code"]))
            if "value" in edit:
                self.meant[row][column] = edit["value"]
                self.written[row][column] = edit["value"]
            else:
                self.written[row][column] = edit["written"]

    def total(self, overrides: dict) -> list:
        """README row 8: 合计 in 乙, 甲 and 丙 blank, the unit rows' sum in every column coded 1, 2, …"""
        out: list = []
        for i, code in enumerate(self.codes):
            if code == "乙":
                out.append("合计")
            elif code.isdigit():
                out.append(_number(sum(r[i] for r in self.meant if isinstance(r[i], int | float))))
            else:
                out.append(None)
        for code, value in overrides.items():
            out[self.codes.index(str(code))] = value
        return out

    def without(self, dropped: list[str]) -> None:
        keep = [i for i, c in enumerate(self.codes) if c not in [str(d) for d in dropped]]
        self.codes = [self.codes[i] for i in keep]
        self.meant = [[r[i] for i in keep] for r in self.meant]
        self.written = [[r[i] for i in keep] for r in self.written]


def _sheets(case: dict, returns: dict) -> tuple[dict, dict, dict[str, Sheet]]:
    ret = returns["returns"][case["return"]]
    template = returns["templates"][ret["version"]]
    sheets = {form: Sheet(form, template["forms"][form], ret["forms"][form], case) for form in FORMS}
    return ret, template, sheets


def _write_workbook(case: dict, returns: dict, path: Path) -> None:
    ret, template, sheets = _sheets(case, returns)
    book = openpyxl.Workbook()
    book.remove(book.active)
    book.properties.title = f"golden {case['id']}"  # no two cases' files are byte-identical
    book.properties.created = book.properties.modified = FIXED_TIME
    for form in FORMS:
        sheet = sheets[form]
        if form in case.get("drop_columns", {}):
            sheet.without(case["drop_columns"][form])
        ws = book.create_sheet(case.get("sheet_names", {}).get(form, form))
        width = len(sheet.codes)
        year = case.get("header_year", ret["year"])
        header = [sheet.title,
                  f"表号：{form}表   {ISSUER}   有效期至：{template['valid_until']}",
                  f"填报单位：{ret['county_name']}（区划代码：{ret['county']}）   报告期：{year}年",
                  case.get("unit_line", template["unit_line"])]
        for row, text in enumerate(header, start=1):
            ws.cell(row, 1, text)
            ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        ws.cell(5, 1, "指标名称")
        ws.merge_cells(start_row=5, start_column=1, end_row=6, end_column=width)
        for col, code in enumerate(sheet.codes, start=1):
            as_number = case.get("codes_as_numbers") and code.isdigit()
            ws.cell(7, col, int(code) if as_number else code)
        if form != "JCPT-1":  # JCPT-1 has no total row: its row 8 stays blank
            for col, value in enumerate(sheet.total(case.get("total", {}).get(form, {})), start=1):
                if value is not None:
                    ws.cell(8, col, value)
        for offset, cells in enumerate(sheet.written):
            for col, value in enumerate(cells, start=1):
                if value is not None:
                    ws.cell(9 + offset, col, value)
        _write_footer(ws, 9 + len(sheet.written) + 1, case.get("footer", "one_cell"))
    book.save(path)


def _write_footer(ws, row: int, style: str) -> None:
    items = [f"{key}：{value}" for key, value in FOOTER]
    if style == "one_cell":
        ws.cell(row, 1, "   ".join(items))
    elif style == "cells":
        for col, item in enumerate(items, start=1):
            ws.cell(row, col, item)
    elif style == "two_rows":
        ws.cell(row, 1, "   ".join(items[:3]))
        ws.cell(row + 1, 1, "   ".join(items[3:]))
    elif style != "none":
        raise ValueError(f"unknown footer style {style!r}")


def _write_csv(case: dict, returns: dict, path: Path) -> None:
    _, _, sheets = _sheets(case, returns)
    sheet = sheets[case["form"]]
    rows = sheet.written
    if "repeat_units" in case:
        county = returns["returns"][case["return"]]["county"]
        rows = [[f"{county}{i:06d}", *rows[0][1:]] for i in range(1, case["repeat_units"] + 1)]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(sheet.codes)
    for cells in rows:
        writer.writerow(["" if v is None else v for v in cells])
    path.write_bytes(text.getvalue().encode(case["encoding"]))


def write_case(case: dict, returns: dict, folder: Path) -> Path:
    """Write one case into ``folder/<case id>/``; returns the file's path."""
    target = folder / case["id"]
    target.mkdir(parents=True, exist_ok=True)
    path = target / file_name(case, returns)
    if "bytes" in case:
        path.write_bytes(case["bytes"].encode("utf-8"))
    elif "bytes_hex" in case:
        path.write_bytes(bytes.fromhex(case["bytes_hex"]))
    elif case.get("format") == "csv":
        _write_csv(case, returns, path)
    else:
        _write_workbook(case, returns, path)
    return path


def write_all(folder: Path) -> dict[str, Path]:
    returns = load_returns()
    return {case["id"]: write_case(copy.deepcopy(case), returns, folder) for case in load_cases()}


if __name__ == "__main__":
    for case_id, written in write_all(Path(sys.argv[1])).items():
        print(case_id, written)
