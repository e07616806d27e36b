"""A batch of submissions checked: looked up in the registry (``submissions``), evaluated, its accepted
rows and findings written to the batch folder the load stage copies from."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from hrss_warehouse import submissions
from hrss_warehouse.check.evaluate import Evaluation, SubmissionRef, evaluate
from hrss_warehouse.check.gx_run import gx_session
from hrss_warehouse.config import Settings
from hrss_warehouse.contracts import Batch, CheckedBatch, RowsFile
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages.register import verified_file


def _work_dir(settings: Settings) -> Path:
    return settings.home / "work"


def warm_up() -> None:
    """Start GX, store the suites' Checkpoints and read the registry once, in a process about to fork its
    check workers (they inherit all three instead of paying seconds each)."""
    from hrss_warehouse.check import gx_context
    from hrss_warehouse.stages import reference

    gx_session()
    gx_context.store_spec_suites()
    reference.preload()


def parse_and_check_batch(settings: Settings, batch: Batch) -> CheckedBatch:
    """Parse and check every submission of ``batch``; write accepted rows and findings to a batch folder."""
    from hrss_warehouse.config import LOADER
    from hrss_warehouse.db import connect

    ids = [int(i) for i in batch["submission_ids"]]
    with connect(settings, role=LOADER) as conn:
        rows = submissions.to_check(conn, ids)
    stored: dict[str, Path] = {}  # a workbook's forms share one file: verify it once
    for row in rows:
        if row[1] not in stored:
            stored[row[1]] = verified_file(settings, row[1], row[6], row[2])
    subs = [SubmissionRef(*row[:6], stored[row[1]]) for row in rows]
    token = f"{datetime.now(UTC):%Y%m%dT%H%M%S}_{secrets.token_hex(3)}"
    result = evaluate(subs, run_name=f"batch {batch['batch']} {token}")  # the batch's run in Data Docs
    batch_dir = _work_dir(settings) / f"batch_{batch['batch']}_{token}"
    batch_dir.mkdir(parents=True, exist_ok=True)
    accepted = [sub.submission_id for sub in subs if result.outcome(sub.submission_id) == "accepted"]
    rows_files, row_counts = write_canonical_rows(result, accepted, batch_dir)
    summary = []
    for sub in subs:
        sid = sub.submission_id
        form_version = result.form_of.get(sid)
        summary.append({"submission_id": sid, "outcome": result.outcome(sid),
                        "failed_rules": result.failed[sid], "soft_flags": result.soft[sid],
                        "form_version": form_version[1] if form_version else None,
                        "form": sub.form, "rows": row_counts.get(sid, 0)})
    details = {str(sid): [asdict(f) for f in found] for sid, found in result.findings.items()}
    (batch_dir / "findings.json").write_text(json.dumps(details, ensure_ascii=False, default=str))
    contacts = {str(sid): people for sid, people in result.contacts.items()}
    contacts_file = batch_dir / "contacts.json"
    contacts_file.write_text(json.dumps(contacts, ensure_ascii=False))
    contacts_file.chmod(0o600)
    return {"batch": batch["batch"], "batch_dir": str(batch_dir), "submissions": summary,
            "rows_files": rows_files,
            "accepted": [e["submission_id"] for e in summary if e["outcome"] == "accepted"],
            "quarantined": {str(e["submission_id"]): e["failed_rules"] for e in summary
                            if e["outcome"] == "quarantined"},
            "soft_flags": {str(e["submission_id"]): e["soft_flags"] for e in summary if e["soft_flags"]}}


def write_canonical_rows(result: Evaluation, accepted: list[int],
                         folder: Path) -> tuple[list[RowsFile], dict[int, int]]:
    """Write the accepted submissions' rows as CSV in the raw table's column order, money in 万元.

    One file per form version for the whole batch (the load copies each with one COPY); returns the
    files ({form, path, rows}) and the number of rows of each submission.
    """
    spec = load_spec()
    files: list[RowsFile] = []
    counts: dict[int, int] = {}
    chosen = set(accepted)
    for (form, version), frame in result.frames.items():
        rows = frame[frame["submission_id"].isin(chosen)]
        if rows.empty:
            continue
        fv = spec.form(form, version)
        divisor = spec.versions[version].money_divisor
        out = {"submission_id": rows["submission_id"].astype("int64"), "source_row": rows["source_row"]}
        for column in spec.canonical_columns(form):
            if fv.column(column.name) is None:
                out[column.name] = pd.Series(pd.NA, index=rows.index, dtype=object)  # the version lacks it
            elif column.type in ("flag", "count", "enum"):
                out[column.name] = rows[column.name].astype("Int64")
            elif column.type == "money":
                out[column.name] = (rows[column.name] / divisor).round(4)
            elif column.type == "area":
                out[column.name] = rows[column.name].round(2)
            else:
                out[column.name] = rows[column.name]
        flags = {(sid, row): "{" + ",".join(rules) + "}" for sid, by_row in result.row_flags.items()
                 if sid in chosen for row, rules in by_row.items()}
        out["quality_flags"] = [flags.get((sid, row), "{}") for sid, row in
                                zip(rows["submission_id"], rows["source_row"], strict=True)]
        table = pd.DataFrame(out, index=rows.index)
        path = folder / f"rows_{form}_{version}.csv"
        # Arrow's C writer (pandas' to_csv formats cell by cell in Python): a missing value is an empty
        # unquoted field (NULL to COPY), text is quoted, numbers are written in their shortest form
        pa_csv.write_csv(pa.Table.from_pandas(table, preserve_index=False), path,
                         pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
        files.append({"form": form, "version": version, "path": str(path), "rows": len(table)})
        for sid, n in table["submission_id"].value_counts().items():
            counts[int(sid)] = int(n)
    return files, counts
