"""Settings come from the environment; a wrong setting is named in the error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hrss_warehouse.config import ConfigError, Settings


def test_defaults_live_under_hrss_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HRSS_HOME", str(tmp_path))
    monkeypatch.delenv("HRSS_PG_PORT", raising=False)
    monkeypatch.delenv("HRSS_WAREHOUSE_DSN", raising=False)
    s = Settings.from_env()
    assert s.port == 55432 and s.embedded
    for folder in (s.pgdata, s.airflow_home, s.landing_dir, s.archive_dir, s.quarantine_dir, s.reports_dir):
        assert folder.is_relative_to(tmp_path)
    assert s.dsn().startswith("postgresql://hrss_admin:") and s.dsn().endswith("@127.0.0.1:55432/hrss")


def test_bad_port_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HRSS_PG_PORT", "fifty")
    with pytest.raises(ConfigError, match="HRSS_PG_PORT"):
        Settings.from_env()


def test_external_dsn_switches_everything(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HRSS_HOME", str(tmp_path))
    monkeypatch.setenv("HRSS_WAREHOUSE_DSN", "postgresql://etl:s3cret@db.example:6543/stats")
    monkeypatch.setenv("HRSS_BI_PASSWORD", "bi-pw")
    s = Settings.from_env()
    assert not s.embedded
    assert s.dsn() == "postgresql://etl:s3cret@db.example:6543/stats"
    assert s.dsn("airflow") == "postgresql://etl:s3cret@db.example:6543/airflow"
    assert s.bi_reader_dsn() == "postgresql://bi_reader:bi-pw@db.example:6543/stats"
    assert s.conn_params()["host"] == "db.example" and s.conn_params()["port"] == "6543"


def test_secrets_are_generated_private(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HRSS_HOME", str(tmp_path))
    monkeypatch.delenv("HRSS_BI_PASSWORD", raising=False)
    first = Settings.from_env().bi_password
    assert first == Settings.from_env().bi_password
    assert (tmp_path / "secrets" / "bi_reader_password").stat().st_mode & 0o077 == 0


def test_cli_reports_config_errors_without_traceback(tmp_path) -> None:
    env = {"HRSS_HOME": str(tmp_path), "HRSS_PG_PORT": "99999", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-m", "hrss_warehouse.cli", "warehouse", "status"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert "HRSS_PG_PORT" in result.stderr and "Traceback" not in result.stderr


def test_spec_dir_without_the_spec_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from hrss_warehouse.config import SPEC_DIR, spec_dir

    monkeypatch.delenv("HRSS_SPEC_DIR", raising=False)
    assert spec_dir() == SPEC_DIR
    monkeypatch.setenv("HRSS_SPEC_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"HRSS_SPEC_DIR.*forms\.yaml, rules\.yaml"):
        spec_dir()
