"""Landing: which files a county has dropped into the landing folder, and which entries stay there and why.

Regular files are registered wherever they sit in the folder tree (many SFTP drop zones give each county
its own sub-folder). Left in place, each with a log line and a reason the run summary counts: symbolic
links (never followed, so a link pointing outside the landing folder is never read), the lock files of
an open workbook (Excel's ``~$…``, LibreOffice's ``.~lock.…#``), uploads in progress (``*.part``,
``*.partial``, ``*.tmp``), files written less than the minimum age ago (an upload may still be
writing; judged by the inode's change time, which a sender's copy tool cannot preserve), and anything
that is not a regular file. Every other name, however odd, is registered (a bad
one is answered by rule S02).

``scan`` only looks: it records nothing, so ``hrss status`` can call it as often as it likes. The
register stage records the scans it registers (they bound each file's received time).
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from hrss_warehouse.config import Settings

log = logging.getLogger(__name__)

IN_PROGRESS = (".part", ".partial", ".tmp")
SCHEDULED_MIN_AGE_S = 60.0  # the scheduled DAG's default: an upload still writing is left for the next run

SYMLINK = "symbolic link, never followed"
LOCK_FILE = "lock file of a workbook open in Excel or LibreOffice"
IN_PROGRESS_UPLOAD = "upload in progress"
TOO_NEW = "too new"
NOT_A_FILE = "not a regular file"
UNREADABLE = "unreadable"
CHANGED_WHILE_READ = "changed while it was read"


class LandingError(RuntimeError):
    """The landing folder is missing or unreadable; the message names it."""


class ArchiveError(RuntimeError):
    """A stored file is missing or damaged, or the archive cannot be written (``register``): the
    operator's problem (a disk, a backup), never a county's; the message names the file and the archive.
    Defined here, beside LandingError, so the CLI can catch both without importing the stages."""


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str  # one of the constants above, with a detail after ": " for some


@dataclass(frozen=True)
class Scan:
    """One look at a landing folder: what to register, what stays, and when the look began and ended."""

    landing: str  # the folder, resolved
    started_at: datetime
    finished_at: datetime
    files: list[str] = field(default_factory=list)  # absolute paths, ordered by their path in the folder
    skipped: list[Skipped] = field(default_factory=list)

    def subfolder(self, path: str | Path) -> str:
        """The sub-folder of the landing folder a file was found in ('' at the top)."""
        parent = Path(path).parent.relative_to(self.landing)
        return "" if parent == Path(".") else parent.as_posix()

    def as_dict(self) -> dict:
        """A JSON-friendly form (an Airflow XCom)."""
        return {"landing": self.landing, "started_at": self.started_at.isoformat(),
                "finished_at": self.finished_at.isoformat(), "files": self.files,
                "skipped": [asdict(s) for s in self.skipped]}

    @classmethod
    def from_dict(cls, data: dict) -> Scan:
        return cls(data["landing"], datetime.fromisoformat(data["started_at"]),
                   datetime.fromisoformat(data["finished_at"]), list(data["files"]),
                   [Skipped(**s) for s in data["skipped"]])


def default_min_age_s(settings: Settings, *, scheduled: bool) -> float:
    """The minimum file age: ``HRSS_LANDING_MIN_AGE_S`` when set, else 60 s for the scheduled DAG and 0
    for a finished folder handed over by hand (``hrss run --landing``, ``hrss ingest folder --landing``)."""
    if settings.landing_min_age_s is not None:
        return settings.landing_min_age_s
    return SCHEDULED_MIN_AGE_S if scheduled else 0.0


def skip(path: str | Path, reason: str) -> Skipped:
    """Leave ``path`` in the landing folder, with its log line."""
    log.warning("landing: left %s in place: %s", path, reason)
    return Skipped(str(path), reason)


def _reason(entry: os.DirEntry, now: float, age: float) -> str | None:
    """Why a regular file stays in landing, or None when it is to be registered."""
    name = entry.name
    if name.startswith("~$") or (name.startswith(".~lock.") and name.endswith("#")):
        return LOCK_FILE
    if name.lower().endswith(IN_PROGRESS):
        return IN_PROGRESS_UPLOAD
    # the inode's change time, set by this machine's clock on every write, rename or utime: a sender's
    # preserved (or future) modification time says nothing about whether the upload is finished
    changed = entry.stat(follow_symlinks=False).st_ctime
    if now - changed < age:
        return f"{TOO_NEW}: written {max(now - changed, 0):.0f} s ago, the minimum age is {age:g} s"
    if not os.access(entry.path, os.R_OK):
        return UNREADABLE
    return None


def scan(settings: Settings, landing: Path | None = None, min_age_s: float | None = None) -> Scan:
    """Look at ``landing`` (default ``$HRSS_HOME/landing``): the files to register and the entries left.

    ``min_age_s`` defaults to the scheduled DAG's (``default_min_age_s(settings, scheduled=True)``). A missing
    or unreadable folder raises LandingError: a typo in the setting must not make every run an empty
    success.
    """
    folder = Path(landing if landing is not None else settings.landing_dir).expanduser().resolve()
    age = min_age_s if min_age_s is not None else default_min_age_s(settings, scheduled=True)
    started = datetime.now(UTC)
    files: list[str] = []
    skipped: list[Skipped] = []
    try:
        _walk(folder, started.timestamp(), age, files, skipped)
    except OSError as exc:
        raise LandingError(f"landing folder {folder}: {exc.strerror or exc}") from None
    files.sort(key=lambda p: Path(p).relative_to(folder).parts)
    return Scan(str(folder), started, datetime.now(UTC), files, skipped)


def _walk(folder: Path, now: float, age: float, files: list[str], skipped: list[Skipped]) -> None:
    """Collect ``folder``'s entries, sub-folders included; raises OSError only for ``folder`` itself."""
    with os.scandir(folder) as entries:
        listed = sorted(entries, key=lambda e: e.name)
    for entry in listed:
        try:
            if entry.is_symlink():
                skipped.append(skip(entry.path, SYMLINK))
            elif entry.is_dir(follow_symlinks=False):
                try:
                    _walk(Path(entry.path), now, age, files, skipped)
                except OSError as exc:
                    skipped.append(skip(entry.path, f"{UNREADABLE} folder: {exc.strerror or exc}"))
            elif not entry.is_file(follow_symlinks=False):
                skipped.append(skip(entry.path, NOT_A_FILE))
            elif reason := _reason(entry, now, age):
                skipped.append(skip(entry.path, reason))
            else:
                files.append(entry.path)
        except FileNotFoundError:  # gone while we looked (an upload renamed, another run took it)
            continue
