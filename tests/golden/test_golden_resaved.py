"""Workbooks saved by another program: the golden corpus and a sample of generated returns, opened and
saved again by LibreOffice Calc as xlsx and as xls (Excel 97-2003), committed under libreoffice/ by
resave_with_libreoffice.py. Each must read to the same rows and get the same outcome as its original.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import write_golden
from resave_with_libreoffice import OUT, resavable_cases

from hrss_warehouse import conformance
from hrss_warehouse.files import parse_file_name
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import parse

CASES = {case["id"]: case for case in resavable_cases()}
FORMATS = ("xlsx", "xls")
GENERATED = sorted(p.name for p in (OUT / "generated").iterdir())


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every original: the golden files as the writer makes them, the generated ones as committed."""
    folder = tmp_path_factory.mktemp("golden")
    returns = write_golden.load_returns()
    made = {f"golden/{cid}": write_golden.write_case(case, returns, folder) for cid, case in CASES.items()}
    for sample in GENERATED:
        made[f"generated/{sample}"] = next((OUT / "generated" / sample / "original").iterdir())
    return made


def _resaved(key: str, fmt: str) -> Path:
    return next((OUT / key / fmt).iterdir())


KEYS = [f"golden/{cid}" for cid in CASES] + [f"generated/{sample}" for sample in GENERATED]


def test_every_golden_workbook_and_format_has_its_fixture() -> None:
    for key in KEYS:
        for fmt in FORMATS:
            path = _resaved(key, fmt)
            assert path.suffix == f".{fmt}" and path.stat().st_size > 0


def _read(path: Path) -> tuple[list[str], dict[str, pd.DataFrame]]:
    spec = load_spec()
    parsed = parse.parse_file(path, parse_file_name(path.name), path.name)
    frames = {form: parse.normalise(pf.cells, spec.form(form, pf.version))
              for form, pf in parsed.forms.items()}
    return sorted(f.rule_id for f in parsed.findings), frames


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", KEYS)
def test_a_resaved_workbook_reads_the_same_rows(key: str, fmt: str, originals: dict[str, Path]) -> None:
    found, frames = _read(_resaved(key, fmt))
    expected_found, expected = _read(originals[key])
    assert found == expected_found
    assert frames.keys() == expected.keys()
    for form, frame in expected.items():
        pd.testing.assert_frame_equal(frames[form], frame, check_dtype=False, obj=f"{key} {fmt} {form}")


@pytest.fixture(scope="module")
def verdicts(originals: dict[str, Path]) -> dict[tuple[str, str], conformance.FileVerdict]:
    """Originals and re-saved files checked together in one batch."""
    paths = {(key, "original"): path for key, path in originals.items()}
    paths.update({(key, fmt): _resaved(key, fmt) for key in KEYS for fmt in FORMATS})
    answered = conformance.check_paths(list(paths.values()))
    return dict(zip(paths, answered, strict=True))


def _outcome_params() -> list:
    params = []
    for key in KEYS:
        for fmt in FORMATS:
            params.append(pytest.param(key, fmt, id=f"{key}-{fmt}"))
    return params


@pytest.mark.parametrize(("key", "fmt"), _outcome_params())
def test_a_resaved_workbook_gets_the_same_outcome(key: str, fmt: str, verdicts: dict) -> None:
    original, resaved = verdicts[key, "original"], verdicts[key, fmt]
    assert (resaved.outcome, resaved.failed_rules, resaved.soft_flags) == (
        original.outcome, original.failed_rules, original.soft_flags), resaved.render()
    case = CASES.get(key.removeprefix("golden/"))
    if case is not None:  # and both are what the README says
        assert (resaved.outcome, resaved.failed_rules, resaved.soft_flags) == (
            case["expect"]["outcome"], sorted(case["expect"]["hard"]), sorted(case["expect"]["soft"]))


def test_a_workbook_is_opened_by_its_content_not_its_name(tmp_path: Path) -> None:
    """S01 opens a workbook whatever program saved it: an xls saved under an .xlsx name, and an xlsx
    under an .xls name, both read; a CSV under a workbook name does not."""
    swapped = {
        "xls_as_xlsx": (_resaved("golden/good_v2017", "xls"), "150206_2017.xlsx"),
        "xlsx_as_xls": (_resaved("golden/good_v2017", "xlsx"), "150206_2017.XLS"),
    }
    paths = []
    for folder, (source, name) in swapped.items():
        (tmp_path / folder).mkdir()
        paths.append(shutil.copy(source, tmp_path / folder / name))
    text = tmp_path / "csv" / "150206_2017.xls"
    text.parent.mkdir()
    text.write_text("甲,乙\n150206000000,x\n", encoding="utf-8")
    answered = conformance.check_paths([Path(p) for p in paths] + [text])
    assert [(v.outcome, v.failed_rules) for v in answered] == [
        ("accepted", []), ("accepted", []), ("quarantined", ["S01"])]
