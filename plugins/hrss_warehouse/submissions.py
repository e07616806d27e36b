"""``raw.submission``, the registry of every return's forms, read and written here only.

Register inserts a row per form of a stored file; the checks read what they need to find and verify the
file; load records each outcome and where the file now lies; reprocess, the reports and a restore read
or repoint the rows. Each function works inside the caller's connection or cursor (and transaction).
"""

from __future__ import annotations

import json
from typing import Any

from hrss_warehouse.contracts import SubmissionOutcome

# (sha256, size_bytes, file_name, county_code, survey_year, form, revision, received_at, archived_path)
INSERT = ("INSERT INTO raw.submission (sha256, size_bytes, file_name, county_code, survey_year, form, "
          "revision, received_at, archived_path) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)")


def insert(cur: Any, rows: list[tuple]) -> None:
    """One row per form of each newly stored file (columns as ``INSERT`` lists them)."""
    cur.executemany(INSERT, rows)


def pending(conn: Any) -> list[tuple[int, str | None]]:
    """(submission_id, county_code) of every submission registered but not yet checked and loaded."""
    return conn.execute("SELECT submission_id, county_code FROM raw.submission WHERE outcome = 'pending' "
                        "ORDER BY submission_id").fetchall()


def stored_paths(conn: Any, checksums: list[str]) -> dict[str, str]:
    """Where each already-registered file of these checksums was stored (its first submission's path)."""
    return dict(conn.execute(
        "SELECT DISTINCT ON (sha256) sha256, archived_path FROM raw.submission WHERE sha256 = ANY(%s) "
        "ORDER BY sha256, submission_id", (checksums,)).fetchall())


def to_check(conn: Any, ids: list[int]) -> list[tuple]:
    """(submission_id, sha256, file_name, county_code, survey_year, form, archived_path) of ``ids``."""
    return conn.execute(
        "SELECT submission_id, sha256, file_name, county_code, survey_year, form, archived_path "
        "FROM raw.submission WHERE submission_id = ANY(%s) ORDER BY submission_id", (ids,)).fetchall()


def lock_for_load(cur: Any, ids: list[int]) -> dict[int, tuple[str, str, str | None]]:
    """submission_id -> (sha256, archived_path, form) of ``ids``, locked until the load commits."""
    return {row[0]: row[1:] for row in cur.execute(
        "SELECT submission_id, sha256, archived_path, form FROM raw.submission "
        "WHERE submission_id = ANY(%s) ORDER BY submission_id FOR UPDATE", (ids,))}


def record_outcomes(cur: Any, outcomes: list[SubmissionOutcome]) -> None:
    """Each submission's outcome, rule ids, soft flags and form version, checked now."""
    cur.execute(
        "UPDATE raw.submission s SET outcome = u.outcome, "
        "failed_rules = ARRAY(SELECT jsonb_array_elements_text(u.failed_rules)), "
        "soft_flags = ARRAY(SELECT jsonb_array_elements_text(u.soft_flags)), "
        "form_version = u.form_version, checked_at = now() "
        "FROM jsonb_to_recordset(%s::jsonb) AS u(submission_id bigint, outcome text, "
        "failed_rules jsonb, soft_flags jsonb, form_version text) "
        "WHERE s.submission_id = u.submission_id",
        (json.dumps([{k: e[k] for k in ("submission_id", "outcome", "failed_rules", "soft_flags",
                                         "form_version")} for e in outcomes]),))


def move_files(cur: Any, checksums: list[str], targets: list[str]) -> None:
    """The files of these checksums now lie at ``targets`` (archive/ or quarantine/)."""
    cur.execute("UPDATE raw.submission s SET archived_path = m.target FROM unnest(%s::text[], "
                "%s::text[]) AS m(sha256, target) WHERE s.sha256 = m.sha256", (checksums, targets))


def file_names(cur: Any, checksum: str) -> list[str]:
    """Every name a file was sent under."""
    return [row[0] for row in cur.execute("SELECT DISTINCT file_name FROM raw.submission WHERE sha256 = %s",
                                          (checksum,)).fetchall()]


def states(conn: Any, ids: list[int]) -> dict[int, dict]:
    """submission_id -> its outcome, failed rules, soft flags and form version."""
    rows = conn.execute("SELECT submission_id, outcome, failed_rules, soft_flags, form_version "
                        "FROM raw.submission WHERE submission_id = ANY(%s)", (ids,)).fetchall()
    return {r[0]: {"outcome": r[1], "failed_rules": list(r[2]), "soft_flags": list(r[3]),
                   "form_version": r[4]} for r in rows}


def of_year(conn: Any, survey_year: int, counties: list[str] | None) -> list[tuple[int, str | None]]:
    """(submission_id, county_code) of the year's checked submissions (of ``counties`` only, if given)."""
    return conn.execute(
        "SELECT submission_id, county_code FROM raw.submission WHERE survey_year = %s "
        "AND outcome <> 'pending' AND (%s::text[] IS NULL OR county_code = ANY(%s)) ORDER BY 1",
        (survey_year, counties, counties)).fetchall()


def for_reports(conn: Any, ids: list[int]) -> list[tuple]:
    """(submission_id, file_name, county_code, survey_year, form, outcome, failed_rules, soft_flags,
    received_at) of ``ids``: what a feedback report says of each."""
    return conn.execute(
        "SELECT submission_id, file_name, county_code, survey_year, form, outcome, failed_rules, "
        "soft_flags, received_at FROM raw.submission WHERE submission_id = ANY(%s) ORDER BY 1",
        (ids,)).fetchall()


def relocate(conn: Any, old_prefix: str, new_prefix: str) -> None:
    """Repoint stored paths under ``old_prefix`` to ``new_prefix`` (a backup restored elsewhere)."""
    conn.execute("UPDATE raw.submission SET archived_path = %s || substr(archived_path, %s) "
                 "WHERE starts_with(archived_path, %s)", (new_prefix, len(old_prefix) + 1, old_prefix))
