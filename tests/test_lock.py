"""uv.lock is the one list of versions `make install`, CI and the Docker image install: it must agree
with pyproject.toml. Checked offline (uv reads the lock and its own cache, never the index)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from hrss_warehouse.config import PROJECT_ROOT

LOCK = PROJECT_ROOT / "uv.lock"


def _uv() -> str:
    # `make install` brings uv into the venv when it is not on PATH.
    beside = Path(sys.executable).with_name("uv")
    return str(beside) if beside.exists() else (shutil.which("uv") or "uv")


def _lock_check(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_uv(), "lock", "--check", "--offline"], cwd=folder, capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_lock_agrees_with_pyproject() -> None:
    result = _lock_check(PROJECT_ROOT)
    assert result.returncode == 0, result.stderr


def test_a_dependency_changed_without_the_lock_is_caught(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md", "tools/pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    assert '"psutil==' in text
    pyproject.write_text("\n".join(line for line in text.splitlines() if '"psutil==' not in line) + "\n")
    result = _lock_check(tmp_path)
    assert result.returncode != 0
    assert "needs to be updated" in result.stderr


def test_fastexcel_is_gone() -> None:
    # Never imported: the lock would carry it into every install for nothing.
    assert 'name = "fastexcel"' not in LOCK.read_text()


def test_the_image_installs_the_lock_non_editable() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "uv export --frozen" in dockerfile
    assert "COPY --chown=airflow:root pyproject.toml uv.lock" in dockerfile
    assert " -e " not in dockerfile
