"""GX as GX means it: each batch's check is a Checkpoint run, stored, and rendered into Data Docs (by the
reports stage) with its unexpected counts and sample values; only the newest HRSS_GX_HISTORY runs are kept;
a dry check of files (check-file) stores no run."""

from __future__ import annotations

import pytest
from ingest_helpers import fixture_file, refs

from hrss_warehouse import check
from hrss_warehouse.check import gx_context
from hrss_warehouse.config import Settings


def test_every_batch_run_is_in_data_docs_and_history_is_bounded(settings: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRSS_GX_HISTORY", "2")
    subs = refs(fixture_file("fail", "C05"), 1)
    for n in range(3):
        result = check.evaluate(subs, run_name=f"history probe {n}")
        assert {f.rule_id for found in result.findings.values() for f in found} >= {"C05"}
    index = gx_context.build_data_docs()  # what the reports stage does once per ingest run
    validations = settings.docs_dir / "gx" / "validations"
    # the fixture's suite: the one that holds the probe runs (other tests store runs of other suites)
    suite = next(p for p in validations.iterdir()
                 if any(run.name.startswith("history probe") for run in p.iterdir()))
    pages = {p.name for p in suite.iterdir() if p.name.startswith("history probe")}
    assert pages == {"history probe 1", "history probe 2"}  # the oldest run went, with its stored result
    stored = {p.name for p in (settings.home / "gx" / "uncommitted" / "validations" / suite.name).iterdir()
              if p.name.startswith("history probe")}
    assert stored == pages
    page = next((suite / "history probe 2").rglob("*.html")).read_text()
    assert "unexpected" in page.lower()
    assert "history probe 2" in index.read_text()
    store = settings.home / "gx" / "uncommitted" / "validations"
    before = sorted(store.rglob("*.json"))
    check.evaluate(subs)  # a dry check stores nothing
    assert sorted(store.rglob("*.json")) == before
