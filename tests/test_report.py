"""Feedback report helpers: formula-injection safety and message filling (the reports themselves are
checked end to end in test_pipeline)."""

from __future__ import annotations

import pytest

from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages.report import fill, safe_cell


@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"), ("+1", "'+1"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("四个", "四个"), ("12", "12"), (None, ""), (3, "3")])
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_every_message_fills_from_its_params_and_tolerates_missing_ones():
    for rule in load_spec().rules.values():
        assert "{" not in fill(rule.message_zh, {}) and "{" not in fill(rule.message_en, {})
    rule = load_spec().rules["C03"]
    params = {"row": 9, "column": "6", "name": "x", "value": "四个", "type": "count"}
    assert fill(rule.message_en, params) == (
        "Row 9, column 6 (x): '四个' is not a valid count")
