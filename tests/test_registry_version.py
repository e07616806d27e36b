"""A fresh warehouse needs no hidden step: the committed division registry is loaded on first use, its
version recorded in reference.registry_version, reloaded when the committed file changes; a run that
cannot load it stops before it registers any file (end to end: tests/dags/test_fresh_warehouse_run.py).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
from ingest_helpers import fixture_file

from hrss_warehouse import pipeline
from hrss_warehouse.config import Settings
from hrss_warehouse.db import connect
from hrss_warehouse.stages import reference


def _version_rows(settings: Settings) -> list[tuple]:
    with connect(settings) as conn:
        if conn.execute("SELECT to_regclass('reference.registry_version')").fetchone()[0] is None:
            return []
        return conn.execute("SELECT registry_sha256, loaded_at FROM reference.registry_version").fetchall()


def _submissions(settings: Settings) -> int:
    with connect(settings) as conn:
        if conn.execute("SELECT to_regclass('raw.submission')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT count(*) FROM raw.submission").fetchone()[0]


def test_a_registry_that_cannot_be_loaded_stops_the_run_before_any_file(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    landed = tmp_path / "landing" / "150206_2017.xlsx"
    landed.parent.mkdir()
    shutil.copy(fixture_file("pass", "good"), landed)
    monkeypatch.setattr(reference, "DIVISIONS_FILE", tmp_path / "divisions.csv.gz")  # not there
    with pytest.raises(reference.RegistryError) as refused:
        pipeline.ingest_folder(settings, landed.parent)
    message = str(refused.value)
    assert "\n" not in message and "no file was registered" in message
    assert "divisions.csv.gz is missing; rebuild it with `hrss reference build`" in message
    assert landed.exists() and _submissions(settings) == 0 and _version_rows(settings) == []


def test_the_registry_loads_on_first_use_and_again_when_its_file_changes(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _version_rows(settings) == []
    assert reference.ensure_loaded(settings) > 0
    [(version, first_loaded)] = _version_rows(settings)
    assert version == reference.registry_sha256()
    assert reference.ensure_loaded(settings) is None  # current: nothing to do
    assert _version_rows(settings) == [(version, first_loaded)]

    # the committed file changes (here: a copy without its last row): the next run reloads it
    changed = tmp_path / "divisions.csv.gz"
    lines = gzip.decompress(reference.DIVISIONS_FILE.read_bytes()).splitlines(keepends=True)
    changed.write_bytes(gzip.compress(b"".join(lines[:-1]), compresslevel=1))
    monkeypatch.setattr(reference, "DIVISIONS_FILE", changed)
    assert reference.ensure_loaded(settings) == len(lines) - 2  # without the header and that row
    [(new_version, loaded_again)] = _version_rows(settings)
    assert new_version == reference.registry_sha256() != version and loaded_again > first_loaded
    monkeypatch.undo()
    assert reference.ensure_loaded(settings) == len(lines) - 1
