"""Runtime settings: every path and connection the project uses, read from the environment.

All runtime state lives under ``$HRSS_HOME`` (default ``./.hrss``); ``HRSS_WAREHOUSE_DSN`` points
the whole project at an external PostgreSQL instead of the embedded one.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SPEC_DIR = PROJECT_ROOT / "survey_spec"
SEED_DIR = PROJECT_ROOT / "seed"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DAGS_DIR = PROJECT_ROOT / "dags"
PLUGINS_DIR = PROJECT_ROOT / "plugins"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = PACKAGE_DIR / "sql"  # the DDL the bootstrap and the loader run
DATA_DIR = PACKAGE_DIR / "data"  # the division registry and its sources

DEFAULT_PORT = 55432
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_BI_PORT = 8088
DEFAULT_REDIS_PORT = 56379
DEFAULT_GX_HISTORY = 200  # validation runs kept per suite (a national year is about 4 batches a suite)
DEFAULT_PUBLISH_DEADLINE_S = 4 * 3600  # 06:00 local for the nightly run of 02:00 (its logical date)
# `hrss airflow start`'s executors: the HRSS_AIRFLOW_EXECUTOR value -> Airflow's executor class
AIRFLOW_EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}
DEFAULT_BATCH_SUBMISSIONS = 1200
# Guard rails of the BI login and of the stages that take exclusive locks (see Settings)
DEFAULT_BI_STATEMENT_TIMEOUT_S = 300
DEFAULT_BI_IDLE_IN_TRANSACTION_TIMEOUT_S = 60
DEFAULT_BI_CONNECTION_LIMIT = 20
DEFAULT_LOCK_TIMEOUT_S = 120
# Returns for survey year Y come in from 1 January to their due date, 31 March Y+1 (survey_spec/README.md):
# the days of the year (MM-DD..MM-DD, on the survey's clock) when weeks without a receipt are worth a look
DEFAULT_COLLECTION_SEASON = "01-01..03-31"

# -- the project's fixed facts, each stated here only ----------------------------------------------
TIMEZONE = "Asia/Shanghai"  # the survey's clock: schedules, deadlines, the warehouse server's time zone
FIRST_SURVEY_YEAR = 2014  # the first survey year the spec covers
SEED_PROVINCES: tuple[str, ...] = ("13", "32", "37", "41", "42", "50", "51", "52")  # the source article's
WAREHOUSE_DB = "hrss"
AIRFLOW_DB = "airflow"
ADMIN_USER = "hrss_admin"
# Stage roles: a stage can only write where its role may (loads as the loader, dbt as the transformer).
LOADER, TRANSFORMER, BI_READER = "hrss_loader", "hrss_transformer", "bi_reader"
DBT_PROFILES = DBT_PROJECT_DIR / "profiles.yml"
DBT_PROFILE = "hrss"
DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"  # written by `hrss dbt parse` (make install)
# The manifest's nodes as `dbt ls --output json` lines, written beside it: what Cosmos renders from
DBT_LS_FILE = DBT_PROJECT_DIR / "target" / "dbt_ls.json"
# Airflow: the pool of the load tasks (one slot: a second load waits in the scheduler's queue, not in a
# worker slot; the advisory lock stays as the safety net for loads from outside Airflow), and the
# connection alerts are mailed through.
WAREHOUSE_LOAD_POOL = "warehouse_load"
NIGHTLY_DAG_ID = "jcpt_nightly"
ALERT_CONN_ID = "hrss_alerts"
# The warehouse as an Airflow connection: Cosmos' dbt profile reads it (the stages read Settings).
WAREHOUSE_CONN_ID = "hrss_warehouse"
ALERT_SENDER = "hrss-airflow@localhost"


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the setting."""


def _count(variable: str, default: int) -> int:
    raw = os.environ.get(variable, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{variable} must be a whole number >= 1, got {raw!r}")
    return int(raw)


def _port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, str(default))
    if not raw.isdigit() or not 1024 <= int(raw) <= 65535:
        raise ConfigError(f"{variable} must be a port number between 1024 and 65535, got {raw!r}")
    return int(raw)


def _text(variable: str) -> str | None:
    return os.environ.get(variable, "").strip() or None


def _seconds(variable: str) -> float | None:
    raw = os.environ.get(variable)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise ConfigError(f"{variable} must be a number of seconds >= 0, got {raw!r}")
    return value


def _choice(variable: str, choices: tuple[str, ...]) -> str:
    chosen = (os.environ.get(variable, "").strip().lower() or choices[0])
    if chosen not in choices:
        raise ConfigError(f"{variable} must be one of {', '.join(choices)}, got {chosen!r}")
    return chosen


def _json(variable: str, example: str) -> str | None:
    import json

    raw = _text(variable)
    if raw is not None:
        try:
            json.loads(raw)
        except ValueError:
            raise ConfigError(f"{variable} must be JSON, {example}") from None
    return raw


def _season(variable: str, default: str) -> str:
    """Days of the year as ``MM-DD..MM-DD`` (both included; ``12-01..03-31`` spans the new year)."""
    raw = (os.environ.get(variable) or default).strip()
    days = re.fullmatch(r"(\d\d)-(\d\d)\.\.(\d\d)-(\d\d)", raw)
    try:
        if days is None:
            raise ValueError
        for month, day in ((days[1], days[2]), (days[3], days[4])):
            date(2000, int(month), int(day))  # a leap year: 02-29 is a day of the year
    except ValueError:
        raise ConfigError(f"{variable} must be days of the year as MM-DD..MM-DD, e.g. {default}, "
                          f"got {raw!r}") from None
    return raw


def _alerts() -> dict[str, str | None]:
    relay, recipients = _text("HRSS_ALERT_SMTP"), _text("HRSS_ALERT_TO")
    if relay is None:
        return {}
    host, _, port = relay.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"HRSS_ALERT_SMTP must be host:port of a mail relay, got {relay!r}")
    if recipients is None:
        raise ConfigError("HRSS_ALERT_TO must name the alert recipients (comma-separated) "
                          "when HRSS_ALERT_SMTP is set")
    return {"alert_smtp": relay, "alert_to": recipients,
            "alert_from": _text("HRSS_ALERT_FROM") or ALERT_SENDER}


def spec_dir() -> Path:
    """The reporting contract in force: ``$HRSS_SPEC_DIR``, default the project's ``survey_spec/``.

    A statistics office that refines the rules (e.g. a rule's severity) points this at its edited copy
    and reprocesses; the checks and the feedback reports then follow that copy.
    """
    raw = os.environ.get("HRSS_SPEC_DIR")
    if not raw:
        return SPEC_DIR
    folder = Path(raw).expanduser().resolve()
    missing = [name for name in ("forms.yaml", "rules.yaml") if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"HRSS_SPEC_DIR={raw!r} must be a folder holding forms.yaml and rules.yaml; "
                          f"missing: {', '.join(missing)}")
    return folder


@dataclass(frozen=True)
class Settings:
    home: Path
    port: int
    external_dsn: str | None
    # submissions per check batch: one GX run per suite per batch, so bigger batches mean fewer fixed
    # costs and more memory (1,200 submissions is ~90k unit rows, a few hundred MB while checked)
    batch_submissions: int = DEFAULT_BATCH_SUBMISSIONS
    # processes that parse and check batches in `hrss ingest`, a reprocess and the benchmark
    check_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    # files modified more recently are left in landing (None: the default of the caller, see land.py)
    landing_min_age_s: float | None = None
    # bi_reader's role settings (applied by the bootstrap): a BI query or an open BI transaction can
    # neither run nor hold its locks for ever, and BI cannot take every connection the loads need
    bi_statement_timeout_s: int = DEFAULT_BI_STATEMENT_TIMEOUT_S
    bi_idle_in_transaction_timeout_s: int = DEFAULT_BI_IDLE_IN_TRANSACTION_TIMEOUT_S
    bi_connection_limit: int = DEFAULT_BI_CONNECTION_LIMIT
    # how long dbt build and publish wait for a lock another session holds before giving up; longer
    # than the idle timeout, so an abandoned BI transaction is ended before the build gives up
    lock_timeout_s: int = DEFAULT_LOCK_TIMEOUT_S
    # validation runs per GX suite kept in $HRSS_HOME/gx and listed in Data Docs
    gx_history: int = DEFAULT_GX_HISTORY
    # the local processes: Airflow's API server, Superset, the benchmark's warehouse (default port + 2:
    # the test warehouse sits at port + 1)
    airflow_port: int = DEFAULT_AIRFLOW_PORT
    bi_port: int = DEFAULT_BI_PORT
    bench_port: int = DEFAULT_PORT + 2
    # Airflow's executor in `hrss airflow start`: local, or celery (Redis and two workers)
    airflow_executor: str = "local"
    redis_port: int = DEFAULT_REDIS_PORT
    worker_concurrency: int = 2
    # alerts: a plain-SMTP relay (host:port) and recipients; unset: alerts are only logged
    alert_smtp: str | None = None
    alert_to: str | None = None
    alert_from: str = ALERT_SENDER
    publish_deadline_s: float = DEFAULT_PUBLISH_DEADLINE_S
    # OpenLineage transport as JSON; None: a JSON-lines file under $HRSS_HOME/lineage
    openlineage_transport: str | None = None
    collection_season: str = DEFAULT_COLLECTION_SEASON

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("HRSS_HOME", PROJECT_ROOT / ".hrss")).expanduser().resolve()
        port = _port("HRSS_PG_PORT", DEFAULT_PORT)
        return cls(home=home, port=port, external_dsn=os.environ.get("HRSS_WAREHOUSE_DSN") or None,
                   batch_submissions=_count("HRSS_BATCH_SUBMISSIONS", DEFAULT_BATCH_SUBMISSIONS),
                   check_workers=_count("HRSS_CHECK_WORKERS", os.cpu_count() or 1),
                   landing_min_age_s=_seconds("HRSS_LANDING_MIN_AGE_S"),
                   bi_statement_timeout_s=_count("HRSS_BI_STATEMENT_TIMEOUT_S",
                                                 DEFAULT_BI_STATEMENT_TIMEOUT_S),
                   bi_idle_in_transaction_timeout_s=_count("HRSS_BI_IDLE_IN_TRANSACTION_TIMEOUT_S",
                                                           DEFAULT_BI_IDLE_IN_TRANSACTION_TIMEOUT_S),
                   bi_connection_limit=_count("HRSS_BI_CONNECTION_LIMIT", DEFAULT_BI_CONNECTION_LIMIT),
                   lock_timeout_s=_count("HRSS_LOCK_TIMEOUT_S", DEFAULT_LOCK_TIMEOUT_S),
                   gx_history=_count("HRSS_GX_HISTORY", DEFAULT_GX_HISTORY),
                   airflow_port=_port("HRSS_AIRFLOW_PORT", DEFAULT_AIRFLOW_PORT),
                   bi_port=_port("HRSS_BI_PORT", DEFAULT_BI_PORT),
                   bench_port=_port("HRSS_BENCH_PG_PORT", port + 2),
                   airflow_executor=_choice("HRSS_AIRFLOW_EXECUTOR", tuple(AIRFLOW_EXECUTORS)),
                   redis_port=_port("HRSS_REDIS_PORT", DEFAULT_REDIS_PORT),
                   worker_concurrency=_count("HRSS_WORKER_CONCURRENCY", 2),
                   **_alerts(),
                   publish_deadline_s=_seconds("HRSS_PUBLISH_DEADLINE_S") or DEFAULT_PUBLISH_DEADLINE_S,
                   openlineage_transport=_json("HRSS_OPENLINEAGE_TRANSPORT",
                                               'e.g. {"type": "http", "url": "http://marquez:5000"}'),
                   collection_season=_season("HRSS_COLLECTION_SEASON", DEFAULT_COLLECTION_SEASON))

    # -- folders -------------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def docs_dir(self) -> Path:
        return self.home / "docs"

    def ensure_dirs(self) -> None:
        for folder in (self.home, self.log_dir, self.secrets_dir, self.airflow_home, self.landing_dir,
                       self.archive_dir, self.quarantine_dir, self.reports_dir, self.docs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.chmod(0o700)

    # -- credentials ---------------------------------------------------------------------------
    @property
    def embedded(self) -> bool:
        return self.external_dsn is None

    def secret(self, name: str) -> str:
        """The generated secret ``$HRSS_HOME/secrets/<name>``, created (mode 0600) on first use."""
        path = self.secrets_dir / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    @cached_property
    def admin_password(self) -> str:
        return self.secret("admin_password")

    @cached_property
    def bi_password(self) -> str:
        return os.environ.get("HRSS_BI_PASSWORD") or self.secret("bi_reader_password")

    @cached_property
    def superset_db_password(self) -> str:
        return os.environ.get("HRSS_SUPERSET_DB_PASSWORD") or self.secret("superset_metadata_password")

    # -- connection strings --------------------------------------------------------------------
    def dsn(self, database: str = WAREHOUSE_DB) -> str:
        """The administrative DSN of the warehouse (or of its Airflow metadata database)."""
        if self.external_dsn:
            if database == WAREHOUSE_DB:
                return self.external_dsn
            return _replace_dbname(self.external_dsn, database)
        return f"postgresql://{ADMIN_USER}:{self.admin_password}@127.0.0.1:{self.port}/{database}"

    def bi_reader_dsn(self) -> str:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.dsn())
        params.update(user="bi_reader", password=self.bi_password)
        return _as_url(params) if self.dsn().startswith("postgres") else make_conninfo(**params)

    def conn_params(self) -> dict[str, str]:
        """The DSN split into libpq keywords (dbt profiles and Airflow connections need them)."""
        from psycopg.conninfo import conninfo_to_dict

        params = {k: str(v) for k, v in conninfo_to_dict(self.dsn()).items()}
        params.setdefault("host", "127.0.0.1")
        params.setdefault("port", "5432")
        return params


def _replace_dbname(dsn: str, database: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(dsn)
    params["dbname"] = database
    return _as_url(params) if dsn.startswith("postgres") else make_conninfo(**params)


def _as_url(params: dict) -> str:

    user = quote(str(params.get("user", "")), safe="")
    password = params.get("password")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    extra = {k: v for k, v in params.items() if k not in {"user", "password", "host", "port", "dbname"}}
    query = "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in extra.items()) if extra else ""
    return f"postgresql://{auth}{host}:{port}/{params.get('dbname', WAREHOUSE_DB)}{query}"


def settings() -> Settings:
    return Settings.from_env()
