"""Parsing a return file into one frame of unit rows per form, exactly as survey_spec/README.md lays it out.

Workbooks are read with python-calamine, CSV files with encoding detection (UTF-8 with or without BOM,
else GB18030). Columns are found by the indicator-code row, never by position, and unit rows by the code
in column 甲. Cells are normalised column by column (numbers as text, thousands separators, full-width
digits, spaces, 是/否); a cell that still does not read as a value of its type (C03: flag 0/1, enum
value, non-negative number, whole count) is kept as text in ``<name>__bad`` for the C03 expectation.
Structure rules (S01, S03–S06, S08) are found here, since only
the reader sees the file's layout; everything about values is left to ``check``.
"""

from __future__ import annotations

import bisect
import csv
import html
import io
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hrss_warehouse import files
from hrss_warehouse.files import WORKBOOK_KINDS, FileName
from hrss_warehouse.spec import Column, FormVersion, load_spec
from hrss_warehouse.stages.register import workbook_format

MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PARTS_BYTES = 200 * 1024 * 1024
MAX_UNIT_ROWS = 20_000
# The header block and the footer around the unit rows: a CSV with more lines than this cannot be legal.
MAX_SHEET_ROWS = MAX_UNIT_ROWS + 40
# A sheet's height says nothing (one stray note in its last row makes it 1,048,576 rows tall): its
# non-blank rows are counted, and beyond this many of them it cannot hold a legal form (S06).
MAX_FILLED_ROWS = 2 * MAX_UNIT_ROWS
HEADER_SCAN_ROWS = 20
TOTAL_LABEL = "合计"
FOOTER_KEYS = {"单位负责人": "unit_head", "统计负责人": "statistics_head", "填表人": "preparer",
               "联系电话": "phone", "报出日期": "report_date"}
_FOOTER_RE = re.compile(r"(" + "|".join(FOOTER_KEYS) + r")\s*[:：]\s*(.*?)\s*(?=(?:"
                        + "|".join(FOOTER_KEYS) + r")\s*[:：]|$)")
_FOOTER_START = re.compile(r"(单位负责人|统计负责人|填表人|联系电话)\s*[:：]")
# What a county writes in column 甲 of a unit row, even a wrong one (C01 answers those): digits and
# letters. A row after the last unit row whose 甲 holds anything else (Chinese text, a colon) is footer.
_CODE_LIKE = re.compile(r"[0-9A-Za-z\s\-.]+")
# A formula cell saved without its computed value (written by a program that does not calculate): its
# formula text stands in for the value, so C03 answers it instead of a silent NULL.
NO_CACHED_VALUE = "（公式无计算结果/formula without a computed value）"
_FORMULA_CELL = re.compile(rb'<c\b([^>]*?)(?<!/)>(.*?)</c>', re.DOTALL)
_CELL_REF = re.compile(rb'\br="([A-Z]{1,3})(\d+)"')
_FORMULA = re.compile(rb"<f\b[^>]*?(?:/>|>(.*?)</f>)", re.DOTALL)
_CACHED = re.compile(rb"<v>[^<]")
_FULLWIDTH = str.maketrans({**{chr(0xFF10 + i): str(i) for i in range(10)},
                            "，": ",", "．": ".", "　": " ", "－": "-", "＋": "+"})
_FLAG_WORDS = {"是": "1", "否": "0"}
_NUMBER_SPACE = re.compile(r"[\s,]")  # spaces and thousands separators inside a number written as text
_LINE_BREAKS = re.compile(r"[\r\n]+")
_PLAIN_DECIMAL = re.compile(r"[+-]?\d+(\.\d+)?")
MONEY_LABELS = {"yuan": "元", "wan_yuan": "万元"}


@dataclass
class Finding:
    """A fired rule: its id and what the feedback report needs to say where and why."""

    rule_id: str
    form: str | None = None
    sheet: str | None = None
    row: int | None = None  # the row number as Excel shows it, or the CSV line number
    column: str | None = None  # indicator code
    value: str | None = None
    params: dict = field(default_factory=dict)
    expectation: str | None = None  # the GX expectation that found it (meta.expectation), if any


@dataclass
class ParsedForm:
    """One form of a file as read: raw cells by canonical column name, normalised later per batch.

    The cells stay plain lists until a batch's forms are joined into one frame: a frame per sheet would
    cost more than the sheet's cells do.
    """

    form: str
    version: str
    sheet: str | None
    columns: dict[str, list]  # source_row and the form version's columns, cells as the reader gave them
    total: dict[str, object] | None = None  # the total row's cells of the summed columns (workbooks)
    total_row: int | None = None
    contacts: dict[str, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.columns["source_row"])

    @property
    def cells(self) -> pd.DataFrame:
        return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in self.columns.items()})


@dataclass
class ParsedFile:
    kind: str | None
    forms: dict[str, ParsedForm] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def readable(self) -> bool:
        return not any(f.rule_id in {"S01", "S02", "S03", "S06"} for f in self.findings)


class _Refused(Exception):
    """The file cannot be read further; carries the finding that says why."""

    def __init__(self, finding: Finding):
        super().__init__(finding.rule_id)
        self.finding = finding


# -- cell normalisation ------------------------------------------------------------------------

def _text(value: object) -> str:
    """A cell as display text: integral floats without the '.0' Excel numbers carry."""
    if type(value) is str:  # most cells: the fast path first (called for every text cell of a year)
        # every character _FULLWIDTH maps is outside ASCII: codes and numbers skip the translation
        return value.strip() if value.isascii() else value.translate(_FULLWIDTH).strip()
    if value is None:
        return ""
    if isinstance(value, float):
        if np.isnan(value):
            return ""
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value).translate(_FULLWIDTH).strip()


def read_numeric(cells: pd.Series, column: Column, divisor: int | None = 1) -> tuple[pd.Series, pd.Series]:
    """The column's values (float, NaN where blank or unreadable) and the unreadable cells' text.

    ``divisor`` is what the loader divides the column by before writing it (money in 元 to 万元): a
    value is legal only when the stored value fits the column's PostgreSQL type (Column.upper_bound).
    None: the values are never stored (a total row), so no column bounds them.

    Column-wise on numpy arrays: the cells that are numbers or empty (almost all of them) take no
    Python step each; only the few others go through the text clean-up below.
    """
    cells = cells.astype(object)
    raw = cells.to_numpy()
    values = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float, copy=True)
    blank = np.zeros(len(raw), dtype=bool)
    missing = np.flatnonzero(np.isnan(values))
    if len(missing):
        found = raw[missing]
        empty = pd.isna(found)
        empty[~empty] = found[~empty] == ""
        blank[missing[empty]] = True
        legal: list[int] = []
        cleaned: list[str] = []
        for i in missing[~empty]:  # cells of text: the few that are neither numbers nor empty
            text = str(raw[i])
            if text.strip() in ("", "nan"):
                blank[i] = True
                continue
            number = _NUMBER_SPACE.sub("", text.translate(_FULLWIDTH))
            if column.type == "flag":
                number = _FLAG_WORDS.get(number, number)
            # only plain decimal notation is legal: 'nan', 'inf' or '1e5' are not numbers a county writes
            if _PLAIN_DECIMAL.fullmatch(number):
                legal.append(i)
                cleaned.append(number)
        if legal:
            values[legal] = pd.to_numeric(pd.Series(cleaned, dtype=object), errors="coerce").to_numpy(
                dtype=float)
    with np.errstate(invalid="ignore"):
        bad = np.isnan(values) & ~blank
        bad |= np.isinf(values)
        # C03's domain: flags 0/1, enums their listed values, every other number non-negative (and whole
        # for counts); the GX expectation of C03 then checks that no cell is left over here.
        known = ~np.isnan(values)
        if column.type in {"count", "flag", "enum"}:
            bad |= known & (np.fmod(values, 1) != 0)
        if column.type == "flag":
            bad |= known & ~np.isin(values, [0, 1])
        elif column.type == "enum":
            bad |= known & ~np.isin(values, list(column.values))
        else:
            bad |= values < 0
        # the column type's range, after the loader's scaling and rounding (spec.PG_TYPES, one source)
        if divisor is not None:
            bad |= np.abs(np.round(values / divisor, column.scale)) >= column.upper_bound
    values[bad] = np.nan
    bad_text = pd.Series(None, index=cells.index, dtype=object)
    if bad.any():
        bad_text.iloc[np.flatnonzero(bad)] = [_text(c) for c in raw[bad]]
    return pd.Series(values, index=cells.index), bad_text


def normalise(grid: pd.DataFrame, fv: FormVersion, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """Turn raw cells (columns named by `fv.names`, many submissions at once) into checkable values.

    Numeric columns become floats plus ``<name>__bad`` (the text of cells that are not values of their
    type); columns in ``keep`` (e.g. submission_id) pass through unchanged.
    """
    out = {name: grid[name] for name in keep}
    out["source_row"] = grid["source_row"].astype("int64")
    money_divisor = load_spec().versions[fv.version].money_divisor
    for column in fv.columns:
        cells = grid[column.name]
        if column.is_numeric:
            values, bad = read_numeric(cells, column, money_divisor if column.type == "money" else 1)
            out[column.name] = values
            out[f"{column.name}__bad"] = bad
        else:
            # line breaks inside a name would split a row of the COPY files: fold them to spaces
            texts = [_text(cell) for cell in cells.to_numpy(dtype=object)]
            out[column.name] = pd.Series([_LINE_BREAKS.sub(" ", t) if "\n" in t or "\r" in t else (t or None)
                                          for t in texts], index=grid.index, dtype="str")
    frame = pd.DataFrame(out, index=grid.index)
    # A blank on a unit without a platform means 0 (none for an enum), except where forms.yaml says null.
    no_platform = frame["has_platform"].eq(0)
    if no_platform.any():
        for column in fv.numeric_columns:
            if column.type != "enum" and not column.blank_stays_null and column.name != "has_platform":
                fill = no_platform & frame[column.name].isna() & frame[f"{column.name}__bad"].isna()
                frame.loc[fill, column.name] = 0.0
    return frame.reset_index(drop=True)


# -- files ---------------------------------------------------------------------------------------

def parse_file(path: Path, name: FileName | None, file_name: str) -> ParsedFile:
    """Read one archived return. Never raises for a bad file: every problem becomes a finding."""
    if name is None:
        return ParsedFile(None, findings=[Finding("S02", params={"file_name": file_name})])
    parsed = ParsedFile(name.kind)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise _Refused(Finding("S06", params={"detail": f"{size} bytes > {MAX_FILE_BYTES} bytes"}))
        if name.kind in WORKBOOK_KINDS:
            _parse_workbook(path, name, parsed)
        else:
            _parse_csv(path, name, parsed)
    except _Refused as refused:
        parsed.findings.append(refused.finding)
        return parsed
    spec = load_spec()
    for form, pf in parsed.forms.items():
        # S09: every county has townships and villages; an empty JCPT-2/JCPT-3 is an export error
        if pf.rows == 0 and spec.level_of(form) != "county":  # JCPT-1's row count is C04's
            parsed.findings.append(Finding("S09", form=form, sheet=pf.sheet, params={"form": form}))
    return parsed


def _check_codes(codes: list[str], form: str, name: FileName, sheet: str | None) -> tuple[FormVersion, dict]:
    """Map indicator codes to column positions; S04 when they are not the codes of the version in force."""
    spec = load_spec()
    version = spec.version_for_year(name.survey_year)
    fv = spec.form(form, version.name)
    positions: dict[str, int] = {}
    duplicated = []
    for index, code in enumerate(codes):
        if code:
            if code in positions:
                duplicated.append(code)
            positions[code] = index
    found, expected = set(positions), set(fv.codes)
    if found != expected or duplicated:
        other = [v for v in spec.forms[form] if v != version.name and set(spec.form(form, v).codes) == found]
        parts = []
        if expected - found:
            parts.append("缺少/missing " + " ".join(c for c in fv.codes if c not in found))
        if found - expected:
            parts.append("多出/extra " + " ".join(c for c in codes if c and c not in expected))
        if duplicated:
            parts.append("重复/duplicated " + " ".join(duplicated))
        if other:
            parts.append(f"= {other[0]}")
        raise _Refused(Finding("S04", form=form, sheet=sheet, params={
            "form": form, "version": version.name, "detail": "; ".join(parts)}))
    name_of = dict(zip(fv.codes, fv.names, strict=True))
    return fv, {name_of[code]: pos for code, pos in positions.items()}


def _parse_csv(path: Path, name: FileName, parsed: ParsedFile) -> None:
    data = path.read_bytes()
    encodings = ["utf-8-sig"] if data.startswith(b"\xef\xbb\xbf") else ["utf-8", "gb18030"]
    text = None
    for encoding in encodings:
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise _Refused(Finding("S01", params={
            "detail": "neither UTF-8 nor GB18030 / 既非UTF-8也非GB18030编码"}))
    if "\x00" in text:
        raise _Refused(Finding("S01", params={"detail": "binary content (NUL bytes) / 含二进制内容"}))
    if text.count("\n") > MAX_SHEET_ROWS:  # cheap bound before parsing; the exact count follows
        raise _Refused(Finding("S06", form=name.form, params={
            "detail": f"{text.count(chr(10))} lines > {MAX_UNIT_ROWS} unit rows"}))
    header_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    if not header_line.strip():
        raise _Refused(Finding("S01", params={"detail": "empty file or blank header line / 文件为空"}))
    try:
        header = next(csv.reader([header_line]))
    except csv.Error as exc:
        raise _Refused(Finding("S01", params={"detail": f"CSV header: {exc}"})) from None
    # the code row first: a wrong header is S04 even when the data lines then disagree with it
    fv, positions = _check_codes([_text(c) for c in header], name.form, name, None)
    rows = _plain_csv_rows(text, len(header))
    if rows is None:  # quotes, blank or ragged lines: pandas' parser says what it makes of them
        try:
            grid = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False,
                               skip_blank_lines=False, engine="c")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise _Refused(Finding("S01", params={"detail": f"CSV: {detail}"})) from None
        rows = grid.to_numpy(dtype=object).tolist()  # a missing field is NaN
    body = rows[1:]
    # unit rows: those with a code in 甲, up to the footer a county may have appended
    code_pos = positions["region_code"]
    raw_codes = ["" if not isinstance(row[code_pos], str) else row[code_pos] for row in body]
    end = _footer_start([_text(code) for code in raw_codes])
    units = [i for i in range(end) if raw_codes[i].strip() != ""]
    if len(units) > MAX_UNIT_ROWS:
        raise _Refused(Finding("S06", form=name.form, params={
            "detail": f"{name.form}: {len(units)} unit rows > {MAX_UNIT_ROWS}"}))
    columns = {n: [body[i][positions[n]] for i in units] for n in fv.names}
    columns["source_row"] = [i + 2 for i in units]  # the header is line 1
    parsed.forms[name.form] = ParsedForm(name.form, fv.version, None, columns)


def _plain_csv_rows(text: str, width: int) -> list[list[str]] | None:
    """The fields of a CSV without quotes whose every line holds ``width`` fields, split in C (the csv
    module); None for any other CSV, which pandas' parser reads instead. On such a file both parsers
    agree field for field and line for line."""
    if '"' in text:
        return None
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:  # e.g. a lone carriage return
        return None
    return rows if all(len(row) == width for row in rows) else None


def _zip_directory_check(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _Refused(Finding("S01", params={
            "detail": f"not an xlsx workbook / 不是xlsx工作簿 ({exc})"})) from None
    if total > MAX_PARTS_BYTES:
        raise _Refused(Finding("S06", params={
            "detail": f"workbook parts expand to {total} bytes > {MAX_PARTS_BYTES} bytes"}))


def _parse_workbook(path: Path, name: FileName, parsed: ParsedFile) -> None:
    """An xlsx or xls workbook, told apart by content: county PCs save either under either name."""
    from python_calamine import CalamineError, CalamineWorkbook

    kind = workbook_format(path)
    if kind is None:
        raise _Refused(Finding("S01", params={
            "detail": "neither an xlsx nor an xls workbook / 既非xlsx也非xls工作簿"}))
    if kind == "xlsx":
        _zip_directory_check(path)
    spec = load_spec()
    try:
        with path.open("rb") as fh:
            workbook = CalamineWorkbook.from_filelike(fh)
    except (CalamineError, OSError, ValueError) as exc:
        raise _Refused(Finding("S01", params={"detail": f"{type(exc).__name__}: {exc}"})) from None
    missing = [form for form in spec.forms if form not in workbook.sheet_names]
    if missing:
        raise _Refused(Finding("S03", params={"missing": "、".join(missing)}))
    try:
        # an xls FORMULA record always carries its result, so only xlsx can hold an uncached formula
        formulas = _uncached_formulas(path) if kind == "xlsx" else {}
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise _Refused(Finding("S01", params={
            "detail": f"damaged workbook / 工作簿已损坏 ({type(exc).__name__}: {exc})"})) from None
    for form in spec.forms:
        try:
            sheet = workbook.get_sheet_by_name(form)
            numbers, rows = _filled_rows(sheet, form)
        except (CalamineError, OSError, ValueError) as exc:
            raise _Refused(Finding("S01", sheet=form, params={"detail": f"{form}: {exc}"})) from None
        _put_formulas(numbers, rows, formulas.get(form, {}))
        parsed.forms[form] = _parse_sheet(rows, numbers, form, name, parsed.findings)


def _filled_rows(sheet, form: str) -> tuple[list[int], list[list]]:
    """The sheet's non-blank rows, each from column A, and their Excel row numbers."""
    start_column = sheet.start[1] if sheet.start else 0
    numbers: list[int] = []
    rows: list[list] = []
    # iter_rows starts at row 1 and at the sheet's first used column
    for number, row in enumerate(sheet.iter_rows(), start=1):
        if row.count("") + row.count(None) == len(row):  # counted in C: most rows are not blank
            continue
        if len(rows) >= MAX_FILLED_ROWS:
            raise _Refused(Finding("S06", form=form, sheet=form, params={
                "detail": f"{form}: more than {MAX_FILLED_ROWS} filled rows, > {MAX_UNIT_ROWS} unit rows"}))
        numbers.append(number)
        rows.append([""] * start_column + row if start_column else row)
    return numbers, rows


def _column_index(letters: bytes) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + letter - 64
    return index - 1


def _uncached_formulas(path: Path) -> dict[str, dict[tuple[int, int], str]]:
    """Formula cells saved without a computed value, per sheet name: {(Excel row, column index): formula}.

    The reader returns such a cell as blank, so they are found in the sheet XML itself (a quick
    substring test first: most workbooks hold no formula at all).
    """
    found: dict[str, dict[tuple[int, int], str]] = {}
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        workbook = archive.read("xl/workbook.xml") if "xl/workbook.xml" in names else b""
        rels = (archive.read("xl/_rels/workbook.xml.rels") if "xl/_rels/workbook.xml.rels" in names else b"")
        targets = {m[1]: m[2] for m in re.finditer(rb'<Relationship\b(?=[^>]*\bId="([^"]+)")'
                                                   rb'(?=[^>]*\bTarget="([^"]+)")', rels)}
        for sheet in re.finditer(rb'<sheet\b(?=[^>]*\bname="([^"]*)")(?=[^>]*\br:id="([^"]+)")', workbook):
            target = targets.get(sheet[2], b"").decode("utf-8", "replace").lstrip("/")
            part = target if target.startswith("xl/") else f"xl/{target}"
            if part not in names:
                continue
            xml = archive.read(part)
            if b"<f" not in xml:
                continue
            cells = {}
            for cell in _FORMULA_CELL.finditer(xml):
                formula = _FORMULA.search(cell[2])
                ref = _CELL_REF.search(cell[1])
                if formula and ref and not _CACHED.search(cell[2]):
                    text = html.unescape((formula[1] or b"").decode("utf-8", "replace"))
                    cells[int(ref[2]), _column_index(ref[1])] = text
            if cells:
                found[html.unescape(sheet[1].decode("utf-8", "replace"))] = cells
    return found


def _put_formulas(numbers: list[int], rows: list[list], formulas: dict[tuple[int, int], str]) -> None:
    """Put each uncached formula's text where the reader left its cell blank."""
    for (number, column), formula in sorted(formulas.items()):
        index = bisect.bisect_left(numbers, number)
        if index == len(numbers) or numbers[index] != number:
            numbers.insert(index, number)
            rows.insert(index, [])
        row = rows[index]
        if len(row) <= column:
            row.extend([""] * (column + 1 - len(row)))
        if row[column] in ("", None):
            row[column] = f"={formula}{NO_CACHED_VALUE}"


def _row_text(row: list) -> str:
    return " ".join(t for t in (_text(c) for c in row) if t)


def _footer_start(codes: list[str]) -> int:
    """Where the footer begins among body rows, by their column-甲 texts: after the last unit code,
    at the first row whose 甲 is text no unit code looks like, whatever its labels say. Its values
    (names, phone numbers) are never read as unit rows, so they never reach a finding or a report."""
    last_code = max((i for i, code in enumerate(codes) if code.isdigit()), default=-1)
    return next((i for i in range(last_code + 1, len(codes))
                 if codes[i] and not _CODE_LIKE.fullmatch(codes[i])), len(codes))


def _parse_sheet(rows: list[list], numbers: list[int], form: str, name: FileName,
                 findings: list[Finding]) -> ParsedForm:
    spec = load_spec()
    version = spec.version_for_year(name.survey_year)
    code_index = next((i for i, row in enumerate(rows[:HEADER_SCAN_ROWS])
                       if any(_text(c) == "甲" for c in row)), None)
    if code_index is None:
        raise _Refused(Finding("S04", form=form, sheet=form, params={
            "form": form, "version": version.name, "detail": "no indicator-code row / 无指标代码行"}))
    header = [_row_text(row) for row in rows[:code_index]]
    _check_header(header, numbers[:code_index], form, name, version.name, findings)
    fv, positions = _check_codes([_text(c) for c in rows[code_index]], form, name, form)

    # The rows are already Python lists: classify them in plain Python and build one frame of the
    # unit rows' cells at the end (a pandas frame per sheet costs more than the sheet's cells do).
    first_body = code_index + 1
    code_pos, label_pos = positions["region_code"], positions["unit_name"]
    codes = [_text(row[code_pos]) if code_pos < len(row) else "" for row in rows[first_body:]]
    footer_start = first_body + _footer_start(codes)
    total_index = None
    for offset, code in enumerate(codes[: footer_start - first_body]):
        if code.isdigit():
            continue  # a unit row: only rows whose 甲 is not a code can be total, footer or note
        i = first_body + offset
        text = _row_text(rows[i])
        if _FOOTER_START.search(text):
            footer_start = i
            break
        label = _text(rows[i][label_pos]) if label_pos < len(rows[i]) else ""
        if total_index is None and TOTAL_LABEL in (code, label):
            total_index = i
    units = [first_body + k for k, code in enumerate(codes[: footer_start - first_body])
             if code and first_body + k != total_index]
    result = ParsedForm(form, fv.version, form, {n: [] for n in [*fv.names, "source_row"]})
    result.contacts = _contacts(" ".join(_row_text(row) for row in rows[footer_start:]))
    if len(units) > MAX_UNIT_ROWS:
        raise _Refused(Finding("S06", form=form, sheet=form, params={
            "detail": f"{form}: {len(units)} unit rows > {MAX_UNIT_ROWS}"}))
    if units:
        width = max(positions.values()) + 1
        unit_rows = [rows[i] if len(rows[i]) >= width else rows[i] + [""] * (width - len(rows[i]))
                     for i in units]
        # transposed in C, one tuple per sheet column; every row has at least `width` cells, so cutting
        # at the shortest row loses no column the form needs
        by_position = list(zip(*unit_rows, strict=False))
        result.columns = {n: list(by_position[positions[n]]) for n in fv.names}
        result.columns["source_row"] = [numbers[i] for i in units]
    if fv.has_total_row and total_index is not None:
        total = rows[total_index]
        result.total_row = numbers[total_index]
        result.total = {c.name: total[positions[c.name]] if positions[c.name] < len(total) else None
                        for c in fv.summed_columns}
    return result


def _check_header(header: list[str], numbers: list[int], form: str, name: FileName, version: str,
                  findings: list[Finding]) -> None:
    spec = load_spec()
    unit_line = next((line for line in header if "计量单位" in line), "")
    table_line = next((line for line in header if "表号" in line), "")
    period_line = next((line for line in header if "报告期" in line or "填报单位" in line), "")
    # S04: the 表号 line's 有效期至 names the version the template belongs to
    declared = next((v.name for v in spec.versions.values() if v.valid_until_label in table_line), None)
    if table_line and declared and declared != version:
        findings.append(Finding("S04", form=form, sheet=form, params={
            "form": form, "version": version, "detail": f"表号行/form line: {table_line}"}))
    county = re.search(r"区划代码\s*[:：]?\s*(\d{6})", period_line)
    year = re.search(r"报告期\s*[:：]?\s*(\d{4})", period_line)
    if not county or not year or county[1] != name.county_code or int(year[1]) != name.survey_year:
        findings.append(Finding("S05", form=form, sheet=form, row=numbers[header.index(period_line)]
                                if period_line in header else None, value=period_line, params={
                                    "header": period_line or "—", "file_name": files.name_text(name)}))
    money = spec.versions[version].money_unit
    unit = "万元" if "万元" in unit_line else ("元" if "元" in unit_line else None)
    if unit != MONEY_LABELS[money]:
        findings.append(Finding("S08", form=form, sheet=form, value=unit_line, params={
            "form": form, "declared": unit or "—", "version": version, "expected": MONEY_LABELS[money]}))


def _contacts(footer: str) -> dict[str, str]:
    return {FOOTER_KEYS[key]: value for key, value in _FOOTER_RE.findall(footer) if value}
