"""The environment that configures Airflow for this project, and the local Airflow processes.

Airflow reads its configuration from ``AIRFLOW__SECTION__KEY`` variables when it is imported, so
everything is set through the environment of the processes we start (or of this process before
``import airflow``, for ``hrss run``): nothing is written to ``airflow.cfg`` and nothing outside
``$HRSS_HOME``. The metadata database is the ``airflow`` database of the warehouse PostgreSQL
(created by ``db.bootstrap``); the warehouse itself is the Airflow connection ``hrss_warehouse``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from hrss_warehouse.config import (
    AIRFLOW_DB,
    AIRFLOW_EXECUTORS,
    ALERT_CONN_ID,
    DAGS_DIR,
    PLUGINS_DIR,
    TIMEZONE,
    WAREHOUSE_CONN_ID,
    WAREHOUSE_LOAD_POOL,
    Settings,
)

CONN_ID = WAREHOUSE_CONN_ID
ADMIN_LOGIN = "admin"
# The components `make airflow` runs; each gets its own session so that stop can reach its workers.
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# With HRSS_AIRFLOW_EXECUTOR=celery (`make airflow EXECUTOR=celery`): Redis as the broker and two workers.
CELERY_WORKERS = ("worker1", "worker2")
CELERY_COMPONENTS = ("redis", *(f"celery-{w}" for w in CELERY_WORKERS))
PROJECT_DAGS = ("jcpt_nightly", "jcpt_reprocess", "reference_divisions")
MIGRATE_TIMEOUT_S = 600
# The pools the DAGs use: name -> (slots, description). The loads queue for the one warehouse_load slot.
POOLS = {WAREHOUSE_LOAD_POOL: (1, "one load into the warehouse at a time (the advisory lock stays below)")}
STOP_GRACE_S = 5
# Tasks that read or write no data emit no OpenLineage events: the model and test tasks of the dbt group
# only read what the one `dbt build` reported (its producer task carries the lineage of every model),
# and an event pair costs each of those tasks more than its own work.
LINEAGE_FREE_OPERATORS = ("cosmos.operators.watcher.DbtRunWatcherOperator",
                          "cosmos.operators.watcher.DbtSeedWatcherOperator",
                          "cosmos.operators.watcher.DbtTestWatcherOperator")


class AirflowEnvError(RuntimeError):
    """Airflow cannot be configured, migrated, started or stopped; the message says why."""





def worker_hostname() -> str:
    """The hostname a Celery worker's tasks record (``[core] hostname_callable`` of the workers): the
    machine's name and the worker's, so that two workers on one machine can be told apart."""
    import socket

    name = os.environ.get("HRSS_WORKER_NAME")
    return f"{socket.getfqdn()}-{name}" if name else socket.getfqdn()



def _fernet_key(path: Path) -> str:
    """A Fernet key (urlsafe base64 of 32 random bytes), generated once into the secrets folder."""
    if not path.exists():
        key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
    return path.read_text().strip()


def sqlalchemy_url(settings: Settings) -> str:
    """The metadata database as a SQLAlchemy URL (psycopg2 driver, as Airflow documents it)."""
    from psycopg.conninfo import conninfo_to_dict

    params = {k: str(v) for k, v in conninfo_to_dict(settings.dsn(AIRFLOW_DB)).items()}
    user = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
    host = params.pop("host", "127.0.0.1")
    port = params.pop("port", "5432")
    dbname = params.pop("dbname", AIRFLOW_DB)
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(params.items()))
    url = f"postgresql+psycopg2://{auth}{host}:{port}/{quote(dbname, safe='')}"
    return f"{url}?{query}" if query else url


def warehouse_connection(settings: Settings) -> str:
    """The ``hrss_warehouse`` Airflow connection in the JSON form Airflow accepts from the environment."""
    params = settings.conn_params()
    extra = {k: v for k, v in params.items() if k not in {"host", "port", "user", "password", "dbname"}}
    conn = {"conn_type": "postgres", "host": params["host"], "port": int(params["port"]),
            "login": params.get("user", ""), "password": params.get("password", ""),
            "schema": params.get("dbname", "")}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def alert_connection(settings: Settings) -> str | None:
    """The ``hrss_alerts`` connection (Airflow's JSON form) from HRSS_ALERT_SMTP / _TO / _FROM, if set."""
    if settings.alert_smtp is None:
        return None
    host, _, port = settings.alert_smtp.rpartition(":")
    # A local relay speaks plain SMTP; a relay that needs TLS or a login is configured as the
    # connection itself (AIRFLOW_CONN_HRSS_ALERTS or a secrets backend).
    return json.dumps({"conn_type": "smtp", "host": host, "port": int(port),
                       "extra": {"to": settings.alert_to, "from_email": settings.alert_from,
                                 "disable_ssl": True, "disable_tls": True,
                                 "retry_limit": 1, "timeout": 30}})


def lineage_transport(settings: Settings) -> str:
    """OpenLineage's transport: HRSS_OPENLINEAGE_TRANSPORT (JSON, any backend), else one JSON-lines file."""
    if settings.openlineage_transport:
        return settings.openlineage_transport
    return json.dumps({"type": "file", "log_file_path": str(lineage_file(settings)), "append": True})


def lineage_file(settings: Settings) -> Path:
    return settings.home / "lineage" / "openlineage.jsonl"


def airflow_env(settings: Settings, port: int | None = None) -> dict[str, str]:
    """The variables every Airflow process of this project runs with (merged over ``os.environ``)."""
    settings.ensure_dirs()
    home = settings.airflow_home
    port = port or settings.airflow_port
    env = {
        "AIRFLOW_HOME": str(home),
        # The stage code reads its settings from these in the task processes.
        "HRSS_HOME": str(settings.home),
        "HRSS_PG_PORT": str(settings.port),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": TIMEZONE,
        "AIRFLOW__CORE__EXECUTOR": AIRFLOW_EXECUTORS[settings.airflow_executor],
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(settings.secrets_dir / "airflow_fernet_key"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sqlalchemy_url(settings),
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": warehouse_connection(settings),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # The log servers of the scheduler's workers and of the triggerer sit next to the API port,
        # so that two homes (a demo and a test run) can run Airflow side by side.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(port + 1),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(port + 2),
        # Components in separate processes must share the signing secrets, or tasks cannot report back.
        "AIRFLOW__API_AUTH__JWT_SECRET": settings.secret("airflow_jwt_secret"),
        "AIRFLOW__API__SECRET_KEY": settings.secret("airflow_api_secret_key"),
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_LOGIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        # No internet here and no reason to phone home; Cosmos caches under the Airflow home.
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "SCARF_ANALYTICS": "false",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos_cache"),
        "DO_NOT_TRACK": "1",
        # Lineage of every run (tasks, Cosmos' dbt models) as OpenLineage events.
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "hrss",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": lineage_transport(settings),
        "AIRFLOW__OPENLINEAGE__DISABLED_FOR_OPERATORS": ";".join(LINEAGE_FREE_OPERATORS),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        # Cosmos runs dbt in a temporary copy of the project: keep those copies under $HRSS_HOME too.
        "TMPDIR": str(settings.home / "tmp"),
        # Bytecode of the DAG files and the package goes there too, not into the checkout.
        "PYTHONPYCACHEPREFIX": str(settings.home / "pycache"),
    }
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    if settings.airflow_executor == "celery":
        env.update({
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{settings.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url(settings),
            # One task message at a time per free slot: a worker that dies holds no queue of others.
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            # Longer than any task: Redis hands an unacknowledged message (acks are late) to another
            # worker after this, which would start a task that still runs a second time. A task lost
            # with its worker is found sooner by the scheduler, by its missing heartbeat
            # ([scheduler] task_instance_heartbeat_timeout), and retried.
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(24 * 3600),
            # Sending a task to Redis gets more than the default second on a busy machine.
            "AIRFLOW__CELERY__OPERATION_TIMEOUT": "10",
            # No more tasks sent than the workers have slots: a task waiting in Redis behind a backlog
            # (all of the dbt group at once) outlives its 10-minute execution token and fails unstarted.
            "AIRFLOW__CORE__PARALLELISM": str(len(CELERY_WORKERS) * settings.worker_concurrency),
        })
    if alerts := alert_connection(settings):
        env[f"AIRFLOW_CONN_{ALERT_CONN_ID.upper()}"] = alerts
    return env


def admin_password(settings: Settings) -> str:
    return settings.secret("airflow_admin_password")


def prepare(settings: Settings) -> dict[str, str]:
    """Create the Airflow home and the UI login; returns the full process environment."""
    env = airflow_env(settings)
    home = settings.airflow_home
    for folder in (home, home / "cosmos_cache", settings.home / "tmp", home / "pids",
                   lineage_file(settings).parent):
        folder.mkdir(parents=True, exist_ok=True)
    # The simple auth manager keeps logins in this file; writing it ourselves gives a stable password.
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    wanted = {ADMIN_LOGIN: admin_password(settings)}
    if not passwords.exists() or json.loads(passwords.read_text() or "{}") != wanted:
        passwords.write_text(json.dumps(wanted) + "\n")
        passwords.chmod(0o600)
    return {**os.environ, **env}


def apply(settings: Settings) -> None:
    """Configure this process for Airflow; must run before the first ``import airflow``."""
    if "airflow.configuration" in sys.modules:
        raise AirflowEnvError("Airflow was imported before its environment was set")
    os.environ.update(prepare(settings))
    tempfile.tempdir = None  # re-read TMPDIR on next use
    sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]


def _airflow_exe() -> str:
    # The Airflow console script sits next to this interpreter; Airflow itself starts `airflow` by name.
    exe = Path(sys.executable).with_name("airflow")
    return str(exe) if exe.exists() else (shutil.which("airflow") or "airflow")


def _head_revision() -> str | None:
    """The newest metadata schema revision of the installed Airflow, read from its migration files."""
    import importlib.util

    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    revisions, parents = set(), set()
    for script in (Path(spec.submodule_search_locations[0]) / "migrations" / "versions").glob("*.py"):
        text = script.read_text(encoding="utf-8")
        if found := re.search(r'^revision\s*=\s*["\']([0-9a-f]+)["\']', text, re.MULTILINE):
            revisions.add(found.group(1))
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.MULTILINE)
        parents.update(re.findall(r"[0-9a-f]{12}", down.group(1)) if down else [])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_revision(settings: Settings) -> str | None:
    from hrss_warehouse.db import connect

    with connect(settings, database=AIRFLOW_DB) as conn:
        if conn.execute("SELECT to_regclass('public.alembic_version')").fetchone()[0] is None:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


def migrate(settings: Settings) -> float:
    """Run ``airflow db migrate`` unless the schema is already current. Returns the seconds it took."""
    from hrss_warehouse.local import postgres

    started = time.monotonic()
    postgres.start(settings)  # idempotent; creates the `airflow` database
    env = prepare(settings)
    head = _head_revision()
    # `airflow db migrate` costs half a minute on a busy machine even when there is nothing to do.
    if head is not None and _current_revision(settings) == head:
        _ensure_pools(settings, env)
        return time.monotonic() - started
    log = settings.log_dir / "airflow-db-migrate.log"
    with log.open("w") as out:
        result = subprocess.run([_airflow_exe(), "db", "migrate"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=MIGRATE_TIMEOUT_S, check=False, cwd=settings.home)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        raise AirflowEnvError(f"`airflow db migrate` failed (exit {result.returncode}); see {log}:\n{tail}")
    _ensure_pools(settings, env)
    return time.monotonic() - started


def _pool_slots(settings: Settings, pool: str) -> int | None:
    from hrss_warehouse.db import connect

    with connect(settings, database=AIRFLOW_DB) as conn:
        row = conn.execute("SELECT slots FROM slot_pool WHERE pool = %s", (pool,)).fetchone()
        return row[0] if row else None


def _ensure_pools(settings: Settings, env: dict[str, str]) -> None:
    """Create the pools the DAGs name, through Airflow's own CLI, unless they already have their slots."""
    for pool, (slots, description) in POOLS.items():
        if _pool_slots(settings, pool) == slots:
            continue
        result = subprocess.run([_airflow_exe(), "pools", "set", pool, str(slots), description], env=env,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                timeout=MIGRATE_TIMEOUT_S, check=False, cwd=settings.home)
        if result.returncode != 0:
            raise AirflowEnvError(f"`airflow pools set {pool}` failed (exit {result.returncode}): "
                                  f"{result.stderr.strip().splitlines()[-1:]}")


# -- local processes (`make airflow` / `make airflow-stop`) ----------------------------------------
@dataclass(frozen=True)
class Running:
    component: str
    pid: int


def _pid_file(settings: Settings, component: str) -> Path:
    return settings.airflow_home / "pids" / f"{component}.json"


def _recorded(settings: Settings, component: str):
    """The live process recorded for a component, or None (also when the pid was reused)."""
    import psutil

    path = _pid_file(settings, component)
    try:
        record = json.loads(path.read_text())
        proc = psutil.Process(record["pid"])
        if abs(proc.create_time() - record["create_time"]) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except (FileNotFoundError, ValueError, KeyError, psutil.Error):
        pass
    path.unlink(missing_ok=True)
    return None


def _command(settings: Settings, component: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one component."""
    if component == "redis":
        redis = shutil.which("redis-server")
        if redis is None:
            raise AirflowEnvError("the Celery executor needs Redis: redis-server is not installed "
                                  "(Debian package redis-server; `make system-deps` installs it)")
        folder = settings.home / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        # A broker only: nothing persisted, loopback only.
        return [redis, "--port", str(settings.redis_port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(folder)], env
    if component.startswith("celery-"):
        worker = component.removeprefix("celery-")
        # Logs are read from the shared local log folder; two log servers on one port could not both bind.
        return ([_airflow_exe(), "celery", "worker", "--celery-hostname", f"{worker}@%h", "--concurrency",
                 str(settings.worker_concurrency), "--skip-serve-logs"],
                {**env, "HRSS_WORKER_NAME": worker,
                 "AIRFLOW__CORE__HOSTNAME_CALLABLE": "hrss_warehouse.local.airflow_env.worker_hostname"})
    return [_airflow_exe(), component], env


def _wait_for_port(port: int, wait_s: float, what: str) -> None:
    import socket

    deadline = time.monotonic() + wait_s
    while True:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise AirflowEnvError(f"{what} did not listen on 127.0.0.1:{port} within {wait_s:.0f} s")
        time.sleep(0.5)


def components(settings: Settings) -> tuple[str, ...]:
    """What `start` runs with the executor chosen: Redis first (the broker), then Airflow."""
    if settings.airflow_executor == "celery":
        return CELERY_COMPONENTS[:1] + COMPONENTS + CELERY_COMPONENTS[1:]
    return COMPONENTS


def unpause_project_dags(settings: Settings) -> list[str]:
    """Unpause the project's DAGs already registered (new ones are created unpaused, see `start`)."""
    from hrss_warehouse.db import connect

    with connect(settings, database=AIRFLOW_DB) as conn:
        if conn.execute("SELECT to_regclass('public.dag')").fetchone()[0] is None:
            return []
        rows = conn.execute("UPDATE dag SET is_paused = false WHERE dag_id = ANY(%s) AND is_paused"
                            " RETURNING dag_id", (list(PROJECT_DAGS),)).fetchall()
        conn.commit()
    return [r[0] for r in rows]


def start(settings: Settings, wait_s: float = 180, unpause: bool = False) -> list[Running]:
    """Start the warehouse and the Airflow components in the background; safe to run twice.

    With ``unpause`` (what `make airflow` does) the project's DAGs run on their schedules."""
    import urllib.request

    import psutil

    migrate(settings)
    env = prepare(settings)
    if unpause:
        env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
        unpause_project_dags(settings)
    started = []
    for component in components(settings):
        proc = _recorded(settings, component)
        if proc is None:
            command, component_env = _command(settings, component, env)
            log = (settings.log_dir / f"airflow-{component}.log").open("ab")
            # A session of its own: stop can then find workers that outlived their parent.
            popen = subprocess.Popen(command, env=component_env, stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=settings.home, start_new_session=True)
            log.close()
            record = {"pid": popen.pid, "create_time": psutil.Process(popen.pid).create_time()}
            _pid_file(settings, component).write_text(json.dumps(record))
            started.append(Running(component, popen.pid))
            if component == "redis":
                _wait_for_port(settings.redis_port, 30, "redis-server")
        else:
            started.append(Running(component, proc.pid))
    url = f"{env['AIRFLOW__API__BASE_URL']}/api/v2/monitor/health"
    deadline = time.monotonic() + wait_s
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                return started
        if _recorded(settings, "api-server") is None:
            raise AirflowEnvError(
                f"the Airflow API server exited; see {settings.log_dir}/airflow-api-server.log")
        if time.monotonic() > deadline:
            raise AirflowEnvError(f"the Airflow API server did not answer at {url} within {wait_s:.0f} s; "
                                  f"see {settings.log_dir}/airflow-api-server.log")
        time.sleep(1)


def _terminate(procs: list, grace_s: float) -> None:
    import psutil

    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace_s)


def stop(settings: Settings) -> list[str]:
    """Stop every process `start` started: workers first (orphaned LocalExecutor workers ignore SIGTERM)."""
    import psutil

    components = {c: proc for c in (*COMPONENTS, *CELERY_COMPONENTS)
                  if (proc := _recorded(settings, c)) is not None}
    sessions = {os.getsid(proc.pid) for proc in components.values()}
    children = [child for proc in components.values() for child in proc.children(recursive=True)]
    _terminate(children, STOP_GRACE_S)
    _terminate(list(components.values()), STOP_GRACE_S)
    # Whatever is left in the components' sessions (workers orphaned earlier keep the session id).
    for leftover in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if leftover.pid != os.getpid() and os.getsid(leftover.pid) in sessions:
                leftover.send_signal(signal.SIGKILL)
    for component in components:
        _pid_file(settings, component).unlink(missing_ok=True)
    return list(components)


def status(settings: Settings) -> dict[str, int | None]:
    return {component: (proc.pid if (proc := _recorded(settings, component)) else None)
            for component in components(settings)}
