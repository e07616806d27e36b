"""Feedback reports for the county's statistician, and the GX Data Docs of the suites.

One CSV (UTF-8 with BOM, so Excel shows the Chinese) and one HTML page per submission under
``$HRSS_HOME/reports/feedback/``: rule id, severity, the rule's message in Chinese and English with its
placeholders filled, sheet, the row number as Excel shows it, column code and value. Every cell that
Excel could read as a formula is prefixed with ``'``; the HTML escapes everything.
"""

from __future__ import annotations

import csv
import html
import json
from collections import defaultdict
from pathlib import Path

from hrss_warehouse.config import Settings
from hrss_warehouse.spec import load_spec

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HEADER = ["rule_id", "severity", "message_zh", "message_en", "sheet", "row", "column", "value"]


def safe_cell(value: object) -> str:
    """A cell value Excel will not evaluate: formula-looking text gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def fill(template: str, params: dict) -> str:
    """A rule message with its {placeholders} filled; a missing one shows as '—' rather than failing."""
    values = defaultdict(lambda: "—", {k: ("—" if v is None else v) for k, v in params.items()})
    return template.format_map(values)


def feedback_dir(settings: Settings) -> Path:
    return settings.reports_dir / "feedback"


def _report_stem(sid: int, county: str | None, year: int | None, form: str | None) -> str:
    parts = [str(sid), county or "unnamed", str(year) if year else "", form or ""]
    return "_".join(p for p in parts if p)


def write_reports(settings: Settings, submission_ids: list[int]) -> dict:
    """Write the feedback report of each submission; returns the paths written."""
    from hrss_warehouse.warehouse import LOADER, connect

    spec = load_spec()
    folder = feedback_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with connect(settings, role=LOADER) as conn:
        subs = conn.execute(
            "SELECT submission_id, file_name, county_code, survey_year, form, outcome, failed_rules, "
            "soft_flags, received_at FROM raw.submission WHERE submission_id = ANY(%s) ORDER BY 1",
            ([int(s) for s in submission_ids],)).fetchall()
        found = conn.execute(
            "SELECT submission_id, rule_id, sheet, excel_row, column_code, value, params "
            "FROM raw.submission_finding WHERE submission_id = ANY(%s) ORDER BY submission_id, seq",
            ([int(s) for s in submission_ids],)).fetchall()
    by_sub: dict[int, list[list[str]]] = defaultdict(list)
    for sid, rule_id, sheet, row, column, value, params in found:
        rule = spec.rules[rule_id]
        params = params if isinstance(params, dict) else json.loads(params)
        by_sub[sid].append([rule_id, rule.severity, fill(rule.message_zh, params),
                            fill(rule.message_en, params),
                            sheet or "", "" if row is None else str(row), column or "",
                            "" if value is None else value])
    for sid, file_name, county, year, form, outcome, failed, soft, received in subs:
        stem = _report_stem(sid, county, year, form)
        rows = by_sub.get(sid, [])
        csv_path = folder / f"{stem}.csv"
        with csv_path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(HEADER)
            for row in rows:
                writer.writerow([safe_cell(cell) for cell in row])
        html_path = folder / f"{stem}.html"
        html_path.write_text(_html(sid, file_name, county, year, form, outcome, failed, soft, received, rows),
                             encoding="utf-8")
        written += [str(csv_path), str(html_path)]
    return {"reports": written, "submissions": len(subs), "data_docs": build_data_docs(settings)}


def _html(sid, file_name, county, year, form, outcome, failed, soft, received, rows) -> str:
    e = html.escape
    verdict = {"accepted": "已接收 / accepted", "quarantined": "已退回 / returned (quarantined)",
               "pending": "待处理 / pending"}.get(outcome, outcome)
    cells = "\n".join("<tr>" + "".join(f"<td>{e(safe_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"""<!doctype html>
<html lang="zh"><head><meta charset="utf-8"><title>审核反馈 {e(str(sid))}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:2px 6px}}</style>
</head><body>
<h1>基层平台统计调查 审核反馈 / Edit-check feedback</h1>
<p>文件 / file: {e(file_name)}<br>区划代码 / county: {e(county or '—')}　报告期 / year: {e(str(year or '—'))}
　表号 / form: {e(form or '—')}<br>收到时间 / received: {e(str(received))}<br>
结果 / outcome: <b>{e(verdict)}</b>　错误规则 / hard rules: {e(', '.join(failed) or '—')}
　提示规则 / soft flags: {e(', '.join(soft) or '—')}</p>
<table><thead><tr>{''.join(f'<th>{e(h)}</th>' for h in HEADER)}</tr></thead>
<tbody>
{cells or '<tr><td colspan="8">未发现问题 / no findings</td></tr>'}
</tbody></table></body></html>
"""


def build_data_docs(settings: Settings) -> str:
    """GX Data Docs under $HRSS_HOME/docs/gx: the suites and every stored batch run; the index page."""
    from hrss_warehouse import gx_context

    return str(gx_context.build_data_docs())
