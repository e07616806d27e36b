"""Apache Superset on the published marts: its metadata database, its start and stop, its bundle.

Superset's pins conflict with Airflow's, so it lives in a virtualenv of its own (``.venv-bi``, made by
``make bi``); this module runs in the project's venv and drives Superset's CLI, gunicorn and
``bi/superset_setup.py`` (which runs inside Superset's app) as subprocesses of ``.venv-bi``.
Superset reads the marts only as ``bi_reader``; its own metadata lives in the database
``superset`` of the warehouse server, owned by the login ``superset``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

from psycopg import sql

from hrss_warehouse.config import PROJECT_ROOT, WAREHOUSE_DB, Settings
from hrss_warehouse.db import MAINTENANCE_DB, connect

BI_VENV = PROJECT_ROOT / ".venv-bi"
BI_DIR = PROJECT_ROOT / "bi"
BUNDLE_DIR = BI_DIR / "superset"
SETUP_SCRIPT = BI_DIR / "superset_setup.py"
CONFIG_FILE = BI_DIR / "superset_config.py"
METADATA_DB = METADATA_ROLE = "superset"
ADMIN_LOGIN = "admin"
START_TIMEOUT_S = 180
STOP_GRACE_S = 20
# The logins the bundle's security set-up creates (bi/superset_setup.py): a provincial and a national
# viewer. Their passwords are generated into $HRSS_HOME/secrets like every other login's.
VIEWERS = ("hubei_viewer", "national_viewer")


class BIError(RuntimeError):
    """Superset cannot be installed, set up or started; the message says what to do."""


def url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.bi_port}"


def home(settings: Settings) -> Path:
    return settings.home / "superset"


def password(settings: Settings, login: str) -> str:
    """The generated password of a Superset login (admin or one of VIEWERS)."""
    return settings.secret(f"superset_{login}_password")


def _executable(name: str) -> str:
    path = BI_VENV / "bin" / name
    if not path.exists():
        raise BIError(f"Superset is not installed in {BI_VENV}: run `make bi`")
    return str(path)


def _metadata_uri(settings: Settings) -> str:
    meta_password = settings.superset_db_password
    params = settings.conn_params()
    return (f"postgresql+psycopg2://{METADATA_ROLE}:{meta_password}@{params['host']}:{params['port']}/"
            f"{METADATA_DB}")


def ensure_metadata_database(settings: Settings) -> None:
    """The login ``superset`` and its database, on the warehouse server; idempotent."""
    meta_password = settings.superset_db_password
    first_db = MAINTENANCE_DB if settings.embedded else WAREHOUSE_DB
    with connect(settings, autocommit=True, database=first_db) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (METADATA_ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(METADATA_ROLE)))
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
            sql.Identifier(METADATA_ROLE), sql.Literal(meta_password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (METADATA_DB,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(METADATA_DB), sql.Identifier(METADATA_ROLE)))
        # Only its owner connects: Superset's metadata holds its users' password hashes.
        conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(METADATA_DB)))


def superset_env(settings: Settings) -> dict[str, str]:
    """The environment every Superset process of this project runs with (read by superset_config.py)."""
    folder = home(settings)
    folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
    env.update(
        SUPERSET_CONFIG_PATH=str(CONFIG_FILE),
        SUPERSET_HOME=str(folder),
        FLASK_APP="superset.app:create_app()",
        SUPERSET_SECRET_KEY=settings.secret("superset_secret_key"),
        HRSS_SUPERSET_METADATA_URI=_metadata_uri(settings),
        HRSS_BI_READER_DSN=settings.bi_reader_dsn(),
        HRSS_SUPERSET_BUNDLE=str(BUNDLE_DIR),
        PATH=f"{BI_VENV / 'bin'}:{env.get('PATH', '')}",
        **{f"HRSS_SUPERSET_{login.upper()}_PASSWORD": password(settings, login) for login in VIEWERS},
    )
    return env


def _run(settings: Settings, step: str, args: list[str], env: dict[str, str]) -> None:
    log = settings.log_dir / "superset-setup.log"
    with log.open("a") as out:
        out.write(f"\n== {step}\n")
        out.flush()
        result = subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=home(settings), check=False)
    if result.returncode != 0:
        raise BIError(f"Superset {step} failed; see {log}")


def setup(settings: Settings) -> None:
    """Metadata schema, roles, the admin login, the dashboards bundle, viewers and RLS; idempotent."""
    ensure_metadata_database(settings)
    env = superset_env(settings)
    superset = _executable("superset")
    _run(settings, "db upgrade", [superset, "db", "upgrade"], env)
    _run(settings, "init", [superset, "init"], env)
    env["HRSS_SUPERSET_ADMIN_PASSWORD"] = password(settings, ADMIN_LOGIN)
    _run(settings, "import of bi/superset and security set-up",
         [_executable("python"), str(SETUP_SCRIPT)], env)


def _pid_file(settings: Settings) -> Path:
    return home(settings) / "gunicorn.json"


def _recorded(settings: Settings):
    """The running web server `start` recorded, or None (also when the pid was reused)."""
    import psutil

    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, psutil.Error):
        record = json.loads(_pid_file(settings).read_text())
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["create_time"]) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    _pid_file(settings).unlink(missing_ok=True)
    return None


def _healthy(settings: Settings, timeout_s: float = 5) -> bool:
    health = f"{url(settings)}/health"
    with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=timeout_s) as answer:
        return answer.status == 200
    return False


def start(settings: Settings) -> str:
    """Set Superset up, then start its web server in the background; safe to run twice."""
    import psutil

    setup(settings)
    if _recorded(settings) is not None:
        return f"Superset already running at {url(settings)}"
    env = superset_env(settings)
    log = (settings.log_dir / "superset.log").open("ab")
    # One worker with threads: the dashboards' queries are small, and the machine's cores are few.
    popen = subprocess.Popen(
        [_executable("gunicorn"), "--bind", f"127.0.0.1:{settings.bi_port}", "--workers", "1",
         "--threads", "8", "--worker-class", "gthread", "--timeout", "120", "superset.app:create_app()"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=home(settings),
        start_new_session=True)
    log.close()
    _pid_file(settings).write_text(json.dumps(
        {"pid": popen.pid, "create_time": psutil.Process(popen.pid).create_time()}))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(settings):
        if popen.poll() is not None:
            raise BIError(f"Superset exited at start; see {settings.log_dir}/superset.log")
        if time.monotonic() > deadline:
            raise BIError(f"Superset did not answer at {url(settings)}/health within {START_TIMEOUT_S} s; "
                          f"see {settings.log_dir}/superset.log")
        time.sleep(1)
    return f"Superset started at {url(settings)}"


def stop(settings: Settings) -> str:
    import psutil

    proc = _recorded(settings)
    if proc is None:
        return "Superset is not running"
    family = [*proc.children(recursive=True), proc]
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    _, alive = psutil.wait_procs(family, timeout=STOP_GRACE_S)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    _pid_file(settings).unlink(missing_ok=True)
    return "Superset stopped"
