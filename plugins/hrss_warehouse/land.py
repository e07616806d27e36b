"""Landing: which files a county has dropped into the landing folder.

Only regular files count: uploads in progress (``*.part``, ``*.partial``, ``*.tmp``), Excel's lock files
(``~$…``), folders and symbolic links are left where they are, so a half-written upload or a link
pointing outside the landing folder is never read. Every other name, however odd, is registered (a bad
one is answered by rule S02).
"""

from __future__ import annotations

from pathlib import Path

from hrss_warehouse.config import Settings

IN_PROGRESS = (".part", ".partial", ".tmp")


def discover(settings: Settings, landing: Path) -> list[str]:
    """Paths of the files waiting in ``landing``, in a stable (name) order."""
    landing = Path(landing)
    if not landing.is_dir():
        return []
    found = [
        entry for entry in landing.iterdir()
        if not entry.name.startswith("~$") and not entry.name.endswith(IN_PROGRESS)
        and entry.is_file() and not entry.is_symlink()
    ]
    return [str(path) for path in sorted(found, key=lambda p: p.name)]
