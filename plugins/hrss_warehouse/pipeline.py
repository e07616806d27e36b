"""The ingest chain as one call: discover → register → parse and check (per batch) → load → report.

The DAGs call the same stage functions as separate tasks; this module serves tests, the benchmark and
`hrss ingest`. ``reprocess_year`` re-reads a survey year's stored files with today's rules and mappings.
"""

from __future__ import annotations

from pathlib import Path

from hrss_warehouse import check, land, load, register, report
from hrss_warehouse.config import Settings
from hrss_warehouse.warehouse import LOADER, connect


def ingest_folder(settings: Settings, landing: Path) -> dict:
    """Ingest every file waiting in ``landing``; returns counts (and the submissions' ids)."""
    paths = land.discover(settings, Path(landing))
    batches = register.register_files(settings, paths)
    totals = {"files": len(paths), "batches": len(batches), "accepted": 0, "quarantined": 0, "rows": 0}
    ids: list[int] = []
    for batch in batches:
        result = check.parse_and_check_batch(settings, batch)
        counts = load.load_batch(settings, result)
        for key in ("accepted", "quarantined", "rows"):
            totals[key] += counts[key]
        ids += batch["submission_ids"]
    reports = report.write_reports(settings, ids) if ids else {"reports": []}
    totals.update(submission_ids=ids, reports=len(reports["reports"]))
    return totals


def _state(settings: Settings, ids: list[int]) -> dict[int, dict]:
    with connect(settings, role=LOADER) as conn:
        rows = conn.execute(
            "SELECT submission_id, outcome, failed_rules, soft_flags, form_version FROM raw.submission "
            "WHERE submission_id = ANY(%s)", (ids,)).fetchall()
    return {r[0]: {"outcome": r[1], "failed_rules": list(r[2]), "soft_flags": list(r[3]),
                   "form_version": r[4]} for r in rows}


def reprocess_year(settings: Settings, survey_year: int, counties: list[str] | None = None,
                   dry_run: bool = False) -> dict:
    """Re-check (and unless ``dry_run`` reload) a year's stored submissions; report what changed."""
    load.ensure_schema(settings)
    with connect(settings, role=LOADER) as conn:
        rows = conn.execute(
            "SELECT submission_id, county_code FROM raw.submission WHERE survey_year = %s "
            "AND outcome <> 'pending' AND (%s::text[] IS NULL OR county_code = ANY(%s)) ORDER BY 1",
            (survey_year, counties, counties)).fetchall()
    batches: dict[str, list[int]] = {}
    for sid, county in rows:
        batches.setdefault(county[:2], []).append(sid)
    before = _state(settings, [r[0] for r in rows])
    changes = []
    rows_loaded = 0
    for key, ids in sorted(batches.items()):
        result = check.parse_and_check_batch(settings, {"batch": key, "submission_ids": ids})
        for entry in result["submissions"]:
            after = {k: entry[k] for k in ("outcome", "failed_rules", "soft_flags", "form_version")}
            if after != before[entry["submission_id"]]:
                changes.append({"submission_id": entry["submission_id"],
                                "before": before[entry["submission_id"]], "after": after})
        if not dry_run:
            rows_loaded += load.load_batch(settings, result)["rows"]
    if not dry_run and changes:
        report.write_reports(settings, [c["submission_id"] for c in changes])
    return {"survey_year": survey_year, "submissions": len(rows), "changed": changes,
            "dry_run": dry_run, "rows_loaded": rows_loaded}
