"""`hrss check-file`: what the warehouse would do with a return file, without loading anything.

The file is parsed and checked by the same code as a nightly run (``check.evaluate``: every structure,
content and registry rule, the registry read from the committed file), nothing is written to the
warehouse or moved. The history rules H01/H02 compare with returns in force, so only the warehouse can
evaluate them; the answer says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hrss_warehouse.check.evaluate import SubmissionRef, evaluate
from hrss_warehouse.files import parse_file_name, printable_name, sha256_of
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages.register import forms_of
from hrss_warehouse.stages.report import fill

HISTORY_NOTE = "history rules H01/H02 need the returns in force and are checked only in the warehouse"


@dataclass
class FileVerdict:
    """The answer for one path: outcome (accepted / quarantined / not a file), rule ids, feedback rows."""

    path: str
    outcome: str
    failed_rules: list[str]
    soft_flags: list[str]
    feedback: list[list[str]]  # rows of report.HEADER, as the feedback report would hold them
    problem: str | None = None  # why the path is not a file that could be checked

    def render(self) -> str:
        """One line for the file, then one per feedback row (control characters shown escaped)."""
        if self.problem:
            return f"{_shown(self.path)}: not checked: {self.problem}"
        rules = ", ".join(self.failed_rules) or "no hard rule fired"
        soft = f"; soft flags: {', '.join(self.soft_flags)}" if self.soft_flags else ""
        lines = [f"{_shown(self.path)}: {self.outcome} ({rules}{soft})"]
        lines += ["  " + " | ".join(_shown(cell) for cell in row if cell) for row in self.feedback]
        return "\n".join(lines)


def _shown(text: str) -> str:
    """Text on one line: a file name may hold a newline or other control characters."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _not_checkable(path: Path) -> str | None:
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "a folder or special file, not a return file"
    return None


def check_paths(paths: list[Path]) -> list[FileVerdict]:
    """Parse and check files as a run would, all in one batch; a path that is no readable file is
    answered, not raised. Byte-identical files are each answered under their own name."""
    subs: dict[int, list[SubmissionRef]] = {}  # by position in ``paths``
    problems: dict[int, str] = {}
    for index, path in enumerate(paths):
        problem = _not_checkable(path)
        if problem is None:
            try:
                key = f"{index}:{sha256_of(path)}"  # evaluate reads a file once per key
            except OSError as exc:
                problem = f"cannot be read ({exc.strerror})"
        if problem:
            problems[index] = problem
            continue
        name = parse_file_name(path.name)
        subs[index] = [SubmissionRef(index * 10 + number, key, printable_name(path.name),
                                     name.county_code if name else None, name.survey_year if name else None,
                                     form, path)
                       for number, form in enumerate(forms_of(path, name))]
    result = evaluate([sub for refs in subs.values() for sub in refs]) if subs else None
    verdicts = []
    for index, path in enumerate(paths):
        if index in problems:
            verdicts.append(FileVerdict(str(path), "not a file", [], [], [], problem=problems[index]))
        else:
            verdicts.append(_verdict(str(path), subs[index], result))
    return verdicts


def _verdict(shown: str, subs: list[SubmissionRef], result) -> FileVerdict:
    spec = load_spec()
    seen: set[int] = set()
    feedback = []
    for sub in subs:
        for finding in result.findings[sub.submission_id]:
            if id(finding) in seen:  # a file-level finding is listed under each of a workbook's forms
                continue
            seen.add(id(finding))
            rule = spec.rules[finding.rule_id]
            feedback.append([finding.rule_id, rule.severity, fill(rule.message_zh, finding.params),
                             fill(rule.message_en, finding.params), finding.sheet or "",
                             "" if finding.row is None else str(finding.row), finding.column or "",
                             "" if finding.value is None else str(finding.value)])
    failed = sorted({r for sub in subs for r in result.failed[sub.submission_id]})
    soft = sorted({r for sub in subs for r in result.soft[sub.submission_id]}
                  | {r for sub in subs for flags in result.row_flags.get(sub.submission_id, {}).values()
                     for r in flags})
    return FileVerdict(shown, "quarantined" if failed else "accepted", failed, soft, feedback)
