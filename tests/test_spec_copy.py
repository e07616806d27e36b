"""The project ships its own copy of the reporting contract; it must stay identical to ../shared."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from hrss_warehouse.config import PROJECT_ROOT, SEED_DIR, SPEC_DIR

SHARED = PROJECT_ROOT.parent / "shared"


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(("ours", "theirs"), [(SPEC_DIR, "survey_spec"), (SEED_DIR, "seed")])
def test_copy_matches_shared(ours: Path, theirs: str) -> None:
    shared = SHARED / theirs
    if not shared.is_dir():
        pytest.skip(f"{shared} does not exist here (a user's clone has no ../shared)")
    assert _files(ours) == _files(shared), f"sync {ours} from {shared}"
    differing = [name for name in _files(shared)
                 if not filecmp.cmp(ours / name, shared / name, shallow=False)]
    assert not differing, f"copy out of date, sync from {shared}: {differing}"
