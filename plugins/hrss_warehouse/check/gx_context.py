"""The project's file-backed GX context under ``$HRSS_HOME/gx``: the suites of ``expectations/``, one
ValidationDefinition and one Checkpoint per suite, and the Data Docs site ``$HRSS_HOME/docs/gx``.

Each batch's check runs the Checkpoint of every suite it needs once, under a run name that names the
batch; the Checkpoint stores the validation result (unexpected counts and sample values, by rule id in
each expectation's notes). The runs are rendered into Data Docs once per ingest run, by the reports
stage (``build_data_docs``), not by the Checkpoint: rendering a run costs more than checking a batch, and
GX would rebuild the site index after every suite. The newest ``HRSS_GX_HISTORY`` runs of each suite are
kept, and older stored results are deleted with their pages.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from hrss_warehouse.config import Settings

SITE = "hrss_data_docs"
DATASOURCE = "hrss_batches"
ASSET = "check_frame"
BATCH_DEFINITION = "whole_frame"
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 20}


def context() -> Any:
    """The file context of this process's ``HRSS_HOME`` with its pandas asset and Data Docs site."""
    return _context(Settings.from_env().home)


@cache
def _context(home: Path) -> Any:
    # no usage telemetry from a statistics office's warehouse (GX sends it by default)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every batch it gets (an md5 over the hashed frame, for frames under this many
    # bytes): about 8 % of a batch's check CPU, for a marker nothing here reads.
    pandas_execution_engine.HASH_THRESHOLD = 0

    settings = Settings.from_env()
    ctx = gx.get_context(mode="file", project_root_dir=str(home))
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # task logs, not a terminal
    docs = settings.docs_dir / "gx"
    # No validation_results_limit: GX applies it over all suites together, and would leave runs of a
    # large reprocess unrendered; prune() bounds the stored runs per suite instead.
    site = {"class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
    if ctx.get_site_names() != [SITE] or ctx.variables.data_docs_sites.get(SITE) != site:
        for name in ctx.get_site_names():
            ctx.delete_data_docs_site(name)  # GX's default site under gx/uncommitted: one site only
        ctx.add_data_docs_site(site_name=SITE, site_config=site)
    try:
        source = ctx.data_sources.get(DATASOURCE)
    except KeyError:
        source = ctx.data_sources.add_pandas(DATASOURCE)
    names = source.get_asset_names()
    asset = source.get_asset(ASSET) if ASSET in names else source.add_dataframe_asset(ASSET)
    try:
        asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION)
    return ctx


def batch_definition() -> Any:
    return context().data_sources.get(DATASOURCE).get_asset(ASSET).get_batch_definition(BATCH_DEFINITION)


# (HRSS_HOME, suite name) -> (the suite's JSON, its Checkpoint)
_checkpoints: dict[tuple[Path, str], tuple[str, Any]] = {}


def _checkpoint_key(suite_text: str) -> tuple[Path, str]:
    return Settings.from_env().home, json.loads(suite_text)["name"]


def checkpoint(suite_text: str) -> Any:
    """The Checkpoint of a suite (its JSON as generated from the spec), added or updated in the store
    when this process first meets that suite or a changed version of it (an edited spec)."""
    key = _checkpoint_key(suite_text)
    known = _checkpoints.get(key)
    if known is None or known[0] != suite_text:
        _checkpoints[key] = (suite_text, _store_checkpoint(suite_text))
    return _checkpoints[key][1]


def _store_checkpoint(suite_text: str) -> Any:
    """The stored Checkpoint of the suite, written only when the store holds another version of it.

    GX's file store writes in place, so processes that check at the same time (check workers, mapped
    Airflow tasks) would read each other's half-written files: writers take an exclusive lock, and a
    suite already stored as ``suite_text`` (recorded beside the store) is read, not written again.
    """
    import fcntl

    import great_expectations as gx

    ctx = context()
    suite = json.loads(suite_text)
    root = Path(ctx.root_directory)
    marker = root / "stored_suites" / f"{suite['name']}.json"
    marker.parent.mkdir(parents=True, exist_ok=True)
    with (root / ".store.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == suite_text:
            return ctx.checkpoints.get(suite["name"])
        expectations = [{**e, "notes": f"{e['meta']['rule_id']}: {e['meta'].get('expectation', '')}"}
                        for e in suite["expectations"]]
        stored = ctx.suites.add_or_update(gx.ExpectationSuite(name=suite["name"], expectations=expectations,
                                                              meta=suite.get("meta", {})))
        definition = ctx.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite["name"], data=batch_definition(), suite=stored))
        checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
            name=suite["name"], validation_definitions=[definition], result_format=RESULT_FORMAT, actions=[]))
        staged = marker.with_suffix(".tmp")
        staged.write_text(suite_text)
        staged.replace(marker)
        return checkpoint


def store_spec_suites() -> list[str]:
    """Store the Checkpoint of every suite of the spec in force (before forking check workers: they
    inherit them and write nothing); the suites' names."""
    from hrss_warehouse.check.suites import load_suite_dict
    from hrss_warehouse.spec import load_spec

    names = []
    for form, versions in load_spec().forms.items():
        for version in versions:
            suite = load_suite_dict(form, version)
            checkpoint(json.dumps(suite, sort_keys=True))
            names.append(suite["name"])
    return names


def run_checkpoint(suite: dict, frame: Any, run_name: str) -> Any:
    """Run a suite's Checkpoint over ``frame``: the stored validation result."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.exceptions.resource_freshness import CheckpointRelatedResourcesFreshnessError

    suite_text = json.dumps(suite, sort_keys=True)
    try:
        result = checkpoint(suite_text).run(batch_parameters={"dataframe": frame},
                                            run_id=RunIdentifier(run_name=run_name))
    except CheckpointRelatedResourcesFreshnessError:
        # Another process (a check worker on an edited spec) stored another version of this suite since
        # this process cached its Checkpoint: store this version again and run once more.
        _checkpoints.pop(_checkpoint_key(suite_text), None)
        result = checkpoint(suite_text).run(batch_parameters={"dataframe": frame},
                                            run_id=RunIdentifier(run_name=run_name))
    prune(suite["name"])
    (validation,) = result.run_results.values()
    return validation


def prune(suite_name: str) -> None:
    """Keep the newest ``HRSS_GX_HISTORY`` stored runs of a suite, with their Data Docs pages."""
    settings = Settings.from_env()
    keep = settings.gx_history
    for root in (settings.home / "gx" / "uncommitted" / "validations",
                 settings.docs_dir / "gx" / "validations"):
        runs = sorted((p for p in (root / suite_name).glob("*") if p.is_dir()),
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for old in runs[keep:]:
            shutil.rmtree(old, ignore_errors=True)  # another process may prune the same run


def build_data_docs() -> Path:
    """Render every suite of the spec and each stored run that has no page yet into the Data Docs site,
    then its index; the index page. A run's page never changes, so earlier runs are not rendered again."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    suites = [ExpectationSuiteIdentifier(name=name) for name in store_spec_suites()]
    ctx = context()
    pages = Settings.from_env().docs_dir / "gx" / "validations"
    new_runs = [key for key in ctx.validation_results_store.list_keys()
                if not _page_of(pages, key.to_tuple()).exists()]
    ctx.build_data_docs(site_names=[SITE], resource_identifiers=suites + new_runs)
    return Settings.from_env().docs_dir / "gx" / "index.html"


def _page_of(pages: Path, key: tuple[str, ...]) -> Path:
    """Where the Data Docs site writes a stored run's page (its store key as folders, ``.html``)."""
    return pages.joinpath(*key[:-1]) / f"{key[-1]}.html"
