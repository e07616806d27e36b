"""In Airflow, Cosmos builds the dbt profile from the Airflow connection `hrss_warehouse` (the one
`hrss airflow start`, `hrss run` and docker-compose define); the target's other keys come from
dbt_project/profiles.yml (README, "Which dbt profile where")."""

from __future__ import annotations

import pytest

from hrss_warehouse.airflow import orchestration as orc
from hrss_warehouse.config import Settings
from hrss_warehouse.local import airflow_env


def test_cosmos_builds_the_dbt_profile_from_the_warehouse_connection(tmp_path, dbt_manifest,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path, port=55999,
                        external_dsn="postgresql://hrss_admin:s3cr%40t@db.example:5433/hrss?sslmode=require")
    monkeypatch.setenv("AIRFLOW_CONN_HRSS_WAREHOUSE", airflow_env.warehouse_connection(settings))
    mapping = orc.dbt_group_args()["profile_config"].profile_mapping
    assert type(mapping).__name__ == "PostgresUserPasswordProfileMapping"
    assert mapping.conn_id == "hrss_warehouse"
    params = settings.conn_params()
    profile = mapping.profile
    assert (profile["host"], int(profile["port"]), profile["user"], profile["dbname"]) == (
        params["host"], int(params["port"]), params["user"], params["dbname"])
    # every statement as the transformer stage role, into the schema profiles.yml names
    assert (profile["role"], profile["schema"]) == ("hrss_transformer", "intermediate")
    assert profile["sslmode"] == "require"
    # the password never in the profile file: an environment variable dbt reads
    assert params["password"] not in str(profile)
    assert params["password"] in mapping.env_vars.values()
