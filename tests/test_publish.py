"""Blue/green publishing: a tested build is swapped into `marts` in one transaction and BI reads it;
two publishes in a row keep bi_reader's access; a build that fails a dbt test publishes nothing and
leaves the previous marts readable."""

from __future__ import annotations

import json

import psycopg
import pytest
import transform_dataset as ds

from hrss_warehouse import publish, transform
from hrss_warehouse.warehouse import connect


def bi_query(settings, query: str) -> list[tuple]:
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def first_publish(settings) -> dict:
    with connect(settings) as conn:
        ds.create_inputs(conn)
    transform.build(settings, full_refresh=True)
    return publish.publish(settings)


def test_publish_swaps_the_build_into_marts(settings, first_publish) -> None:
    assert first_publish["schema"] == "marts" and first_publish["tables"] >= 14
    built = bi_query(settings, "SELECT invocation_id FROM mart_build_info")
    assert built == [(first_publish["invocation_id"],)]
    assert bi_query(settings, "SELECT count(*) FROM marts.fct_platform_year")[0][0] > 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # yesterday's marts, now the build schema
        bi_query(settings, f"SELECT 1 FROM {transform.BUILD_SCHEMA}.fct_platform_year LIMIT 1")


def test_publishing_twice_without_a_build_is_refused(settings, first_publish) -> None:
    with pytest.raises(publish.PublishError, match="incomplete or failed a test"):
        publish.publish(settings)


def test_a_failing_test_leaves_yesterdays_marts(settings, first_publish) -> None:
    published = bi_query(settings, "SELECT invocation_id FROM mart_build_info")
    with connect(settings) as conn:  # a flag that is neither 0 nor 1 fails an accepted_values test
        ds.add_submission(conn, (41, "420102", 2018, "JCPT-3", 2, "2019-04-02 10:00+08", "v2017", "accepted",
                                 [], []), [(41, dict(region_code="420102001001", has_platform=7))])
    try:
        with pytest.raises(transform.TransformError, match="accepted_values"):
            transform.build(settings)
        with pytest.raises(publish.PublishError, match="incomplete or failed a test"):
            publish.publish(settings)
        assert bi_query(settings, "SELECT invocation_id FROM mart_build_info") == published
        assert bi_query(settings, "SELECT count(*) FROM mart_coverage")[0][0] > 0
    finally:
        with connect(settings) as conn:
            conn.execute("DELETE FROM raw.jcpt_village_rows WHERE submission_id = 41")
            conn.execute("DELETE FROM raw.submission WHERE submission_id = 41")
            conn.commit()


def test_a_second_publish_keeps_bi_reader_access(settings, first_publish) -> None:
    transform.build(settings)
    second = publish.publish(settings)
    assert second["replaced_invocation_id"] == first_publish["invocation_id"]
    assert bi_query(settings, "SELECT invocation_id FROM mart_build_info") == [(second["invocation_id"],)]
    assert bi_query(settings, "SELECT count(*) FROM mart_return_status")[0][0] == 8
    # column descriptions reach PostgreSQL for BI tools (persist_docs)
    comment = bi_query(settings, "SELECT col_description('marts.mart_coverage'::regclass, 1)")[0][0]
    assert comment and "Survey year" in comment
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        bi_query(settings, "SELECT 1 FROM core.int_unit_year_rows LIMIT 1")


def test_docs_describe_the_published_marts(settings, first_publish) -> None:
    index = transform.docs_generate(settings)
    assert index == settings.docs_dir / "dbt" / "index.html" and index.exists()
    catalog = json.loads((index.parent / "catalog.json").read_text())
    published = {node["metadata"]["name"] for node in catalog["nodes"].values()
                 if node["metadata"]["schema"] == "marts"}
    assert {"mart_coverage", "fct_platform_year", "dim_region"} <= published


def test_a_second_publisher_waits_then_says_who_holds_the_lock(settings, first_publish, monkeypatch) -> None:
    from hrss_warehouse import warehouse

    monkeypatch.setattr(publish, "PUBLISH_WAIT_S", 1.0)
    held_by = (r"nothing was published: the warehouse 'publish' lock is held by PostgreSQL backend \d+ "
               r"\(hrss publish lock, pid \d+, connected since ")
    with warehouse.warehouse_lock(settings, "publish"), pytest.raises(publish.PublishError, match=held_by):
        publish.publish(settings)
    published = bi_query(settings, "SELECT invocation_id FROM mart_build_info")
    assert published  # yesterday's marts stay readable
