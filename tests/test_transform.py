"""The dbt project over a small hand-written dataset (tests/transform_dataset.py), built by the real
`dbt build` against the embedded warehouse: revisions in force, NULL vs 0, unallocated funding, the
SCD join, return status, history rules, reconciliation, and an incremental rebuild after a revision.
"""

from __future__ import annotations

import csv
import json

import psycopg
import pytest
import transform_dataset as ds
import yaml

from hrss_warehouse.config import DBT_PROJECT_DIR, SEED_DIR
from hrss_warehouse.db import connect
from hrss_warehouse.spec import load_spec
from hrss_warehouse.stages import transform

BUILD = transform.BUILD_SCHEMA


def test_spec_seeds_are_generated_from_forms_yaml() -> None:
    for name in transform.SPEC_SEEDS:
        committed = (transform.SEEDS_DIR / f"{name}.csv").read_text(encoding="utf-8")
        assert committed == transform.render_spec_seed(name), f"{name}.csv is stale: `hrss dbt spec-seeds`"


def test_published_figures_seed_is_the_shared_copy() -> None:
    assert (transform.SEEDS_DIR / "published_figures.csv").read_bytes() == \
        (SEED_DIR / "published_figures.csv").read_bytes()


def test_staging_models_carry_every_canonical_column() -> None:
    spec = load_spec()
    doc = yaml.safe_load((DBT_PROJECT_DIR / "models/staging/jcpt/_jcpt__models.yml").read_text())
    documented = {m["name"]: [c["name"] for c in m["columns"]] for m in doc["models"]}
    for form in spec.form_codes:
        expected = [c.name + ("_wan" if c.type == "money" else "") for c in spec.canonical_columns(form)]
        model = f"stg_jcpt__{spec.level_of(form)}_rows"
        assert documented[model] == ["submission_id", "source_row", *expected, "quality_flags"]
        sql_text = (DBT_PROJECT_DIR / f"models/staging/jcpt/{model}.sql").read_text()
        for column in expected:
            assert f" as {column}," in sql_text


def test_parse_works_offline() -> None:
    manifest = json.loads(transform.parse().read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    contract = {"dim_region", "dim_survey_year", "dim_funding_source", "fct_platform_year", "fct_funding",
                "mart_coverage", "mart_funding", "mart_staff", "mart_submissions", "mart_return_status",
                "mart_published_reconciliation"}
    assert contract <= models
    marts = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["schema"] == BUILD]
    assert {n["name"] for n in marts} >= contract
    assert all(n["config"]["contract"]["enforced"] for n in marts)


def _enforced_keys(model: dict) -> tuple[set[str], set[tuple[str, ...]]]:
    """The columns PostgreSQL keeps non-null and the column sets it keeps unique for a contracted model."""
    not_null, unique = set(), set()
    for constraint in model.get("constraints", []):
        columns = tuple(constraint.get("columns") or ())
        if constraint["type"] in {"primary_key", "unique"}:
            unique.add(columns)
        if constraint["type"] == "primary_key":
            not_null.update(columns)
    for name, column in model["columns"].items():
        kinds = {c["type"] for c in column.get("constraints", [])}
        if kinds & {"not_null", "primary_key"}:
            not_null.add(name)
        if kinds & {"unique", "primary_key"}:
            unique.add((name,))
    return not_null, unique


def test_no_data_test_repeats_an_enforced_constraint() -> None:
    # A contract's constraints fail the build on the offending row, so a not_null or unique test of the
    # same columns could never fail: it would only add a node (and seconds) to every build.
    manifest = json.loads(transform.parse().read_text())
    nodes = manifest["nodes"]
    repeated = []
    for test in nodes.values():
        attached = nodes.get(test.get("attached_node") or "")
        if test["resource_type"] != "test" or not attached or not attached["config"]["contract"]["enforced"]:
            continue
        not_null, unique = _enforced_keys(attached)
        name, kwargs = test["test_metadata"]["name"], test["test_metadata"]["kwargs"]
        column = kwargs.get("column_name")
        covered = {"not_null": column in not_null, "unique": (column,) in unique,
                   "unique_combination_of_columns": tuple(kwargs.get("combination_of_columns", ())) in unique}
        if covered.get(name):
            repeated.append(test["name"])
    assert not repeated


def test_the_contracts_reject_a_duplicate_or_null_key(settings, built) -> None:
    with connect(settings) as conn:
        for statement in (
                f"INSERT INTO {BUILD}.fct_platform_year SELECT * FROM {BUILD}.fct_platform_year LIMIT 1",
                f"UPDATE {BUILD}.mart_coverage SET region_code = NULL"):
            with pytest.raises(psycopg.errors.IntegrityError):
                conn.execute(statement)
            conn.rollback()


@pytest.fixture(scope="module")
def built(settings):
    with connect(settings) as conn:
        ds.create_inputs(conn)
    return transform.build(settings, full_refresh=True)


def rows(settings, query: str, params: tuple = ()) -> list[tuple]:
    with connect(settings) as conn:
        return conn.execute(query, params).fetchall()


def one(settings, query: str, params: tuple = ()):
    result = rows(settings, query, params)
    assert len(result) == 1, result
    return result[0]


def test_build_passes_every_test(built) -> None:
    assert built.ok and not built.failures
    kinds = {uid.split(".")[0] for uid in built.statuses}
    assert {"model", "test", "unit_test", "seed"} <= kinds


def test_revision_in_force_and_quarantined_later_revision(settings, built) -> None:
    in_force = rows(settings, f"SELECT submission_id FROM {BUILD}.mart_submissions WHERE county_code = "
                              "'420102' AND survey_year = 2017 AND form = 'JCPT-2' AND in_force")
    assert in_force == [(14,)]
    assert one(settings, f"SELECT outcome, failed_rules FROM {BUILD}.mart_submissions "
                         "WHERE submission_id = 15") == ("quarantined", ["C05"])
    # rows of the quarantined revision 3 (staff 99) never reach the facts
    assert one(settings, f"SELECT submission_id, staff_total FROM {BUILD}.fct_platform_year "
                         "WHERE survey_year = 2017 AND region_code = '420102001000'") == (14, 30)
    # an unreadable file still has its row; pending files are not decided yet
    assert one(settings, f"SELECT county_code, failed_rules FROM {BUILD}.mart_submissions "
                         "WHERE submission_id = 19") == (None, ["S02"])
    assert rows(settings, f"SELECT 1 FROM {BUILD}.mart_submissions WHERE submission_id = 25") == []


def test_null_is_not_zero_in_rollups(settings, built) -> None:
    village_2016 = one(settings, f"SELECT units_reported, units_with_platform, standardized_platforms, "
                                 f"standardized_rate FROM {BUILD}.mart_coverage WHERE survey_year = 2016 "
                                 "AND region_code = '420000000000' AND platform_level = 'village'")
    assert village_2016 == (3, 2, None, None)
    township_2016 = one(settings, f"SELECT standardized_platforms, service_sites FROM {BUILD}.mart_coverage "
                                  "WHERE survey_year = 2016 AND region_code = '420102000000' "
                                  "AND platform_level = 'township'")
    assert township_2016 == (1, 1)
    # the county form has no service_sites indicator at all
    assert one(settings, f"SELECT service_sites FROM {BUILD}.mart_coverage WHERE survey_year = 2017 "
                         "AND region_code = '420000000000' AND platform_level = 'county'") == (None,)


def test_v2014_funding_is_central_plus_unallocated(settings, built) -> None:
    funding = dict(rows(settings, f"SELECT funding_source, amount_wan FROM {BUILD}.mart_funding "
                                  "WHERE survey_year = 2016 AND region_code = '420000000000' "
                                  "AND platform_level = 'county'"))
    assert funding == {"central": 41, "unallocated": 62}
    village = dict(rows(settings, f"SELECT funding_source, amount_wan FROM {BUILD}.mart_funding "
                                  "WHERE survey_year = 2016 AND region_code = '420000000000' "
                                  "AND platform_level = 'village'"))
    assert village == {"unallocated": 3}
    sources_2017 = rows(settings, f"SELECT DISTINCT funding_source FROM {BUILD}.fct_funding "
                                  "WHERE survey_year = 2017 ORDER BY 1")
    assert [s for (s,) in sources_2017] == ["central", "county", "municipal", "provincial"]
    # an unknown village total stays unknown in its source rows
    assert rows(settings, f"SELECT DISTINCT amount_wan FROM {BUILD}.fct_funding WHERE survey_year = 2017 "
                          "AND region_code = '420102001002'") == [(None,)]


def test_scd_span_join_and_unknown_codes(settings, built) -> None:
    keys = dict(rows(settings, f"SELECT survey_year, region_key FROM {BUILD}.fct_platform_year "
                               "WHERE region_code = '420102002000'"))
    assert keys == {2016: 4201020020002016, 2017: 4201020020002016, 2018: 4201020020002018}
    names = dict(rows(settings, f"SELECT f.survey_year, d.region_name FROM {BUILD}.fct_platform_year f "
                                f"JOIN {BUILD}.dim_region d USING (region_key) "
                                "WHERE f.region_code = '420102002000'"))
    assert names == {2016: "花桥街道", 2017: "花桥街道", 2018: "新花桥街道"}
    assert one(settings, f"SELECT region_key, quality_flags FROM {BUILD}.fct_platform_year "
                         "WHERE region_code = '420102001009'") == (-1, ["R01"])
    assert one(settings, f"SELECT region_code, valid_to_year FROM {BUILD}.dim_region WHERE region_key = -1") \
        == ("000000000000", None)
    assert one(settings, f"SELECT valid_from_year, valid_to_year FROM {BUILD}.dim_region "
                         "WHERE region_key = 4201020020002016") == (2016, 2017)


def test_history_rules(settings, built) -> None:
    assert one(settings, f"SELECT quality_flags FROM {BUILD}.fct_platform_year "
                         "WHERE survey_year = 2017 AND region_code = '420102001000'") == (["H01"],)
    h02 = rows(settings, f"SELECT submission_id FROM {BUILD}.mart_submissions "
                         "WHERE 'H02' = ANY(soft_flags) ORDER BY 1")
    assert h02 == [(16,), (17,), (18,)]
    assert one(settings, f"SELECT soft_flags FROM {BUILD}.mart_submissions "
                         "WHERE submission_id = 13") == (["R02"],)


def test_return_status_and_completeness(settings, built) -> None:
    status = {(y, c): (s, late, n) for y, c, s, late, n in rows(
        settings, f"SELECT survey_year, county_code, status, is_late, forms_in_force "
                  f"FROM {BUILD}.mart_return_status")}
    assert status == {
        (2016, "420102"): ("accepted", False, 3),
        (2016, "420103"): ("accepted", True, 3),  # came on 5 April 2017
        (2017, "420102"): ("accepted", False, 3),
        (2017, "420103"): ("accepted", False, 3),
        (2017, "420171"): ("missing", False, 0),  # a development zone from the 2017 edition
        (2018, "420102"): ("accepted", False, 3),  # 31 March 23:59:59 +08 is on time
        (2018, "420103"): ("quarantined", False, 0),
        (2018, "420171"): ("missing", False, 0),
    }
    coverage = one(settings, f"SELECT counties_expected, counties_reported FROM {BUILD}.mart_coverage "
                             "WHERE survey_year = 2018 AND region_code = '420000000000' "
                             "AND platform_level = 'township'")
    assert coverage == (3, 1)
    assert one(settings, f"SELECT units_reported, coverage_rate FROM {BUILD}.mart_coverage "
                         "WHERE survey_year = 2018 AND region_code = '420103000000' "
                         "AND platform_level = 'county'") == (0, None)


def test_reconciliation_status_logic(settings, built) -> None:
    status = dict(rows(settings, f"SELECT fact_id, status FROM {BUILD}.mart_published_reconciliation"))
    with (SEED_DIR / "published_figures.csv").open(encoding="utf-8") as fh:
        figures = {f["fact_id"]: f for f in csv.DictReader(fh)}
    assert status.keys() == figures.keys()
    for fact_id, figure in figures.items():
        if figure["comparable"] == "no":
            assert status[fact_id] == "not_comparable"
    assert {f: status[f] for f in ("HB-01", "HB-02", "HB-03", "HB-04")} == dict.fromkeys(
        ("HB-01", "HB-02", "HB-03", "HB-04"), "match")
    value = one(settings, f"SELECT warehouse_value FROM {BUILD}.mart_published_reconciliation "
                          "WHERE fact_id = 'HB-03'")[0]
    assert value == 5072  # wan_persons: Σ service_population / 10,000
    assert one(settings, f"SELECT warehouse_value FROM {BUILD}.mart_published_reconciliation "
                         "WHERE fact_id = 'HB-05'") == (None,)


def test_incremental_rebuild_after_a_revision(settings, built) -> None:
    # 江汉 resends its 2017 JCPT-2 as _r2: its township has no platform after all
    with connect(settings) as conn:
        revision = (31, "420103", 2017, "JCPT-2", 2, "2018-04-10 10:00+08", "v2017", "accepted", [], [])
        ds.add_submission(conn, revision,
                          [(31, dict(region_code="420103001000", unit_type=3, has_platform=0, service_sites=0,
                                     standardized=0, staff_total=0, resident_population=8840000,
                                     service_population=0, persons_served=0, funding_total=0,
                                     funding_central=0, funding_provincial=0, funding_municipal=0,
                                     funding_county=0))])
    # xmin changes when a row is rewritten: other counties' rows must keep theirs
    untouched = ("SELECT xmin::text FROM core.core_unit_year_rows WHERE submission_id = 14 ORDER BY 1",
                 f"SELECT xmin::text FROM {BUILD}.fct_platform_year WHERE county_code = '420102' ORDER BY 1",
                 f"SELECT xmin::text FROM {BUILD}.fct_funding WHERE county_code = '420102' ORDER BY 1")
    before = [rows(settings, query) for query in untouched]
    result = transform.build(settings)
    assert result.ok
    assert [rows(settings, query) for query in untouched] == before
    store_log = result.log_path.read_text()
    assert "incremental model core.core_unit_year_rows" in store_log
    assert one(settings, f"SELECT submission_id, has_platform FROM {BUILD}.fct_platform_year "
                         "WHERE survey_year = 2017 AND region_code = '420103001000'") == (31, 0)
    assert one(settings, "SELECT count(*) FROM core.core_unit_year_rows WHERE submission_id = 17") == (0,)
    status = dict(rows(settings, f"SELECT fact_id, status FROM {BUILD}.mart_published_reconciliation "
                                 "WHERE fact_id IN ('HB-02', 'HB-01')"))
    # 1700 of 1708 service sites is within the 0.5% of an exact figure; full coverage is gone
    assert status == {"HB-01": "match", "HB-02": "differs"}
    assert one(settings, f"SELECT in_force, is_late FROM {BUILD}.mart_submissions WHERE submission_id = 31") \
        == (True, True)


def test_store_columns_come_from_the_spec(settings, built) -> None:
    spec = load_spec()
    expected = []
    for form in spec.form_codes:
        for column in spec.canonical_columns(form):
            name = column.name + ("_wan" if column.type == "money" else "")
            if name not in expected:
                expected.append(name)
    got = [name for (name,) in rows(settings, "SELECT column_name FROM information_schema.columns WHERE "
                                              "table_schema = 'core' AND table_name = 'core_unit_year_rows'")]
    assert sorted(got) == sorted(["county_code", "survey_year", "form", "platform_level", "form_version",
                                  "submission_id", "source_row", *expected, "quality_flags"])


def test_withdrawn_form_leaves_store_facts_and_marts(settings, built) -> None:
    # 江岸's 2018 JCPT-3 is quarantined on reprocessing and no other revision is accepted: its rows go
    region_key_rows = f"SELECT xmin::text FROM {BUILD}.dim_region ORDER BY region_key"
    dim_before = rows(settings, region_key_rows)
    with connect(settings) as conn:
        conn.execute("UPDATE raw.submission SET outcome = 'quarantined', failed_rules = '{C05}' "
                     "WHERE submission_id = 23")
        conn.commit()
    try:
        result = transform.build(settings)
        assert result.ok and not any(uid.startswith("unit_test.") for uid in result.statuses)
        # the change set is the withdrawn form and its next survey year, nothing else
        assert rows(settings, "SELECT county_code, survey_year, form "
                              "FROM intermediate.int_build__changed_forms ORDER BY 2") \
            == [("420102", 2018, "JCPT-3"), ("420102", 2019, "JCPT-3")]
        stores = ("core.core_unit_year_rows", "core.core_county_year_totals", "core.core_county_year_funding")
        facts = (f"{BUILD}.fct_platform_year", f"{BUILD}.fct_staffing", f"{BUILD}.fct_funding")
        for table in stores + facts:
            assert one(settings, f"SELECT count(*) FROM {table} WHERE county_code = '420102' "
                                 "AND survey_year = 2018 AND form = 'JCPT-3'") == (0,), table
        assert one(settings, f"SELECT units_reported, counties_reported FROM {BUILD}.mart_coverage "
                             "WHERE survey_year = 2018 AND region_code = '420102000000' "
                             "AND platform_level = 'village'") == (0, 0)
        # the registry did not change: dim_region was neither rewritten nor rescanned by its tests
        assert one(settings, "SELECT registry_changed FROM intermediate.int_build__registry_changed") \
            == (False,)
        assert rows(settings, region_key_rows) == dim_before
    finally:
        with connect(settings) as conn:
            conn.execute("UPDATE raw.submission SET outcome = 'accepted', failed_rules = '{}' "
                         "WHERE submission_id = 23")
            conn.commit()


def test_an_incremental_build_skips_the_seeds_and_views_it_would_build_unchanged(settings, built) -> None:
    # the state kept from the last successful build says what is unchanged since (selectors.yml)
    result = transform.build(settings)
    assert result.ok
    assert not any(uid.startswith("seed.") for uid in result.statuses)
    assert "model.hrss_warehouse.stg_jcpt__submissions" not in result.statuses
    # a view in the build schema (used in turn) or over a rebuilt table is built again
    assert {"model.hrss_warehouse.mart_figure_vintages", "model.hrss_warehouse.int_region_spans"} \
        <= set(result.statuses)
    # one of them missing from the warehouse: nothing is skipped, so the build puts it back
    with connect(settings) as conn:
        conn.execute("DROP VIEW staging.stg_ops__stage_runs")
        conn.commit()
    result = transform.build(settings)
    assert result.ok and "seed.hrss_warehouse.jcpt_forms" in result.statuses
    assert one(settings, "SELECT to_regclass('staging.stg_ops__stage_runs') IS NOT NULL") == (True,)
