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
import re
from collections import Counter, defaultdict
from pathlib import Path

from hrss_warehouse import submissions
from hrss_warehouse.config import Settings
from hrss_warehouse.spec import WAREHOUSE_FAILURE, Rule, load_spec

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HEADER = ["rule_id", "severity", "message_zh", "message_en", "sheet", "row", "column", "value"]
# What a report echoes of a file is capped: a 45 MB one-line CSV must not make 94 MB reports.
MAX_VALUE_CHARS = 200
MAX_FINDINGS_PER_RULE = 100
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def safe_cell(value: object) -> str:
    """A cell value Excel will not evaluate: formula-looking text gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def clip(value: object) -> str:
    """A value as the report echoes it: at most MAX_VALUE_CHARS characters, and says when it is cut."""
    text = "" if value is None else str(value)
    if len(text) <= MAX_VALUE_CHARS:
        return text
    return f"{text[:MAX_VALUE_CHARS]}…（共 {len(text):,} 字符/characters）"


def placeholders(rule: Rule) -> set[str]:
    """The rule's placeholders: the {names} both its messages use. Other braces are the message's own
    text (S02's English shows the pattern `{county_code}_{year}…` that the Chinese spells out)."""
    return set(_PLACEHOLDER.findall(rule.message_zh)) & set(_PLACEHOLDER.findall(rule.message_en))


def fill(template: str, params: dict, names: set[str] | None = None) -> str:
    """A rule message with its placeholders (``names``; every {name} when None) filled in one pass, so
    a value is never read as a template; a missing one shows as '—' rather than failing."""
    def value(match: re.Match) -> str:
        if names is not None and match[1] not in names:
            return match[0]
        found = params.get(match[1])
        return "—" if found is None else clip(found)
    return _PLACEHOLDER.sub(value, template)


def message(rule: Rule, params: dict) -> tuple[str, str]:
    """The rule's message in Chinese and English with its placeholders filled."""
    names = placeholders(rule)
    return fill(rule.message_zh, params, names), fill(rule.message_en, params, names)


def feedback_dir(settings: Settings) -> Path:
    return settings.reports_dir / "feedback"


def _report_stem(sid: int, county: str | None, year: int | None, form: str | None) -> str:
    parts = [str(sid), county or "unnamed", str(year) if year else "", form or ""]
    return "_".join(p for p in parts if p)


def write_reports(settings: Settings, submission_ids: list[int]) -> dict:
    """Write the feedback report of each submission; returns the paths written."""
    from hrss_warehouse.config import LOADER
    from hrss_warehouse.db import connect

    spec = load_spec()
    folder = feedback_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with connect(settings, role=LOADER) as conn:
        subs = submissions.for_reports(conn, [int(s) for s in submission_ids])
        found = conn.execute(
            "SELECT submission_id, rule_id, sheet, excel_row, column_code, value, params "
            "FROM raw.submission_finding WHERE submission_id = ANY(%s) ORDER BY submission_id, seq",
            ([int(s) for s in submission_ids],)).fetchall()
    by_sub: dict[int, list[list[str]]] = defaultdict(list)
    per_rule: Counter[tuple[int, str]] = Counter()
    for sid, rule_id, sheet, row, column, value, params in found:
        per_rule[sid, rule_id] += 1
        if per_rule[sid, rule_id] > MAX_FINDINGS_PER_RULE:
            continue
        rule = spec.rule(rule_id)
        params = params if isinstance(params, dict) else json.loads(params)
        by_sub[sid].append([rule_id, rule.severity, *message(rule, params),
                            sheet or "", "" if row is None else str(row), column or "", clip(value)])
    for (sid, rule_id), count in sorted(per_rule.items()):
        if count > MAX_FINDINGS_PER_RULE:
            rest = count - MAX_FINDINGS_PER_RULE
            by_sub[sid].append([rule_id, spec.rule(rule_id).severity,
                                f"另有 {rest:,} 条 {rule_id} 未列出",
                                f"{rest:,} more {rule_id} findings not shown",
                                "", "", "", ""])
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
    if WAREHOUSE_FAILURE.id in failed:  # the warehouse failed, not the county: nothing to correct
        verdict = ("仓库处理失败，不是贵县文件的问题，无需重报 / the warehouse failed, not the county's "
                   "file: nothing to send again")
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
    from hrss_warehouse.check import gx_context

    return str(gx_context.build_data_docs())
