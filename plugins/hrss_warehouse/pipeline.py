"""The ingest chain as one call: discover → register → parse and check (per batch) → load → report.

The DAGs call the same stage functions as separate tasks; this module serves tests, the benchmark and
`hrss ingest`. ``reprocess_year`` re-reads a survey year's stored files with today's rules and mappings.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from hrss_warehouse import check, land, load, progress, reference, register, report
from hrss_warehouse.config import Settings
from hrss_warehouse.warehouse import LOADER, connect


def checked_batches(settings: Settings, batches: list[dict]) -> Iterator[dict]:
    """Parse and check ``batches`` on ``settings.check_workers`` processes, yielding each result as it is
    ready, so the caller loads one batch while the next ones are checked."""
    yield from progress.track(_checked(settings, batches), len(batches), "check", "batch", batch_words)


def batch_words(result: dict) -> str:
    """A checked batch in a few words, for its log line."""
    return (f"batch {result['batch']}: {len(result['accepted'])} accepted, "
            f"{len(result['quarantined'])} quarantined")


def _checked(settings: Settings, batches: list[dict]) -> Iterator[dict]:
    workers = min(settings.check_workers, len(batches))
    if workers <= 1:
        yield from (check.parse_and_check_batch(settings, batch) for batch in batches)
        return
    check.warm_up()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(check.parse_and_check_batch, settings, batch) for batch in batches]
        for future in as_completed(futures):
            yield future.result()


def ingest_folder(settings: Settings, landing: Path, min_age_s: float | None = None) -> dict:
    """Ingest every file waiting in ``landing``; returns counts (and the submissions' ids), and the
    entries left in landing with their reasons (``min_age_s`` defaults to a finished folder's)."""
    if min_age_s is None:
        min_age_s = land.default_min_age_s(settings, scheduled=False)
    scan = land.scan(settings, Path(landing), min_age_s=min_age_s)
    batches = register.register_files(settings, scan)
    left = [land.Skipped(p, land.CHANGED_WHILE_READ) for p in scan.files if Path(p).exists()]
    skipped = [asdict(s) for s in [*scan.skipped, *left]]
    totals = {"files": len(scan.files) - len(left), "skipped": skipped, "batches": len(batches),
              "accepted": 0, "quarantined": 0, "rows": 0}
    ids = [sid for batch in batches for sid in batch["submission_ids"]]
    for result in checked_batches(settings, batches):
        counts = load.load_batch(settings, result)
        for key in ("accepted", "quarantined", "rows"):
            totals[key] += counts[key]
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
    reference.ensure_loaded(settings)
    load.ensure_schema(settings)
    with connect(settings, role=LOADER) as conn:
        rows = conn.execute(
            "SELECT submission_id, county_code FROM raw.submission WHERE survey_year = %s "
            "AND outcome <> 'pending' AND (%s::text[] IS NULL OR county_code = ANY(%s)) ORDER BY 1",
            (survey_year, counties, counties)).fetchall()
    before = _state(settings, [r[0] for r in rows])
    changes = []
    rows_loaded = 0
    for result in checked_batches(settings, register.pack_batches(rows, settings.batch_submissions)):
        ids = [entry["submission_id"] for entry in result["submissions"]]
        if dry_run:
            after = {e["submission_id"]: {k: e[k] for k in ("outcome", "failed_rules", "soft_flags",
                                                            "form_version")} for e in result["submissions"]}
        else:  # as loaded: a submission the warehouse could not load is W01 whatever the checks said
            rows_loaded += load.load_batch(settings, result)["rows"]
            after = _state(settings, ids)
        changes += [{"submission_id": sid, "before": before[sid], "after": after[sid]}
                    for sid in ids if after[sid] != before[sid]]
    if not dry_run and changes:
        report.write_reports(settings, [c["submission_id"] for c in changes])
    return {"survey_year": survey_year, "submissions": len(rows), "changed": changes,
            "dry_run": dry_run, "rows_loaded": rows_loaded}
