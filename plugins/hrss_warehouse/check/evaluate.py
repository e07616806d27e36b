"""Every rule over a set of submissions: each file parsed once, each form version checked once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hrss_warehouse.check.gx_run import check_frame, run_suite
from hrss_warehouse.check.rules import (
    c04,
    c09,
    county_is_reporting,
    gx_findings,
    registry,
    reporting_counties,
)
from hrss_warehouse.check.suites import load_suite_dict
from hrss_warehouse.files import parse_file_name
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages.parse import Finding, ParsedFile, ParsedForm, normalise, parse_file

log = logging.getLogger(__name__)


def _parse_safely(path: Path, file_name: str) -> ParsedFile:
    name = parse_file_name(file_name)
    try:
        return parse_file(path, name, file_name)
    except Exception as exc:  # a reader bug on a hostile file must not stop the batch
        log.exception("unexpected error reading %s", file_name)
        return ParsedFile(name.kind if name else None, findings=[Finding("S01", params={
            "detail": f"{type(exc).__name__}: {str(exc)[:200]}"})])


@dataclass(frozen=True)
class SubmissionRef:
    """What the checks need of a registered submission (a row of raw.submission)."""

    submission_id: int
    sha256: str
    file_name: str
    county_code: str | None
    survey_year: int | None
    form: str | None
    path: Path


@dataclass
class Evaluation:
    findings: dict[int, list[Finding]]  # every fired rule per submission
    frames: dict[tuple[str, str], pd.DataFrame]  # checked rows of every submission, per form version
    form_of: dict[int, tuple[str, str]]  # submission -> (form, version), for those whose rows were read
    contacts: dict[int, dict[str, str]]  # footer names and phone per submission (personal data)
    row_flags: dict[int, dict[int, list[str]]]  # soft row rules per submission and source row
    failed: dict[int, list[str]]  # hard rule ids found in the submission's file
    soft: dict[int, list[str]]  # soft submission-level rule ids

    def outcome(self, sid: int) -> str:
        return "quarantined" if self.failed[sid] else "accepted"

    def rows(self, sid: int) -> pd.DataFrame:
        frame = self.frames[self.form_of[sid]]
        return frame[frame["submission_id"] == sid]


def _joined_cells(forms: list[ParsedForm], subs: list[SubmissionRef]) -> pd.DataFrame:
    """One frame of the cells of many submissions of one form version, with their ids."""
    names = list(forms[0].columns)
    joined: dict[str, list] = {name: [] for name in names}
    for pf in forms:
        for name in names:
            joined[name] += pf.columns[name]
    sizes = [pf.rows for pf in forms]
    data = {name: np.array(values, dtype=object) for name, values in joined.items()}
    data["submission_id"] = np.repeat([s.submission_id for s in subs], sizes)
    data["county_code"] = np.repeat(np.array([s.county_code for s in subs], dtype=object), sizes)
    data["survey_year"] = np.repeat([s.survey_year for s in subs], sizes)
    return pd.DataFrame(data)


def evaluate(subs: list[SubmissionRef], suite_for=load_suite_dict,
             run_name: str | None = None) -> Evaluation:
    """Parse each file once and run every rule over all submissions together: cells are normalised
    and checked per form version over the concatenated rows (one GX run per suite), not per file.
    ``run_name`` names the stored GX runs (a batch); None stores nothing (a dry check of files)."""
    spec = load_spec()
    files: dict[str, list[SubmissionRef]] = {}
    for sub in subs:
        files.setdefault(sub.sha256, []).append(sub)
    meta = {sub.submission_id: sub for sub in subs}
    findings: dict[int, list[Finding]] = {sid: [] for sid in meta}
    parsed_forms: dict[int, ParsedForm] = {}
    for members in files.values():
        first = members[0]
        parsed = _parse_safely(first.path, first.file_name)
        sub_of_form = {m.form: m.submission_id for m in members}
        for m in members:
            findings[m.submission_id] += [f for f in parsed.findings if f.form in (None, m.form)]
        if first.county_code and first.survey_year and not county_is_reporting(
                first.county_code, first.survey_year):
            for m in members:
                findings[m.submission_id].append(Finding("S07", params={
                    "county_code": first.county_code, "survey_year": first.survey_year}))
        for form, pf in parsed.forms.items():
            if sub_of_form.get(form) is not None:
                parsed_forms[sub_of_form[form]] = pf
    sheets = {sid: pf.sheet for sid, pf in parsed_forms.items()}
    # soft row rules flag the offending rows (quality_flags) instead of quarantining the file
    row_soft_rules = {r.id for r in spec.rules.values() if not r.is_hard and r.scope == "row"}
    row_flags: dict[int, dict[int, list[str]]] = {sid: {} for sid in parsed_forms}
    by_version: dict[tuple[str, str], list[int]] = {}
    for sid, pf in parsed_forms.items():
        by_version.setdefault((pf.form, pf.version), []).append(sid)
    frames = {}
    for (form, version), sids in by_version.items():
        fv = spec.form(form, version)
        cells = _joined_cells([parsed_forms[sid] for sid in sids], [meta[sid] for sid in sids])
        frame = check_frame(normalise(cells, fv, keep=("submission_id", "county_code", "survey_year")), fv)
        frame.attrs["form"] = form
        frames[form, version] = frame
        found: list[tuple[int, Finding]] = []
        if not frame.empty:
            # GX: the row and column rules, one run over every submission of this form version
            found += gx_findings(run_suite(frame, suite_for(form, version), run_name), frame, fv)
        # plain Python: C04, C09, R01, R02
        if fv.level == "county":
            found += c04(frame, {sid: (meta[sid].county_code, sheets[sid]) for sid in sids})
        totals = {sid: (parsed_forms[sid].total_row, parsed_forms[sid].total) for sid in sids
                  if parsed_forms[sid].total is not None}
        found += c09(frame, fv, totals, {sid: sheets[sid] for sid in sids})
        # registry rules need a real county (S07 already answers for the others)
        reporting = pd.Series(False, index=frame.index)
        for year in frame["survey_year"].unique():
            counties = reporting_counties(int(year))
            reporting |= frame["survey_year"].eq(year) & frame["county_code"].isin(counties)
        found += registry(frame[reporting], fv.level, sheets)
        for sid, finding in found:
            finding.sheet = sheets[sid]
            findings[sid].append(finding)
            if finding.rule_id in row_soft_rules:
                flags = row_flags[sid].setdefault(finding.row, [])
                if finding.rule_id not in flags:
                    flags.append(finding.rule_id)
    # -- any hard finding quarantines every form of the file
    hard_in_file: dict[str, bool] = {}
    for sid, found_rules in findings.items():
        hard_in_file[meta[sid].sha256] = hard_in_file.get(meta[sid].sha256, False) or any(
            spec.rule(f.rule_id).is_hard for f in found_rules)
    for sid in meta:
        # a sheet left unread because another part of the file already failed needs no rule of its own
        if sid not in parsed_forms and not hard_in_file[meta[sid].sha256]:
            # nothing could be read for this form although no rule fired: never accept it silently
            findings[sid].append(Finding("S01", form=meta[sid].form,
                                         params={"detail": "no rows could be read"}))
    hard_by_file: dict[str, set[str]] = {}
    for sid, found_rules in findings.items():
        hard_by_file.setdefault(meta[sid].sha256, set()).update(
            f.rule_id for f in found_rules if spec.rule(f.rule_id).is_hard)
    failed = {sid: sorted(hard_by_file[meta[sid].sha256]) for sid in meta}
    soft = {sid: sorted({f.rule_id for f in findings[sid] if not spec.rule(f.rule_id).is_hard
                         and spec.rule(f.rule_id).scope == "submission"}) for sid in meta}
    return Evaluation(findings, frames, {sid: (pf.form, pf.version) for sid, pf in parsed_forms.items()},
                      {sid: pf.contacts for sid, pf in parsed_forms.items() if pf.contacts},
                      row_flags, failed, soft)
