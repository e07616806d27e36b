"""The ingest chain as one call: discover → register → parse and check (per batch) → load → report.

The DAGs call the same stage functions as separate tasks; this module serves tests, the benchmark and
`hrss ingest`. ``reprocess_year`` re-reads a survey year's stored files with today's rules and mappings.
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from pathlib import Path

from hrss_warehouse import check, db, graceful, progress, submissions
from hrss_warehouse.config import LOADER, Settings
from hrss_warehouse.contracts import Batch, CheckedBatch
from hrss_warehouse.db import connect
from hrss_warehouse.stages import land, load, reference, register, report


def checked_batches(settings: Settings, batches: list[Batch],
                    stop: graceful.StopRequest | None = None) -> Iterator[CheckedBatch]:
    """Parse and check ``batches`` on ``settings.check_workers`` processes, yielding each result as it is
    ready, so the caller loads one batch while the next ones are checked. Once ``stop`` is requested, no
    further batch is started."""
    yield from progress.track(_checked(settings, batches, stop), len(batches), "check", "batch",
                              batch_words)


def batch_words(result: CheckedBatch) -> str:
    """A checked batch in a few words, for its log line."""
    return (f"batch {result['batch']}: {len(result['accepted'])} accepted, "
            f"{len(result['quarantined'])} quarantined")


def _checked(settings: Settings, batches: list[Batch],
             stop: graceful.StopRequest | None) -> Iterator[CheckedBatch]:
    workers = min(settings.check_workers, len(batches))
    if workers <= 1:
        for batch in batches:
            if stop is not None and stop.requested:
                return
            yield check.parse_and_check_batch(settings, batch)
        return
    check.warm_up()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                             initializer=graceful.ignore_sigterm) as pool:
        futures = [pool.submit(check.parse_and_check_batch, settings, batch) for batch in batches]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # the caller stopped early: the batches not started are not checked
            for future in futures:
                future.cancel()


def ingest_folder(settings: Settings, landing: Path, min_age_s: float | None = None) -> dict:
    """Ingest every file waiting in ``landing``; returns counts (and the submissions' ids), and the
    entries left in landing with their reasons (``min_age_s`` defaults to a finished folder's).

    SIGTERM stops it between two register chunks or two loaded batches (``graceful.Stopped``).
    """
    if min_age_s is None:
        min_age_s = land.default_min_age_s(settings, scheduled=False)
    scan = land.scan(settings, Path(landing), min_age_s=min_age_s)
    with graceful.sigterm_stops() as stop:
        batches = register.register_files(settings, scan, stop=lambda: stop.requested)
        left = [land.Skipped(p, land.CHANGED_WHILE_READ) for p in scan.files if Path(p).exists()]
        totals = load_batches(settings, batches, stop)
    if stop.requested:
        registered = len(scan.files) - len(left)
        raise graceful.Stopped(f"stopped on SIGTERM: {registered} of {len(scan.files)} files "
                               f"registered, {totals['batches_loaded']} of {len(batches)} batches loaded "
                               f"({totals['rows']} rows); every file is in landing, archive or quarantine "
                               "and the next run loads the rest")
    del totals["batches_loaded"]
    skipped = [asdict(s) for s in [*scan.skipped, *left]]
    return {"files": len(scan.files) - len(left), "skipped": skipped, "batches": len(batches), **totals}


def load_batches(settings: Settings, batches: list[Batch], stop: graceful.StopRequest) -> dict:
    """Check and load registered ``batches`` (until ``stop`` is requested), then write the feedback
    reports of the submissions loaded; returns counts and their ids."""
    totals = {"accepted": 0, "quarantined": 0, "rows": 0, "batches_loaded": 0}
    loaded: set[int] = set()
    with contextlib.closing(checked_batches(settings, batches, stop)) as checked:
        for result in checked:
            if stop.requested:
                break
            counts = load.load_batch(settings, result)
            loaded.update(entry["submission_id"] for entry in result["submissions"])
            totals["batches_loaded"] += 1
            for key in ("accepted", "quarantined", "rows"):
                totals[key] += counts[key]
    ids = [sid for batch in batches for sid in batch["submission_ids"] if sid in loaded]
    reports = report.write_reports(settings, ids) if ids else {"reports": []}
    return {**totals, "submission_ids": ids, "reports": len(reports["reports"])}


def _state(settings: Settings, ids: list[int]) -> dict[int, dict]:
    with connect(settings, role=LOADER) as conn:
        return submissions.states(conn, ids)


def reprocess_year(settings: Settings, survey_year: int, counties: list[str] | None = None,
                   dry_run: bool = False) -> dict:
    """Re-check (and unless ``dry_run`` reload) a year's stored submissions; report what changed."""
    reference.ensure_loaded(settings)
    db.ensure_raw_schema(settings)
    with connect(settings, role=LOADER) as conn:
        rows = submissions.of_year(conn, survey_year, counties)
    before = _state(settings, [r[0] for r in rows])
    changes = []
    rows_loaded = done = 0
    batches = register.pack_batches(rows, settings.batch_submissions)
    with (graceful.sigterm_stops() as stop,
          contextlib.closing(checked_batches(settings, batches, stop)) as checked):
        for result in checked:
            if stop.requested:
                break
            ids = [entry["submission_id"] for entry in result["submissions"]]
            if dry_run:
                after = {e["submission_id"]: {k: e[k] for k in ("outcome", "failed_rules", "soft_flags",
                                                                "form_version")}
                         for e in result["submissions"]}
            else:  # as loaded: a submission the warehouse could not load is W01 whatever the checks said
                rows_loaded += load.load_batch(settings, result)["rows"]
                after = _state(settings, ids)
            changes += [{"submission_id": sid, "before": before[sid], "after": after[sid]}
                        for sid in ids if after[sid] != before[sid]]
            done += 1
    if not dry_run and changes:
        report.write_reports(settings, [c["submission_id"] for c in changes])
    if stop.requested:
        raise graceful.Stopped(f"stopped on SIGTERM: {done} of {len(batches)} batches of {survey_year} "
                               "reprocessed, each one whole; reprocess the year again to finish")
    return {"survey_year": survey_year, "submissions": len(rows), "changed": changes,
            "dry_run": dry_run, "rows_loaded": rows_loaded}
