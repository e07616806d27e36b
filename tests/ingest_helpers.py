"""Helpers shared by the ingest tests: fixture paths and submission references without a warehouse."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from hrss_warehouse.check import SubmissionRef
from hrss_warehouse.files import parse_file_name
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages.register import forms_of

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

import make_fixtures  # noqa: E402


def fixture_file(kind: str, case: str) -> Path:
    """The one file of fixture case ``case`` under tests/fixtures/<kind>/."""
    files = [p for p in (FIXTURES / kind / case).iterdir() if p.is_file()]
    assert len(files) == 1, files
    return files[0]


def refs(path: Path, first_id: int, file_name: str | None = None) -> list[SubmissionRef]:
    """raw.submission rows as register_files would create them for ``path``."""
    file_name = file_name or path.name
    name = parse_file_name(file_name)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return [SubmissionRef(first_id + i, sha, file_name, name.county_code if name else None,
                          name.survey_year if name else None, form, path)
            for i, form in enumerate(forms_of(path, name))]


def gx_rule_ids() -> set[str]:
    from hrss_warehouse.check import load_suite_dict

    spec = load_spec()
    return {e["meta"]["rule_id"] for form, versions in spec.forms.items() for version in versions
            for e in load_suite_dict(form, version)["expectations"]}


__all__ = ["FIXTURES", "fixture_file", "gx_rule_ids", "make_fixtures", "refs"]
