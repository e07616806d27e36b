"""TODO docstring"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hrss_warehouse.config import FIRST_SURVEY_YEAR, Settings
from hrss_warehouse.spec import load_spec

INCOMING = ".incoming"  # archive/.incoming/: copies being written, never read as stored files

# ASCII digits only (a full-width county code is no code), matched against the whole name with
# fullmatch: `$` would also accept a name ending in a newline.
FILE_NAME = re.compile(
    r"(?P<county>[0-9]{6})_(?P<year>[0-9]{4})(?:_(?P<form>[A-Za-z]+-[0-9]+))?(?:_r(?P<rev>[0-9]{1,3}))?"
    r"\.(?P<ext>xlsx|xls|csv)",
    re.IGNORECASE | re.ASCII,
)

WORKBOOK_KINDS = frozenset({"xlsx", "xls"})


@dataclass(frozen=True)
class FileName:
    county_code: str
    survey_year: int
    form: str | None  # CSV only
    revision: int
    kind: str  # "xlsx", "xls" or "csv"


def parse_file_name(name: str) -> FileName | None:
    """The parts of a return's file name, or None when it breaks S02."""
    match = FILE_NAME.fullmatch(name)
    if not match:
        return None
    kind = match["ext"].lower()
    form = match["form"].upper() if match["form"] else None
    year = int(match["year"])
    revision = int(match["rev"]) if match["rev"] else 1
    if not FIRST_SURVEY_YEAR <= year <= datetime.now(UTC).year or revision < 1:
        return None
    if (kind == "csv") != (form is not None) or (form is not None and form not in load_spec().forms):
        return None
    return FileName(match["county"], year, form, revision, kind)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def printable_name(name: str) -> str:
    """A file name as text PostgreSQL accepts: undecodable bytes and NULs become U+FFFD."""
    raw = os.fsencode(name)
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def archive_path(settings: Settings, sha256: str, kind: str | None) -> Path:
    suffix = f".{kind}" if kind else ".bin"
    return settings.archive_dir / sha256[:2] / f"{sha256}{suffix}"


def stored_file(settings: Settings, recorded: str) -> Path:
    """Where a registered file is now: its recorded path, or its twin in archive/ or quarantine/."""
    path = Path(recorded)
    if path.exists():
        return path
    for folder in (settings.archive_dir, settings.quarantine_dir):
        twin = folder / path.parent.name / path.name
        if twin.exists():
            return twin
    return path


def name_text(name: FileName) -> str:
    form = f"_{name.form}" if name.form else ""
    revision = f"_r{name.revision}" if name.revision != 1 else ""
    return f"{name.county_code}_{name.survey_year}{form}{revision}.{name.kind}"


def move_no_overwrite(current: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        raise FileExistsError(f"refusing to overwrite {target}")
    shutil.move(current, target)
