"""What the stages hand each other (through XCom in Airflow, as plain JSON): declared once, here.

register → ``Batch`` → check → ``CheckedBatch`` → load → ``LoadCounts``.
"""

from __future__ import annotations

from typing import TypedDict


class Batch(TypedDict):
    """Submissions checked together: whole provinces, or one province's county range (``pack_batches``)."""

    batch: str  # "37", "11-13" (provinces), "410102-411725" (a county range) or "unnamed"
    submission_ids: list[int]


class RowsFile(TypedDict):
    """One form version's accepted rows of a checked batch, as CSV in the raw table's column order."""

    form: str
    version: str
    path: str
    rows: int


class SubmissionOutcome(TypedDict):
    submission_id: int
    outcome: str  # "accepted" or "quarantined"
    failed_rules: list[str]
    soft_flags: list[str]
    form_version: str | None
    form: str | None
    rows: int


class CheckedBatch(TypedDict):
    """A batch after the checks: its folder (rows, findings, contacts) and each submission's outcome."""

    batch: str
    batch_dir: str
    submissions: list[SubmissionOutcome]
    rows_files: list[RowsFile]
    accepted: list[int]
    quarantined: dict[str, list[str]]  # submission id (text: a JSON key) -> hard rule ids
    soft_flags: dict[str, list[str]]


class LoadCounts(TypedDict):
    """What one load committed."""

    accepted: int
    quarantined: int
    rows: int
