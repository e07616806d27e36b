"""The rules GX does not express (C04, C09, R01, R02) and the findings of the GX rules, row by row."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pandas as pd

from hrss_warehouse.check.gx_run import HELPER_OF, INDEX_COLUMNS
from hrss_warehouse.check.suites import FUNDING_PARTS
from hrss_warehouse.spec import FormVersion
from hrss_warehouse.stages.parse import Finding, read_numeric


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.6g}"


def gx_findings(failures, frame: pd.DataFrame, fv: FormVersion) -> list[tuple[int, Finding]]:
    """Turn GX failures into findings with the report's placeholders filled from the offending rows."""
    by_row = frame.set_index(INDEX_COLUMNS)
    out = []
    for meta, kwargs, rows in failures:
        rule_id = meta["rule_id"]
        # the column to point at: the checked one, else the pair's smaller side, else its larger side
        candidates = [HELPER_OF.get(c, c) for c in (kwargs.get("column", "").removesuffix("__bad"),
                                                    kwargs.get("column_B"), kwargs.get("column_A")) if c]
        column = next(fv.column(c) for c in candidates if fv.column(c) is not None)
        for index in rows:
            sid, source_row = int(index["submission_id"]), int(index["source_row"])
            row = by_row.loc[(sid, source_row)]
            if isinstance(row, pd.DataFrame):
                row = row.iloc[0]
            region = row["region_code"]
            value = row.get(column.name)
            if column.is_numeric:
                bad = row.get(f"{column.name}__bad")
                value = bad if isinstance(bad, str) else _num(value)
            if rule_id == "C03":
                out += [(sid, replace(_c03_finding(fv, col, row, source_row),
                                      expectation=meta.get("expectation")))
                        for col in fv.numeric_columns if isinstance(row.get(f"{col.name}__bad"), str)]
                continue
            params = {"row": source_row, "value": value, "county_code": row["county_code"],
                      "column": column.code, "name": column.zh, "type": column.type}
            if rule_id == "C05":
                params.update(total=_num(row["staff_total"]), parts=_num(
                    row.get("staff_parts_sum") if kwargs.get("column_B") == "staff_parts_sum"
                    else row.get("coordinators")))
            elif rule_id == "C06":
                parts = row.get("funding_central") if "funding_parts_gap" not in row.index else sum(
                    row[p] for p in FUNDING_PARTS)
                params.update(total=_num(row["funding_total"]), parts=_num(parts))
            elif rule_id in ("C07", "C08"):
                params["column"] = f"{column.code}（{column.zh}）"
            elif rule_id == "C11":
                params.update(value=_num(row["service_population"]), limit=_num(row["resident_population"]))
            elif rule_id == "C12":
                params.update(value=_num(row["persons_per_staff"]))
            if rule_id in ("C01", "C02"):
                params.update(value=region, column="甲")
            out.append((sid, Finding(rule_id, form=fv.form, sheet=None, row=source_row, column=column.code,
                                     value=None if value is None else str(value), params=params,
                                     expectation=meta.get("expectation"))))
    return out


def _c03_finding(fv: FormVersion, column, row: pd.Series, source_row: int) -> Finding:
    value = row[f"{column.name}__bad"]
    return Finding("C03", form=fv.form, row=source_row, column=column.code, value=value, params={
        "row": source_row, "column": column.code, "name": column.zh, "type": column.type, "value": value})


def c04(frame: pd.DataFrame, sheets: dict[int, tuple[str, str | None]]) -> list[tuple[int, Finding]]:
    """JCPT-1: exactly one row per submission, the county's own (county code + six zeros)."""
    out = []
    by_submission = dict(iter(frame.groupby("submission_id", sort=False)))
    for sid, (county, sheet) in sheets.items():  # a sheet without any unit row has no group at all
        rows = by_submission.get(sid, frame.iloc[0:0])
        if len(rows) == 1 and rows["region_code"].iloc[0] == f"{county}000000":
            continue
        detail = f"{len(rows)} 行/rows: " + ", ".join(str(c) for c in rows["region_code"].head(5))
        out.append((int(sid), Finding("C04", form=frame.attrs["form"], sheet=sheet, column="甲",
                                      row=int(rows["source_row"].iloc[0]) if len(rows) else None,
                                      params={"detail": detail})))
    return out


def c09(frame: pd.DataFrame, fv: FormVersion, totals: dict[int, tuple[int, dict]],
         sheets: dict[int, str | None]) -> list[tuple[int, Finding]]:
    """Workbooks' total row (合计) against the sum of the unit rows, all submissions at once."""
    workbook_sids = [sid for sid, sheet in sheets.items() if sheet is not None]
    if not fv.has_total_row or not workbook_sids:
        return []
    out = []
    missing = [sid for sid in workbook_sids if sid not in totals]
    for sid in missing:
        out.append((sid, Finding("C09", form=fv.form, sheet=sheets[sid], column="乙", params={
            "form": fv.form, "column": "合计", "total": "—", "sum": "—"})))
    present = [sid for sid in workbook_sids if sid in totals]
    if not present:
        return out
    cells = pd.DataFrame([totals[sid][1] for sid in present], index=present)
    units = frame[frame["submission_id"].isin(present)]
    summed = [c.name for c in fv.summed_columns]
    sums = units.groupby("submission_id")[summed].sum().reindex(present).fillna(0)
    n_rows = units.groupby("submission_id").size().reindex(present).fillna(0)
    for column in fv.summed_columns:  # only the columns coded 1, 2, …: 丙 is descriptive (README row 8)
        # a total is any non-negative number: flag and enum columns sum beyond their own domain
        values, bad = read_numeric(cells[column.name], replace(column, type="area"), divisor=None)
        values = values.fillna(0).where(bad.isna())  # a blank total is 0; an unreadable one never matches
        tolerance = (0.01 * n_rows + 1e-9) if column.type in ("area", "money") else 1e-9
        wrong = ~((values - sums[column.name]).abs() <= tolerance)
        for sid in wrong[wrong].index:
            shown = bad[sid] if isinstance(bad[sid], str) else _num(values[sid])
            out.append((int(sid), Finding("C09", form=fv.form, sheet=sheets[sid], row=totals[sid][0],
                                          column=column.code, value=shown, params={
                                              "form": fv.form, "column": column.code, "total": shown,
                                              "sum": _num(round(float(sums.at[sid, column.name]), 4))})))
    return out


def _registry_codes(year: int, level: str) -> pd.DataFrame:
    """code and county_code of every unit of ``level`` in the registry edition of survey year ``year``."""
    from hrss_warehouse.stages import reference

    return _edition_codes(reference.edition_for_survey_year(year), level)


# Keyed by edition, not survey year: the years before the first edition share it.
@cache
def _edition_codes(edition: int, level: str) -> pd.DataFrame:
    from hrss_warehouse.stages import reference

    return reference.edition_codes(edition, level)


def _code_index(year: int, level: str) -> pd.Index:
    """The registry's codes as an index: its hash table is built once per edition, not per batch."""
    from hrss_warehouse.stages import reference

    return _edition_code_index(reference.edition_for_survey_year(year), level)


@cache
def _edition_code_index(edition: int, level: str) -> pd.Index:
    return pd.Index(pd.unique(_edition_codes(edition, level)["code"].to_numpy(dtype=object)))


def registry(frame: pd.DataFrame, level: str, sheets: dict[int, str | None]) -> list[tuple[int, Finding]]:
    """R01 (a code unknown at the form's level) and R02 (units of the county not reported)."""
    out = []
    form = frame.attrs["form"]
    for year, rows in frame.groupby("survey_year", sort=False):
        codes = rows["region_code"].to_numpy(dtype=object)
        unknown = rows[_code_index(int(year), level).get_indexer(codes) < 0]
        for sid, source_row, code in zip(unknown["submission_id"].tolist(), unknown["source_row"].tolist(),
                                         unknown["region_code"].tolist(), strict=True):
            out.append((int(sid), Finding("R01", form=form, sheet=sheets[int(sid)], row=int(source_row),
                                          column="甲", value=code, params={
                                              "row": int(source_row), "value": code,
                                              "survey_year": int(year)})))
        if level != "county":
            out += _r02(rows, _registry_codes(int(year), level), form, sheets)
    return out


def _r02(rows: pd.DataFrame, registry: pd.DataFrame, form: str,
         sheets: dict[int, str | None]) -> list[tuple[int, Finding]]:
    """Registry units of each submission's county that the submission does not report (an anti-join)."""
    submissions = rows[["submission_id", "county_code"]].drop_duplicates()
    # the batch's counties first: a batch of one county need not hash the edition's 670 k villages
    registry = registry[registry["county_code"].isin(submissions["county_code"].unique())]
    expected = submissions.merge(registry.rename(columns={"code": "region_code"}), on="county_code")
    reported = pd.MultiIndex.from_frame(rows[["submission_id", "region_code"]].astype(object))
    pairs = pd.MultiIndex.from_frame(expected[["submission_id", "region_code"]].astype(object))
    missing = expected[~pairs.isin(reported)].sort_values(["submission_id", "region_code"])
    out = []
    for sid, codes in missing.groupby("submission_id", sort=True)["region_code"]:
        codes = codes.tolist()
        shown = "、".join(codes[:50]) + ("…" if len(codes) > 50 else "")
        out.append((int(sid), Finding("R02", form=form, sheet=sheets[int(sid)], value=";".join(codes),
                                      params={"form": form, "count": len(codes), "codes": shown})))
    return out


@cache
def reporting_counties(year: int) -> frozenset[str]:
    return frozenset(_registry_codes(year, "county")["county_code"])


def county_is_reporting(county: str, year: int) -> bool:
    return county in reporting_counties(year)
