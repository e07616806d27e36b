"""The environment that configures Airflow: read back by Airflow itself, connected for real, and
migrated twice (idempotent), with every path under $HRSS_HOME."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hrss_warehouse.config import DAGS_DIR, PLUGINS_DIR, WAREHOUSE_LOAD_POOL, Settings
from hrss_warehouse.local import airflow_env

# Run by Airflow in a fresh interpreter: its configuration and connection as Airflow sees them.
AIRFLOW_VIEW = """
import json
import psycopg
import sqlalchemy
from airflow.configuration import conf
from airflow.models.connection import Connection

conn = Connection.get_connection_from_secrets("hrss_warehouse")
with psycopg.connect(host=conn.host, port=conn.port, user=conn.login, password=conn.password,
                     dbname=conn.schema, connect_timeout=5) as pg:
    warehouse_db = pg.execute("select current_database()").fetchone()[0]
engine = sqlalchemy.create_engine(conf.get("database", "sql_alchemy_conn"))
with engine.connect() as db:
    metadata_db = db.execute(sqlalchemy.text("select current_database()")).scalar()
    migrated = db.execute(sqlalchemy.text("select count(*) from alembic_version")).scalar()
print(json.dumps({
    "dags_folder": conf.get("core", "dags_folder"),
    "plugins_folder": conf.get("core", "plugins_folder"),
    "load_examples": conf.getboolean("core", "load_examples"),
    "timezone": conf.get("core", "default_timezone"),
    "executor": conf.get("core", "executor"),
    "conn_type": conn.conn_type,
    "warehouse_db": warehouse_db,
    "metadata_db": metadata_db,
    "migrated": migrated,
}))
"""


@pytest.fixture(scope="module")
def migrated(settings: Settings) -> list[float]:
    """Migrate twice: the second finds the schema current and returns at once."""
    return [airflow_env.migrate(settings), airflow_env.migrate(settings)]


def test_airflow_reads_the_project_configuration(settings: Settings, migrated: list[float]) -> None:
    env = airflow_env.prepare(settings)
    result = subprocess.run([sys.executable, "-c", AIRFLOW_VIEW], env=env, capture_output=True, text=True,
                            timeout=120, check=False, cwd=settings.home)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "dags_folder": str(DAGS_DIR), "plugins_folder": str(PLUGINS_DIR), "load_examples": False,
        "timezone": "Asia/Shanghai", "executor": "LocalExecutor", "conn_type": "postgres",
        "warehouse_db": "hrss", "metadata_db": "airflow", "migrated": 1,
    }
    print(f"airflow db migrate: {migrated[0]:.1f} s, again: {migrated[1]:.1f} s")
    assert migrated[1] < 5


def test_everything_airflow_writes_is_under_hrss_home(settings: Settings, migrated: list[float]) -> None:
    env = airflow_env.airflow_env(settings)
    code_folders = {"AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER"}
    for key, value in env.items():
        if value.startswith("/") and key not in code_folders:
            assert Path(value).is_relative_to(settings.home), f"{key}={value}"
    assert Path(env["AIRFLOW_HOME"]) == settings.home / "airflow"
    assert (settings.airflow_home / "airflow.cfg").exists()


def test_the_load_pool_has_one_slot(settings: Settings, migrated: list[float]) -> None:
    import psycopg

    # Airflow's own table of pools, read in its metadata database (the CLI costs ~20 s of imports)
    with psycopg.connect(settings.dsn(airflow_env.AIRFLOW_DB)) as conn:
        pools = conn.execute("SELECT pool, slots FROM slot_pool WHERE pool = %s",
                             (WAREHOUSE_LOAD_POOL,)).fetchall()
    assert pools == [("warehouse_load", 1)]


def test_ui_login_is_stable(settings: Settings) -> None:
    airflow_env.prepare(settings)
    passwords = json.loads((settings.airflow_home / "simple_auth_manager_passwords.json").read_text())
    assert passwords == {airflow_env.ADMIN_LOGIN: airflow_env.admin_password(settings)}
    assert (settings.airflow_home / "simple_auth_manager_passwords.json").stat().st_mode & 0o077 == 0


def test_external_dsn_is_translated(tmp_path: Path) -> None:
    external = Settings(home=tmp_path, port=55432,
                        external_dsn="postgresql://etl:p%40ss%2Fw@db.example.org:6543/hrss?sslmode=require")
    url = airflow_env.sqlalchemy_url(external)
    assert url == "postgresql+psycopg2://etl:p%40ss%2Fw@db.example.org:6543/airflow?sslmode=require"
    conn = json.loads(airflow_env.warehouse_connection(external))
    assert conn == {"conn_type": "postgres", "host": "db.example.org", "port": 6543, "login": "etl",
                    "password": "p@ss/w", "schema": "hrss", "extra": {"sslmode": "require"}}
    env = airflow_env.airflow_env(external)
    assert env["HRSS_WAREHOUSE_DSN"] == external.external_dsn


def test_bad_port_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from hrss_warehouse.config import ConfigError

    monkeypatch.setenv("HRSS_AIRFLOW_PORT", "eighty")
    with pytest.raises(ConfigError, match="HRSS_AIRFLOW_PORT"):
        Settings.from_env()
