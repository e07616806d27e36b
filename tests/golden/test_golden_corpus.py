"""The golden corpus (tests/golden/cases.yaml): files written by hand from survey_spec/README.md by a
writer that shares no code with the warehouse, read by the parser and checked by every rule.

Expectations are the hand-written ones of cases.yaml: rows per form, canonical values, outcome, and
the exact hard and soft rule ids. The checks run as `hrss check-file` runs them (one batch, nothing
loaded), so these tests also prove what that command answers.
"""

from __future__ import annotations

import ast
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import write_golden

from hrss_warehouse import conformance
from hrss_warehouse.files import parse_file_name
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import parse

CASES = write_golden.load_cases()
def _params(cases: list[dict]) -> list:
    return [pytest.param(case, id=case["id"]) for case in cases]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_golden.write_all(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def verdicts(corpus: dict[str, Path]) -> dict[str, conformance.FileVerdict]:
    """Every golden file checked in one batch, as `hrss check-file` checks them."""
    answered = conformance.check_paths(list(corpus.values()))
    return dict(zip(corpus, answered, strict=True))


def test_the_writer_shares_no_code_with_the_warehouse() -> None:
    tree = ast.parse(Path(write_golden.__file__).read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert "hrss_warehouse" not in imported
    assert imported <= {"__future__", "copy", "csv", "io", "sys", "datetime", "pathlib", "openpyxl", "yaml"}


def test_the_corpus_covers_every_hard_rule_and_both_versions() -> None:
    spec = load_spec()
    hard_rules = {rule_id for rule_id, rule in spec.rules.items() if rule.is_hard}
    # one file per hard rule that fires only that rule
    alone = {case["expect"]["hard"][0] for case in CASES if len(case["expect"]["hard"]) == 1}
    assert hard_rules <= alone
    returns = write_golden.load_returns()["returns"]
    versions = {returns[case["return"]]["version"] for case in CASES if "return" in case}
    assert versions == set(spec.versions)
    encodings = {case.get("encoding") for case in CASES if case.get("format") == "csv"}
    assert {"utf-8", "utf-8-sig", "gb18030"} <= encodings


@pytest.mark.parametrize("case", _params(CASES))
def test_golden_file_gets_its_outcome_and_rules(case: dict, verdicts: dict) -> None:
    verdict = verdicts[case["id"]]
    expect = case["expect"]
    assert (verdict.outcome, verdict.failed_rules, verdict.soft_flags) == (
        expect["outcome"], sorted(expect["hard"]), sorted(expect["soft"])), verdict.render()
    fired = {row[0] for row in verdict.feedback}
    assert fired == set(expect["hard"]) | set(expect["soft"]), verdict.render()


def _read(path: Path) -> dict[str, object]:
    """The file's forms as the warehouse reads them: normalised values by form."""
    spec = load_spec()
    parsed = parse.parse_file(path, parse_file_name(path.name), path.name)
    assert parsed.readable, parsed.findings
    out = {}
    for form, pf in parsed.forms.items():
        out[form] = parse.normalise(pf.cells, spec.form(form, pf.version))
    return out


def _same(found: object, expected: object) -> bool:
    if expected is None:
        return found is None or (isinstance(found, float) and math.isnan(found))
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return isinstance(found, int | float) and math.isclose(float(found), expected, abs_tol=1e-9)
    return found == expected


READABLE = [case for case in CASES if "rows" in case["expect"]]


@pytest.mark.parametrize("case", _params(READABLE))
def test_golden_file_reads_as_written(case: dict, corpus: dict[str, Path]) -> None:
    frames = _read(corpus[case["id"]])
    assert {form: len(frame) for form, frame in frames.items()} == case["expect"]["rows"]
    for form, units in case["expect"].get("values", {}).items():
        frame = frames[form].set_index("region_code")
        for code, values in units.items():
            for column, expected in values.items():
                found = frame.at[code, column]
                assert _same(found, expected), f"{form} {code} {column}: {found!r}, README: {expected!r}"


def test_check_file_answers_a_good_file_a_bad_one_and_non_files(corpus: dict[str, Path],
                                                                  tmp_path: Path) -> None:
    good, bad = corpus["good_v2017"], corpus["hard_C05"]
    answered = conformance.check_paths([good, bad, tmp_path / "missing.xlsx", tmp_path])
    lines = [verdict.render().splitlines()[0] for verdict in answered]
    assert lines[0] == f"{good}: accepted (no hard rule fired)"
    assert lines[1] == f"{bad}: quarantined (C05)"
    assert "C05 | hard | 第 9 行工作人员合计 21 与分项之和 20 不符" in answered[1].render()
    assert lines[2] == f"{tmp_path / 'missing.xlsx'}: not checked: no such file"
    assert lines[3] == f"{tmp_path}: not checked: a folder or special file, not a return file"


def test_hrss_check_file_prints_one_line_per_file_and_no_traceback(corpus: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    good, bad = corpus["good_v2014"], corpus["hard_S02_newline"]
    missing = tmp_path / "420102_2017.xlsx"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRSS_")}
    env["HRSS_HOME"] = str(tmp_path / "home")
    result = subprocess.run([str(Path(sys.executable).with_name("hrss")), "check-file", str(good), str(bad),
                             str(missing), str(tmp_path)], capture_output=True, text=True, env=env,
                            timeout=600, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    files = [line for line in result.stdout.splitlines() if not line.startswith(("  ", "("))]
    assert files == [f"{good}: accepted (no hard rule fired)",
                     f"{str(bad)[:-1]}\\n: quarantined (S02)",  # the newline in the name shown escaped
                     f"{missing}: not checked: no such file",
                     f"{tmp_path}: not checked: a folder or special file, not a return file"]
    assert "nothing was loaded" in result.stdout.splitlines()[-1]
    assert not (tmp_path / "home" / "pgdata").exists()  # no warehouse was started
