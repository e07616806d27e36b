"""Running a suite over a batch's rows with GX, once per suite, and reading its failures back."""

from __future__ import annotations

import json
from functools import cache

import pandas as pd

from hrss_warehouse.check.suites import FUNDING_PARTS, STAFF_PARTS
from hrss_warehouse.spec import FormVersion

INDEX_COLUMNS = ["submission_id", "source_row"]

# Helper columns of the check frame, and the form column a finding on them points at.
HELPER_OF = {"invalid_cells": "region_code", "region_county": "region_code", "region_key": "region_code",
             "staff_parts_sum": "staff_total",
             "funding_parts_gap": "funding_total", "persons_per_staff": "persons_served"}


def gx_session():
    """GX, the project's file-backed context and the batch definition every batch is validated through."""
    import great_expectations as gx

    from hrss_warehouse.check import gx_context

    return gx, gx_context.context(), gx_context.batch_definition()


def check_frame(rows: pd.DataFrame, fv: FormVersion) -> pd.DataFrame:
    """The rows plus the helper columns the cross-column expectations compare."""
    frame = rows.copy()
    region = frame["region_code"].fillna("")
    frame["region_county"] = region.str[:6]
    frame["region_key"] = frame["submission_id"].astype(str) + ":" + region
    invalid = pd.Series("", index=frame.index, dtype=object)
    for column in fv.numeric_columns:
        bad = frame[f"{column.name}__bad"]
        hit = bad.notna()
        if hit.any():
            invalid[hit] = invalid[hit] + f"{column.code}=" + bad[hit].astype(str) + "; "
    frame["invalid_cells"] = invalid.where(invalid != "")
    has = set(fv.names)
    for parts in STAFF_PARTS:
        if {"staff_total", *parts} <= has:
            frame["staff_parts_sum"] = frame[list(parts)].sum(axis=1, skipna=False)
    if {"funding_total", *FUNDING_PARTS} <= has:
        gap = (frame["funding_total"] - frame[list(FUNDING_PARTS)].sum(axis=1, skipna=False)).abs()
        frame["funding_parts_gap"] = gap.round(6)  # binary fractions: 0.6+0.3+0.2+0.1 is not 1.2
    if {"persons_served", "staff_total"} <= has:
        staff = frame["staff_total"].where(frame["staff_total"] > 0)
        frame["persons_per_staff"] = frame["persons_served"] / staff
    return frame


@cache
def _suite_object(suite_text: str):
    """The GX suite object of a suite's JSON, built once per process (GX validates it with pydantic)."""
    gx, _, _ = gx_session()
    suite = json.loads(suite_text)
    return gx.ExpectationSuite(name=suite["name"], expectations=suite["expectations"])


@cache
def _suite_columns(suite_text: str) -> frozenset[str]:
    """The columns a suite's expectations read (their columns and row conditions), and the index columns."""
    names = set(INDEX_COLUMNS)
    for expectation in json.loads(suite_text)["expectations"]:
        kwargs = expectation["kwargs"]
        names.update(kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs)
        if "row_condition" in kwargs:
            names.add(kwargs["row_condition"]["column"]["name"])
    return frozenset(names)


def _raise_for_errors(results) -> None:
    """An expectation that could not run is an error, not a pass."""
    for outcome in results:
        if outcome.exception_info and outcome.exception_info.get("raised_exception"):
            config = outcome.expectation_config
            raise RuntimeError(f"GX expectation {config.type} ({config.meta}) could not run: "
                               f"{outcome.exception_info.get('exception_message')}")


def _validate(batch, suite: dict, result_format) -> list:
    """The results of one GX validation."""
    result = batch.validate(_suite_object(json.dumps(suite, sort_keys=True)), result_format=result_format)
    _raise_for_errors(result.results)
    return result.results


def run_suite(frame: pd.DataFrame, suite: dict,
              run_name: str | None = None) -> list[tuple[dict, dict, list[dict]]]:
    """Validate ``frame`` against ``suite``; per failed expectation: its meta, kwargs, unexpected rows.

    Two passes: the suite's Checkpoint first (unexpected counts and sample values, stored under
    ``run_name`` for Data Docs; with no run name, a plain validation that stores nothing), then only
    the failed expectations again listing their unexpected rows (COMPLETE costs about twice as much
    and most expectations pass).
    """
    from hrss_warehouse.check import gx_context

    _, _, batch_definition = gx_session()
    # GX copies the frame it filters (row conditions, domains): only the suite's columns go in
    needed = _suite_columns(json.dumps(suite, sort_keys=True))
    frame = frame[[name for name in frame.columns if name in needed]]
    batch = None
    if run_name is None:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
        first = _validate(batch, suite, "BOOLEAN_ONLY")
    else:
        first = gx_context.run_checkpoint(suite, frame, run_name).results
        _raise_for_errors(first)
    failing = {outcome.expectation_config.meta["expectation"] for outcome in first if not outcome.success}
    if not failing:
        return []
    if batch is None:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    again = {**suite, "expectations": [e for e in suite["expectations"]
                                       if e["meta"]["expectation"] in failing]}
    complete = {"result_format": "COMPLETE", "unexpected_index_column_names": INDEX_COLUMNS,
                "return_unexpected_index_query": False}
    return [(dict(outcome.expectation_config.meta), dict(outcome.expectation_config.kwargs),
             list(outcome.result.get("unexpected_index_list") or []))
            for outcome in _validate(batch, again, complete) if not outcome.success]
