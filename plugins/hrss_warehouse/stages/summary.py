"""The published marts at a glance: a console summary and an HTML page with charts.

Reads only what BI sees (schema `marts`, as `bi_reader`), so the summary cannot show anything a
dashboard could not. Charts are inline SVG: the page is one self-contained file.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import psycopg

from hrss_warehouse.config import Settings
from hrss_warehouse.stages import freshness

LEVELS = ("county", "township", "village")
SOURCE_COLOURS = {"central": "#4e79a7", "provincial": "#f28e2b", "municipal": "#59a14f",
                  "county": "#e15759", "unallocated": "#bab0ac"}
LEVEL_COLOURS = {"county": "#4e79a7", "township": "#f28e2b", "village": "#59a14f"}


@dataclass(frozen=True)
class Marts:
    provinces: dict[str, str]  # 6-digit code -> name
    coverage: list[dict]
    funding: list[dict]
    staff: list[dict]
    reconciliation: list[dict]
    submissions: dict[str, int]
    return_status: list[dict]


def _rows(conn: psycopg.Connection, query: str) -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(query).fetchall()


def read_marts(settings: Settings) -> Marts:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        names = _rows(conn, """
            select distinct on (province_code) province_code, region_name
            from marts.dim_region where division_level = 'province'
            order by province_code, valid_from_year desc""")
        coverage = _rows(conn, """
            select survey_year, left(region_code, 6) as province_code, platform_level, units_reported,
                   units_with_platform, coverage_rate, standardized_rate, counties_expected,
                   counties_reported
            from marts.mart_coverage where region_level = 'province'
            order by survey_year, region_code, platform_level""")
        funding = _rows(conn, """
            select survey_year, left(region_code, 6) as province_code, funding_source,
                   sum(amount_wan) as amount_wan
            from marts.mart_funding where region_level = 'province'
            group by 1, 2, 3 order by 1, 2, 3""")
        staff = _rows(conn, """
            select survey_year, left(region_code, 6) as province_code, platform_level, platforms,
                   staff_total, staff_per_platform, persons_served
            from marts.mart_staff where region_level = 'province'
            order by survey_year, region_code, platform_level""")
        reconciliation = _rows(conn, """
            select fact_id, province_code, metric, unit, published_value, warehouse_value, comparable,
                   status, note
            from marts.mart_published_reconciliation order by fact_id""")
        submissions = dict(conn.execute(
            "select outcome, count(*) from marts.mart_submissions group by outcome").fetchall())
        return_status = _rows(conn, """
            select survey_year, status, count(*) as counties, count(*) filter (where is_late) as late
            from marts.mart_return_status group by 1, 2 order by 1, 2""")
    return Marts({r["province_code"]: r["region_name"] for r in names}, coverage, funding, staff,
                 reconciliation, submissions, return_status)


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) or hasattr(value, "as_integer_ratio"):
        number = float(value)
        return f"{number:,.0f}" if number.is_integer() and abs(number) >= 1 else f"{number:,.{digits}f}"
    return str(value)


def _pct(value: object) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _figure(row: dict, column: str) -> str:
    """A reconciliation figure as a person reads it: a ratio (a fraction in the marts) as a percentage."""
    return _pct(row[column]) if row["unit"] == "ratio" else _fmt(row[column], 4)


def _with_data(coverage: list[dict], year: int) -> list[str]:
    """The provinces that reported in a survey year (the marts roll up every province of the registry)."""
    return sorted({r["province_code"] for r in coverage if r["survey_year"] == year and r["units_reported"]})


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def console_summary(marts: Marts, receipts: freshness.Freshness | None = None) -> str:
    latest = max((r["survey_year"] for r in marts.coverage), default=None)
    parts = [f"Submissions: {marts.submissions.get('accepted', 0)} accepted, "
             f"{marts.submissions.get('quarantined', 0)} quarantined"]
    if receipts is not None:
        parts.append(f"Receipts: {receipts.line()}")
    parts.append("Return status by survey year: " + "; ".join(
        f"{r['survey_year']} {r['status']} {r['counties']}" + (f" ({r['late']} late)" if r["late"] else "")
        for r in marts.return_status))
    if latest is not None:
        rows = [[f"{marts.provinces.get(r['province_code'], r['province_code'])}", r["platform_level"],
                 _fmt(r["units_reported"]), _pct(r["coverage_rate"]), _pct(r["standardized_rate"]),
                 f"{r['counties_reported']}/{r['counties_expected']}"]
                for r in marts.coverage if r["survey_year"] == latest and r["units_reported"]]
        parts.append(f"\nCoverage by province, survey year {latest}\n" + _table(
            ["province", "level", "units", "coverage", "standardized", "counties"], rows))
    rec = [[r["fact_id"], marts.provinces.get(r["province_code"], r["province_code"]), r["metric"],
            _figure(r, "published_value"), _figure(r, "warehouse_value"), r["comparable"], r["status"]]
           for r in marts.reconciliation]
    parts.append("\nReconciliation with the published figures\n" + _table(
        ["fact", "province", "metric", "published", "warehouse", "comparable", "status"], rec))
    counts: dict[str, int] = {}
    for r in marts.reconciliation:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts.append("Reconciliation: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(parts)


# -- HTML ----------------------------------------------------------------------------------------------


def _bar_chart(title: str, groups: list[str], series: dict[str, list[float | None]], colours: dict[str, str],
               *, stacked: bool = False, percent: bool = False, width: int = 860, height: int = 260) -> str:
    """A grouped (or stacked) bar chart as inline SVG; group labels turn when they would not fit flat."""
    left, top = 60, 30
    plot_w = width - left - 150
    slot = plot_w / max(len(groups), 1)
    longest = max((_label_width(g) for g in groups), default=0.0)
    turned = longest > slot * 0.9
    bottom = (24 + longest * 0.71) if turned else 40  # sin 45° of the label's length, below the axis
    height += int(bottom) - 40
    plot_h = height - bottom - top
    totals = ([sum(float(v or 0) for v in vals) for vals in zip(*series.values(), strict=True)] if stacked
              else [float(v or 0) for vals in series.values() for v in vals])
    peak = max([*totals, 1e-9]) if not percent else 1.0
    bar = slot * 0.8 / (1 if stacked else max(len(series), 1))
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{left}" y="18" font-weight="bold">{html.escape(title)}</text>']
    for tick in range(5):
        value = peak * tick / 4
        y = top + plot_h - plot_h * tick / 4
        label = f"{value:.0%}" if percent else f"{value:,.0f}"
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{label}</text>')
    for g, group in enumerate(groups):
        base = 0.0
        for s, (name, values) in enumerate(series.items()):
            value = values[g]
            if value is None:
                continue
            h = plot_h * float(value) / peak
            x = left + g * slot + slot * 0.1 + (0 if stacked else s * bar)
            y = top + plot_h - h - (plot_h * base / peak if stacked else 0)
            shown = f"{float(value):.1%}" if percent else f"{float(value):,.1f}"
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                       f'fill="{colours.get(name, "#888")}"><title>{html.escape(group)} {name}: {shown}'
                       "</title></rect>")
            if stacked:
                base += float(value)
        x, y = left + g * slot + slot / 2, top + plot_h + 16
        placement = (f'text-anchor="end" transform="rotate(-45 {x:.1f} {y})"' if turned
                     else 'text-anchor="middle"')
        out.append(f'<text x="{x:.1f}" y="{y}" {placement} font-size="12">{html.escape(group)}</text>')
    for s, name in enumerate(series):
        y = top + 14 * s
        out.append(f'<rect x="{left + plot_w + 16}" y="{y}" width="10" height="10" '
                   f'fill="{colours.get(name, "#888")}"/><text x="{left + plot_w + 30}" y="{y + 9}" '
                   f'font-size="12">{html.escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _label_width(text: str, font_px: float = 12) -> float:
    """Rough rendered width: a CJK character is a full em, anything else about half."""
    return sum(font_px if ord(ch) > 0x2E80 else font_px * 0.55 for ch in text)


def _by(rows: list[dict], year: int, key: str, value: str, provinces: list[str]) -> dict[str, list]:
    series: dict[str, list] = {}
    lookup = {(r["province_code"], r[key]): r[value] for r in rows if r["survey_year"] == year}
    for name in sorted({r[key] for r in rows if r["survey_year"] == year},
                       key=lambda n: (LEVELS + tuple(SOURCE_COLOURS)).index(n) if n in LEVELS + tuple(
                           SOURCE_COLOURS) else 99):
        series[name] = [lookup.get((p, name)) for p in provinces]
    return series


def html_summary(marts: Marts, receipts: freshness.Freshness | None = None) -> str:
    years = sorted({r["survey_year"] for r in marts.coverage if r["units_reported"]})
    sections = []
    for year in years:
        codes = _with_data(marts.coverage, year)
        names = [marts.provinces.get(c, c) for c in codes]
        sections.append(f"<h2>Survey year {year}</h2>")
        sections.append(_bar_chart(f"Platform coverage by province, {year}", names,
                                   _by(marts.coverage, year, "platform_level", "coverage_rate", codes),
                                   LEVEL_COLOURS, percent=True))
        sections.append(_bar_chart(f"Funding by source (万元), {year}", names,
                                   _by(marts.funding, year, "funding_source", "amount_wan", codes),
                                   SOURCE_COLOURS, stacked=True))
        sections.append(_bar_chart(f"Staff per platform, {year}", names,
                                   _by(marts.staff, year, "platform_level", "staff_per_platform", codes),
                                   LEVEL_COLOURS))
    rec_rows = "".join(
        "<tr class='{cls}'>{cells}</tr>".format(
            cls=html.escape(r["status"]),
            cells="".join(f"<td>{html.escape(v)}</td>" for v in (
                r["fact_id"], marts.provinces.get(r["province_code"], r["province_code"]), r["metric"],
                _figure(r, "published_value"), _figure(r, "warehouse_value"), r["comparable"], r["status"],
                r["note"] or "")))
        for r in marts.reconciliation)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>JCPT survey warehouse — summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; text-align: left; }}
tr.match td:nth-child(7) {{ color: #1a7f37; }} tr.differs td:nth-child(7) {{ color: #b42318; }}
tr.not_comparable td:nth-child(7) {{ color: #777; }}
</style></head><body>
<h1>Grassroots HRSS platform survey (JCPT) — published marts</h1>
<p>Submissions: {marts.submissions.get('accepted', 0)} accepted,
{marts.submissions.get('quarantined', 0)} quarantined. Source: schema <code>marts</code>, read as
<code>bi_reader</code>.</p>
{_receipts_html(receipts)}{''.join(sections)}
<h2>Reconciliation with the published figures</h2>
<table><tr><th>fact</th><th>province</th><th>metric</th><th>published</th><th>warehouse</th>
<th>comparable</th><th>status</th><th>note</th></tr>{rec_rows}</table>
</body></html>
"""


def _receipts_html(receipts: freshness.Freshness | None) -> str:
    if receipts is None:
        return ""
    colour = "#b42318" if receipts.warns else "#555"
    return f"<p style='color: {colour}'>Receipts: {html.escape(receipts.line())}</p>\n"


def write_summary(settings: Settings) -> tuple[str, Path]:
    """Print-ready text and the path of the written HTML page; both say whether the receipts are fresh
    during the collection season (``freshness``)."""
    marts = read_marts(settings)
    receipts = freshness.check(settings)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    page = settings.reports_dir / "summary.html"
    page.write_text(html_summary(marts, receipts), encoding="utf-8")
    return console_summary(marts, receipts), page
