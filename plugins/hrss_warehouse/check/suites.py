"""The GX suites: one per form and version, generated from forms.yaml and rules.yaml, checked in
under expectations/."""

from __future__ import annotations

import json
from pathlib import Path

from hrss_warehouse.config import EXPECTATIONS_DIR
from hrss_warehouse.spec import FormVersion, load_spec

# Operands of the cross-column rules; a rule applies to a form version holding all its operands.
STAFF_PARTS = (("staff_establishment", "staff_welfare", "staff_other"), ("staff_fulltime", "staff_parttime"))

FUNDING_PARTS = ("funding_central", "funding_provincial", "funding_municipal", "funding_county")

FUNDING_TOLERANCE = 0.01

PERSONS_PER_STAFF_LIMIT = 50_000


def _expect(kind: str, rule_id: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs, "meta": {"rule_id": rule_id}}


def _pair_ge(rule_id: str, larger: str, smaller: str) -> dict:
    return _expect("expect_column_pair_values_a_to_be_greater_than_b", rule_id, column_A=larger,
                   column_B=smaller, or_equal=True, ignore_row_if="either_value_is_missing")


def _when(column: str, value: int) -> dict:
    """A GX row condition (the structured form: string conditions are deprecated in GX 1.9+)."""
    return {"row_condition": {"type": "comparison", "column": {"name": column}, "operator": "==",
                              "parameter": value}}


def suite_name(form: str, version: str) -> str:
    return f"{form.lower()}_{version}"


def build_suite(fv: FormVersion) -> dict:
    """The GX suite of one form version, as the JSON stored in expectations/."""
    spec = load_spec()
    has = set(fv.names)
    ex: list[dict] = [
        _expect("expect_column_values_to_match_regex", "C01", column="region_code", regex=r"^\d{12}$"),
        _expect("expect_column_pair_values_to_be_equal", "C01", column_A="region_county",
                column_B="county_code"),
        _expect("expect_column_values_to_be_unique", "C02", column="region_key"),
    ]
    # parse leaves every cell that is not a value of its type in <name>__bad; `invalid_cells` lists them
    ex.append(_expect("expect_column_values_to_be_null", "C03", column="invalid_cells"))
    for parts in STAFF_PARTS:
        if {"staff_total", *parts} <= has:
            ex.append(_expect("expect_column_pair_values_to_be_equal", "C05", column_A="staff_total",
                              column_B="staff_parts_sum", ignore_row_if="either_value_is_missing"))
    if {"staff_total", "coordinators"} <= has:
        ex.append(_pair_ge("C05", "staff_total", "coordinators"))
    if {"funding_total", *FUNDING_PARTS} <= has:
        ex.append(_expect("expect_column_values_to_be_between", "C06", column="funding_parts_gap",
                          max_value=FUNDING_TOLERANCE))
    elif {"funding_total", "funding_central"} <= has:
        ex.append(_pair_ge("C06", "funding_total", "funding_central"))
    for name in ("standardized", "staff_total", "service_sites"):
        if name in has:
            ex.append(_expect("expect_column_values_to_be_in_set", "C07", column=name, value_set=[0],
                              **_when("has_platform", 0)))
    if "platform_mode" in has:
        ex.append(_expect("expect_column_values_to_be_null", "C07", column="platform_mode",
                          **_when("has_platform", 0)))
    for name in ("staff_trained", "staff_certified"):
        if {name, "staff_total"} <= has:
            ex.append(_pair_ge("C08", "staff_total", name))
    if {"staff_establishment", "staff_total"} <= has and "staff_welfare" not in has:
        ex.append(_pair_ge("C08", "staff_total", "staff_establishment"))
    if "service_sites" in has:
        ex.append(_expect("expect_column_values_to_be_between", "C10", column="service_sites", min_value=1,
                          **_when("has_platform", 1)))
    if "platform_mode" in has:
        ex.append(_expect("expect_column_values_to_not_be_null", "C10", column="platform_mode",
                          **_when("has_platform", 1)))
    if {"resident_population", "service_population"} <= has:
        ex.append(_pair_ge("C11", "resident_population", "service_population"))
    if {"persons_served", "staff_total"} <= has:
        ex.append(_expect("expect_column_values_to_be_between", "C12", column="persons_per_staff",
                          max_value=PERSONS_PER_STAFF_LIMIT))
    for number, expectation in enumerate(ex, start=1):  # a stable name for each, e.g. in Data Docs
        expectation["meta"]["expectation"] = f"{suite_name(fv.form, fv.version)}#{number}"
    unknown = {e["meta"]["rule_id"] for e in ex} - set(spec.rules)
    if unknown:
        raise ValueError(f"expectations name rules missing from rules.yaml: {sorted(unknown)}")
    return {"name": suite_name(fv.form, fv.version), "expectations": ex,
            "meta": {"generated_from": "survey_spec/forms.yaml + survey_spec/rules.yaml",
                     "form": fv.form, "version": fv.version}}


def suite_path(form: str, version: str, folder: Path = EXPECTATIONS_DIR) -> Path:
    return folder / f"{suite_name(form, version)}.json"


def suite_json(fv: FormVersion) -> str:
    return json.dumps(build_suite(fv), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_suites(folder: Path = EXPECTATIONS_DIR) -> list[Path]:
    """Regenerate every suite file from the spec (`hrss ingest suites`)."""
    spec = load_spec()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for form, versions in spec.forms.items():
        for version, fv in versions.items():
            path = suite_path(form, version, folder)
            path.write_text(suite_json(fv), encoding="utf-8")
            written.append(path)
    return written


def load_suite_dict(form: str, version: str, folder: Path = EXPECTATIONS_DIR) -> dict:
    path = suite_path(form, version, folder)
    if not path.exists():
        raise FileNotFoundError(f"GX suite {path} is missing; write it with `hrss ingest suites`")
    return json.loads(path.read_text(encoding="utf-8"))
