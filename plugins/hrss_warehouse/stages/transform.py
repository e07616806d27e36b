"""Transform stage: run the dbt project (dbt_project/) against the warehouse.

dbt runs in a subprocess (its own process state, its own exit code) as the stage role
hrss_transformer; the connection comes from Settings through environment variables that
dbt_project/profiles.yml reads. Runtime artefacts (target/, logs/) live under $HRSS_HOME/dbt, so
several homes can build at once; only `parse` writes dbt_project/target/manifest.json, the manifest
that Cosmos renders the Airflow task group from.

The forms' metadata reaches dbt as seeds generated from forms.yaml (`write_spec_seeds`), so the
SQL never repeats which form version has which indicator.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from hrss_warehouse.config import DBT_LS_FILE, DBT_PROJECT_DIR, Settings
from hrss_warehouse.spec import load_spec

log = logging.getLogger(__name__)

PROFILE_NAME = "hrss"
TARGET_NAME = "warehouse"
BUILD_SCHEMA = "marts_build"
# the build's own records (models/build), published with the marts they describe but not for BI;
# build_info is built last, only when everything upstream passed: the build's completion marker
MARKER_TABLE = "build_info"
BUILD_RECORDS = (MARKER_TABLE, "build_forms", "build_registry")
MANIFEST_PATH = DBT_PROJECT_DIR / "target" / "manifest.json"
# dbt_project/selectors.yml: an incremental build skips the seeds and views that its last successful
# build (the manifest kept as --state) left as this code would build them again
INCREMENTAL_SELECTOR = "incremental_build"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
# Seeds written from forms.yaml: name -> header. Committed, and a test keeps them equal to the spec.
SPEC_SEEDS = {
    "jcpt_forms": ("form", "platform_level", "title_zh"),
    "jcpt_form_versions": ("form_version", "first_year", "last_year", "money_unit"),
    "jcpt_form_columns": ("form", "form_version", "position", "indicator_code", "column_name", "name_zh",
                          "column_type"),
}


class TransformError(RuntimeError):
    """dbt failed; the message names the failing nodes and where the log is."""


@dataclass(frozen=True)
class DbtResult:
    """What one dbt invocation did: its arguments, exit code, wall time and per-node statuses."""

    args: tuple[str, ...]
    returncode: int
    seconds: float
    statuses: dict[str, str] = field(default_factory=dict)  # unique_id -> status
    invocation_id: str | None = None
    log_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def failures(self) -> list[str]:
        return sorted(uid for uid, status in self.statuses.items()
                      if status in {"error", "fail", "runtime error", "skipped"})


def spec_seed_rows() -> dict[str, list[tuple]]:
    """The rows of the spec seeds, derived from forms.yaml."""
    spec = load_spec()
    forms, columns = [], []
    for form in spec.form_codes:
        versions = spec.forms[form]
        newest = max(versions, key=lambda v: spec.versions[v].first_year)
        forms.append((form, spec.level_of(form), versions[newest].title))
        for version, definition in versions.items():
            for position, column in enumerate(definition.columns, start=1):
                columns.append((form, version, position, column.code, column.name, column.zh, column.type))
    versions = [(v.name, v.first_year, "" if v.last_year is None else v.last_year, v.money_unit)
                for v in spec.versions.values()]
    return {"jcpt_forms": forms, "jcpt_form_versions": versions, "jcpt_form_columns": columns}


def render_spec_seed(name: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SPEC_SEEDS[name])
    writer.writerows(spec_seed_rows()[name])
    return out.getvalue()


def write_spec_seeds(seeds_dir: Path = SEEDS_DIR) -> list[Path]:
    """Regenerate the spec seeds after forms.yaml changed; returns the files written."""
    written = []
    for name in SPEC_SEEDS:
        path = seeds_dir / f"{name}.csv"
        path.write_text(render_spec_seed(name), encoding="utf-8")
        written.append(path)
    return written


def runtime_dir(settings: Settings) -> Path:
    return settings.home / "dbt"


def dbt_env(settings: Settings | None) -> dict[str, str]:
    """The environment dbt needs: the connection for profiles.yml plus dbt's own paths and flags.

    With ``settings`` None only the offline part is set (enough for `dbt parse`).
    """
    env = {
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_USE_COLORS": "false",
    }
    if settings is not None:
        params = settings.conn_params()
        env.update(
            HRSS_DBT_HOST=params["host"],
            HRSS_DBT_PORT=params["port"],
            HRSS_DBT_USER=params.get("user", ""),
            HRSS_DBT_PASSWORD=params.get("password", ""),
            HRSS_DBT_DBNAME=params.get("dbname", "hrss"),
            HRSS_DBT_SSLMODE=params.get("sslmode", "prefer"),
            DBT_TARGET_PATH=str(runtime_dir(settings) / "target"),
            DBT_LOG_PATH=str(runtime_dir(settings) / "logs"),
            # libpq passes it to every dbt session: a lock held elsewhere (an open BI transaction on
            # yesterday's marts) makes the build fail in bounded time instead of hanging
            PGOPTIONS=f"-c lock_timeout={settings.lock_timeout_s}s",
        )
    return env


def _dbt_executable() -> str:
    # The dbt next to this interpreter: the venv's, whatever PATH says.
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(settings: Settings | None, *args: str, target_path: Path | None = None,
            timeout: float | None = None) -> DbtResult:
    """Run one dbt command in the project; never raises for a failing dbt (see DbtResult.ok)."""
    env = {**os.environ, **dbt_env(settings)}
    if target_path is not None:
        env["DBT_TARGET_PATH"] = str(target_path)
    target = Path(env.get("DBT_TARGET_PATH", DBT_PROJECT_DIR / "target"))
    log_dir = Path(env.get("DBT_LOG_PATH", DBT_PROJECT_DIR / "logs"))
    log_dir.mkdir(parents=True, exist_ok=True)
    (target / "run_results.json").unlink(missing_ok=True)
    log_path = log_dir / f"{args[0]}.out"
    started = time.monotonic()
    with log_path.open("w") as out:
        try:
            proc = subprocess.run([_dbt_executable(), *args], cwd=DBT_PROJECT_DIR, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout,
                                  check=False)
        except FileNotFoundError as exc:
            raise TransformError("dbt is not installed in this environment (run `make install`)") from exc
    seconds = time.monotonic() - started
    statuses, invocation = {}, None
    results = target / "run_results.json"
    if results.exists():
        doc = json.loads(results.read_text())
        invocation = doc.get("metadata", {}).get("invocation_id")
        statuses = {r["unique_id"]: str(r["status"]) for r in doc.get("results", [])}
    return DbtResult(tuple(args), proc.returncode, seconds, statuses, invocation, log_path)


def last_build_state(settings: Settings) -> Path:
    """Where the manifest of this home's last successful unselected build is kept (dbt --state)."""
    return runtime_dir(settings) / "last-build"


def _skippable_relations(manifest: dict) -> list[tuple[str, str]]:
    """(schema, name) of every seed and view outside the build schema in a manifest: a superset of
    what selector INCREMENTAL_SELECTOR skips."""
    return [(node["schema"], node["alias"]) for node in manifest["nodes"].values()
            if node["resource_type"] == "seed"
            or (node["resource_type"] == "model" and node["config"]["materialized"] == "view"
                and node["schema"] != BUILD_SCHEMA)]


def _usable_state(settings: Settings) -> Path | None:
    """The last build's state when every relation it could let this build skip exists."""
    from hrss_warehouse.config import TRANSFORMER
    from hrss_warehouse.db import connect

    state = last_build_state(settings)
    manifest = state / "manifest.json"
    if not manifest.exists():
        log.info("dbt build: no successful build kept in %s, so no seed or view is skipped", state)
        return None
    relations = _skippable_relations(json.loads(manifest.read_text()))
    with connect(settings, role=TRANSFORMER) as conn:
        missing = [name for (name,) in conn.execute(
            "SELECT r.s || '.' || r.n FROM unnest(%s::text[], %s::text[]) AS r (s, n) "
            "WHERE to_regclass(format('%%I.%%I', r.s, r.n)) IS NULL",
            ([schema for schema, _ in relations], [name for _, name in relations]))]
    if missing:
        log.info("dbt build: %s not in the warehouse, so no seed or view is skipped", ", ".join(missing))
        return None
    return state


def _keep_state(settings: Settings, result: DbtResult) -> None:
    """Keep the manifest of a successful build as the next one's state; forget it after a failure
    (the next build then builds every seed and view)."""
    state = last_build_state(settings)
    built = runtime_dir(settings) / "target" / "manifest.json"
    if result.ok and built.exists():
        state.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built, state / "manifest.json.new")
        (state / "manifest.json.new").replace(state / "manifest.json")
    else:
        (state / "manifest.json").unlink(missing_ok=True)


def _raise_for(result: DbtResult, what: str) -> None:
    if result.ok:
        return
    failing = ", ".join(result.failures[:10]) or "see the log"
    tail = ""
    if result.log_path and result.log_path.exists():
        lines = [ln for ln in result.log_path.read_text(errors="replace").splitlines() if ln.strip()]
        tail = "\n".join(lines[-15:])
    raise TransformError(f"dbt {what} failed ({failing}); full log: {result.log_path}\n{tail}")


def parse() -> Path:
    """`dbt parse` offline (no database): writes dbt_project/target/manifest.json, and its nodes as
    `dbt ls` lines (``DBT_LS_FILE``) for Cosmos."""
    result = run_dbt(None, "parse", target_path=DBT_PROJECT_DIR / "target")
    _raise_for(result, "parse")
    write_dbt_ls(MANIFEST_PATH, DBT_LS_FILE)
    return MANIFEST_PATH


# what Cosmos reads of a `dbt ls --output json` line (LoadMode.DBT_LS_FILE)
_DBT_LS_KEYS = ("unique_id", "name", "resource_type", "package_name", "original_file_path", "depends_on",
                "tags", "config", "fqn", "freshness")


def write_dbt_ls(manifest: Path, target: Path) -> Path:
    """The manifest's models, seeds, snapshots, tests and sources as `dbt ls --output json` lines.

    Cosmos renders the Airflow task group from this file at every DAG parse: 170 kB of lines read
    with ``open``, where the 1 MB manifest goes through Airflow's object storage layer, whose first
    use loads every Airflow plugin (seconds of imports in each parsing process).
    """
    doc = json.loads(manifest.read_text())
    resources = [*doc["nodes"].values(), *doc["sources"].values(), *doc.get("unit_tests", {}).values()]
    lines = [json.dumps({k: node[k] for k in _DBT_LS_KEYS if k in node}, sort_keys=True)
             for node in sorted(resources, key=lambda n: n["unique_id"])]
    partial = target.with_name(target.name + ".tmp")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(target)
    return target


def prepare_build_schema(settings: Settings) -> None:
    """Remove the build schema's completion marker before a build.

    The build schema holds the previously published tables (publish swaps them back), on which the
    facts build incrementally; only build_info goes, so that a marker of an earlier build can
    never pass for this one's.
    """
    from hrss_warehouse.config import TRANSFORMER
    from hrss_warehouse.db import connect

    with connect(settings, role=TRANSFORMER) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(sql.Identifier(BUILD_SCHEMA),
                                                                  sql.Identifier(MARKER_TABLE)))
        conn.commit()


def build(settings: Settings, *, full_refresh: bool = False, select: str | None = None,
          unit_tests: bool | None = None) -> DbtResult:
    """`dbt build` (seeds, models, data tests; unit tests with ``unit_tests``, by default on a full
    refresh only) into staging/intermediate/core and the build schema. Raises TransformError when
    any node fails; the published marts are untouched either way.
    """
    prepare_build_schema(settings)
    # No --fail-fast: dbt would cancel the other queries with pg_terminate_backend, which the stage
    # role may not do to the administrative login's sessions; failures skip their dependants anyway.
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    state = None if full_refresh or select else _usable_state(settings)
    if select:
        args += ["--select", select]
    elif state is not None:
        log.info("dbt build: seeds and views unchanged since the build kept in %s are skipped", state)
        args += ["--selector", INCREMENTAL_SELECTOR, "--state", str(state)]
    # Unit tests check the SQL against fixed inputs, not the data: a nightly incremental build
    # changes no SQL, so (as dbt advises for production) they run with full builds and in CI.
    if not (full_refresh if unit_tests is None else unit_tests):
        args += ["--exclude-resource-type", "unit_test"]
    result = run_dbt(settings, *args)
    # a selected build leaves the rest as an earlier build made it: the kept state stays as it was
    if not select:
        _keep_state(settings, result)
    failed_log = result.log_path.read_text(errors="replace") if result.log_path and not result.ok else ""
    if "due to lock timeout" in failed_log:
        from hrss_warehouse.db import lock_holders

        holders = lock_holders(settings, [BUILD_SCHEMA, "staging", "intermediate", "core", "marts"])
        raise TransformError(f"dbt build gave up after waiting {settings.lock_timeout_s} s "
                             f"(HRSS_LOCK_TIMEOUT_S) for a lock held by {holders}; the published marts are "
                             f"unchanged; full log: {result.log_path}")
    _raise_for(result, "build")
    return result


def docs_generate(settings: Settings) -> Path:
    """`dbt docs generate` describing the published schema, into $HRSS_HOME/docs/dbt."""
    out = settings.docs_dir / "dbt"
    result = run_dbt(settings, "docs", "generate", "--vars", json.dumps({"build_schema": "marts"}),
                     target_path=out)
    _raise_for(result, "docs generate")
    return out / "index.html"


def docs_generate_if_changed(settings: Settings) -> Path:
    """The dbt docs of the published marts, generated again only when the dbt project changed.

    They show models, columns and descriptions, which only a new manifest changes, never a night's
    data; `dbt docs generate` costs a project compile and a catalog query, more than a small nightly
    load itself. The stamp beside them is the manifest's digest without its parse times.
    """
    doc = json.loads(MANIFEST_PATH.read_text())
    doc.pop("metadata", None)
    for section in ("nodes", "sources", "exposures", "unit_tests"):
        for node in doc.get(section, {}).values():
            node.pop("created_at", None)
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    stamp = settings.docs_dir / "dbt" / ".manifest_sha256"
    index = settings.docs_dir / "dbt" / "index.html"
    if index.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        log.info("dbt docs kept: the dbt project is unchanged since %s was generated", index)
        return index
    index = docs_generate(settings)
    stamp.write_text(digest + "\n")
    return index
