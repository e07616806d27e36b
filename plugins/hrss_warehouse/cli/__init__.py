"""The `hrss` command line. Every subcommand works; errors a user can meet end in one clear line.

Each command group is declared by one `_add_*` function; handlers import their stage module lazily,
so `hrss warehouse url` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from hrss_warehouse.cli import run
from hrss_warehouse.config import BI_READER, ConfigError, Settings


def _warehouse(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse.local import postgres

    if args.action == "start":
        print(postgres.start(settings), file=sys.stderr)
        print(settings.dsn())
    elif args.action == "stop":
        print(postgres.stop(settings), file=sys.stderr)
    elif args.action == "status":
        state = postgres.status(settings)
        print(state.detail)
        return 0 if state.running else 3
    elif args.action == "url":
        # stdout carries the DSN and nothing else, so `psql "$(hrss warehouse url)"` works.
        print(settings.bi_reader_dsn() if args.role == BI_READER else settings.dsn())
    return 0


def _add_warehouse(commands: argparse._SubParsersAction) -> None:
    wh = commands.add_parser("warehouse", help="start, stop or inspect the warehouse PostgreSQL")
    wh.add_argument("action", choices=["start", "stop", "status", "url"])
    wh.add_argument("--role", choices=["admin", "bi_reader"], default="admin",
                    help="with `url`: whose DSN to print (default: the administrative login)")
    wh.set_defaults(handler=_warehouse)


def _reference_load(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from hrss_warehouse.stages import reference

    started = time.perf_counter()
    try:
        rows = reference.load_divisions(settings)
    except reference.RegistryError as exc:  # a CrosswalkError is one
        print(f"hrss: {exc}", file=sys.stderr)
        return 2
    print(f"loaded {rows:,} rows into {reference.TABLE} in {time.perf_counter() - started:.1f} s")
    return 0


def _add_reference(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:
    ref = commands.add_parser("reference", help="load the NBS statistical division registry (and, with the "
                                                "development tools, build it)")
    actions = ref.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="copy data/divisions.csv.gz and data/division_crosswalk.csv.gz "
                                           "into reference.division and reference.division_crosswalk")
    load.set_defaults(handler=_reference_load)
    return actions


def years_arg(text: str) -> list[int]:
    """`2014-2018` or `2014,2016` or `2017`."""
    try:
        years: set[int] = set()
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            years.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--years takes e.g. 2014-2018 or 2016,2017, got {text!r}") from None
    return sorted(years)


def _airflow(args: argparse.Namespace, settings: Settings) -> int:
    import shlex

    from hrss_warehouse.local import airflow_env

    try:
        if args.action == "start":
            running = airflow_env.start(settings, unpause=True)
            env = airflow_env.airflow_env(settings)
            print(", ".join(f"{r.component} (pid {r.pid})" for r in running), file=sys.stderr)
            print(f"Airflow UI: {env['AIRFLOW__API__BASE_URL']}")
            print(f"login: {airflow_env.ADMIN_LOGIN}   password: {airflow_env.admin_password(settings)}")
            print(f"logs: {settings.log_dir}/airflow-*.log   stop: make airflow-stop")
        elif args.action == "stop":
            stopped = airflow_env.stop(settings)
            print(f"stopped {', '.join(stopped)}" if stopped else "Airflow is not running")
        elif args.action == "status":
            for component, pid in airflow_env.status(settings).items():
                print(f"{component}: {'running, pid ' + str(pid) if pid else 'stopped'}")
        elif args.action == "migrate":
            print(f"airflow db migrate: done in {airflow_env.migrate(settings):.1f} s")
        elif args.action == "env":
            # `eval "$(hrss airflow env)"` lets a shell run `airflow ...` against this project.
            for key, value in airflow_env.airflow_env(settings).items():
                print(f"export {key}={shlex.quote(value)}")
    except airflow_env.AirflowEnvError as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_airflow(commands: argparse._SubParsersAction) -> None:
    af = commands.add_parser("airflow", help="run Airflow locally on the embedded warehouse")
    af.add_argument("action", choices=["start", "stop", "status", "migrate", "env"],
                    help="start: warehouse + api-server, scheduler, dag-processor, triggerer (with "
                         "HRSS_AIRFLOW_EXECUTOR=celery also Redis and two Celery workers), DAGs unpaused; "
                         "stop: stop them and their workers; env: print the environment as shell exports")
    af.set_defaults(handler=_airflow)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from hrss_warehouse.local import airflow_env

    try:
        summary = run.run_nightly(settings, Path(args.landing))
    except (run.RunError, airflow_env.AirflowEnvError) as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 2
    print()
    print(summary.render(settings))
    return 0 if summary.ok else 1


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the jcpt_nightly DAG once over a landing folder (dag.test)")
    run.add_argument("--landing", required=True, help="folder of returns to load (moved to the archive)")
    run.set_defaults(handler=_run)


def _dbt(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse.stages import transform

    try:
        if args.action == "parse":
            print(transform.parse())
        elif args.action == "spec-seeds":
            for path in transform.write_spec_seeds():
                print(path)
        elif args.action == "build":
            result = transform.build(settings, full_refresh=args.full_refresh, select=args.select)
            print(f"dbt build passed: {len(result.statuses)} nodes in {result.seconds:.1f} s",
                  file=sys.stderr)
            if args.publish:
                return _publish(args, settings)
        elif args.action == "docs":
            print(transform.docs_generate(settings))
    except transform.TransformError as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 1
    return 0


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from hrss_warehouse.stages import publish

    try:
        print(json.dumps(publish.publish(settings), indent=2))
    except publish.PublishError as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_dbt(commands: argparse._SubParsersAction) -> None:
    dbt = commands.add_parser("dbt", help="build the star schema and marts with dbt")
    dbt.add_argument("action", choices=["parse", "build", "docs", "spec-seeds"],
                     help="parse: offline manifest for Airflow; build: seeds, models and tests into "
                          "the build schema; docs: dbt docs into $HRSS_HOME/docs/dbt; spec-seeds: rewrite "
                          "the seeds derived from forms.yaml")
    dbt.add_argument("--full-refresh", action="store_true", help="with build: rebuild the incremental facts")
    dbt.add_argument("--select", help="with build: a dbt node selection")
    dbt.add_argument("--publish", action="store_true", help="with build: publish when the build passed")
    dbt.set_defaults(handler=_dbt)
    pub = commands.add_parser("publish", help="swap the tested build schema into `marts` (blue/green)")
    pub.set_defaults(handler=_publish)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from pathlib import Path

    if args.action == "suites":
        from hrss_warehouse.check import write_suites

        for path in write_suites():
            print(path)
        return 0
    if args.action == "docs":
        from hrss_warehouse.stages.report import build_data_docs

        print(build_data_docs(settings))
        return 0
    from hrss_warehouse import graceful, pipeline

    try:
        if args.action == "folder":
            from hrss_warehouse.stages.land import default_min_age_s

            # the live landing folder may hold uploads still writing; a folder named by hand is finished
            landing = Path(args.landing) if args.landing else settings.landing_dir
            min_age_s = default_min_age_s(settings, scheduled=not args.landing)
            result = pipeline.ingest_folder(settings, landing, min_age_s=min_age_s)
            result.pop("submission_ids")
        else:
            if args.year is None:
                print("hrss: `hrss ingest reprocess` needs --year", file=sys.stderr)
                return 2
            result = pipeline.reprocess_year(settings, args.year, args.county or None, dry_run=args.dry_run)
    except graceful.Stopped as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return graceful.STOPPED_EXIT_CODE
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def _add_ingest(commands: argparse._SubParsersAction) -> None:
    ingest = commands.add_parser("ingest", help="register, check and load returns; GX suites and docs")
    ingest.add_argument("action", choices=["folder", "reprocess", "suites", "docs"],
                        help="folder: ingest a landing folder; reprocess: re-check a survey year; "
                             "suites: regenerate expectations/ from the spec; docs: build GX Data Docs")
    ingest.add_argument("--landing", help="with `folder`: the folder (default $HRSS_HOME/landing)")
    ingest.add_argument("--year", type=int, help="with `reprocess`: the survey year")
    ingest.add_argument("--county", action="append", help="with `reprocess`: only this county (repeatable)")
    ingest.add_argument("--dry-run", action="store_true", help="with `reprocess`: report, change nothing")
    ingest.set_defaults(handler=_ingest)


def _check_file(args: argparse.Namespace, settings: Settings) -> int:
    import logging
    from pathlib import Path

    from hrss_warehouse import conformance

    # errors only: GX reports its temporary folders as warnings, which say nothing about the files
    logging.basicConfig(level=logging.ERROR, format="hrss: %(message)s")
    verdicts = conformance.check_paths([Path(path) for path in args.files])
    for verdict in verdicts:
        print(verdict.render())
    print(f"({conformance.HISTORY_NOTE}; nothing was loaded)")
    if any(v.problem for v in verdicts):
        return 2
    return 1 if any(v.outcome == "quarantined" for v in verdicts) else 0


def _add_check_file(commands: argparse._SubParsersAction) -> None:
    cf = commands.add_parser("check-file", help="what the warehouse would do with return files "
                             "(outcome, rule ids, feedback rows), loading nothing")
    cf.add_argument("files", nargs="+", metavar="FILE")
    cf.set_defaults(handler=_check_file)


def _summary(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse.stages.summary import write_summary

    text, page = write_summary(settings)
    print(text)
    print(f"\nHTML summary with charts: {page}")
    return 0


def _add_summary(commands: argparse._SubParsersAction) -> None:
    summary = commands.add_parser("summary", help="print the published marts' summary and write summary.html")
    summary.set_defaults(handler=_summary)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse.operations import status

    up, lines = status.collect(settings)
    print(status.render(lines))
    return 0 if up else 3


def _add_status(commands: argparse._SubParsersAction) -> None:
    status = commands.add_parser("status", help="one screen: warehouse, registry, landing, last run, marts, "
                                                "missing returns")
    status.set_defaults(handler=_status)



def _bi(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse.local import bi

    try:
        if args.action == "start":
            print(bi.start(settings))
            print(f"dashboards: {bi.url(settings)}/dashboard/list/")
            print(f"login: {bi.ADMIN_LOGIN}   password: {bi.password(settings, bi.ADMIN_LOGIN)}")
            print(f"viewers: {', '.join(bi.VIEWERS)} "
                  f"(passwords in {settings.secrets_dir}/superset_<login>_password)")
            print(f"logs: {settings.log_dir}/superset*.log   stop: make bi-stop")
        elif args.action == "database":
            bi.ensure_metadata_database(settings)
            print(f"Superset's metadata database `{bi.METADATA_DB}` (login `{bi.METADATA_ROLE}`) is ready")
        else:
            print(bi.stop(settings))
    except bi.BIError as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 1
    return 0


def _add_bi(commands: argparse._SubParsersAction) -> None:
    bi = commands.add_parser("bi", help="Apache Superset on the marts (installed by `make bi` into .venv-bi)")
    bi.add_argument("action", choices=["start", "stop", "database"],
                    help="start: set up (metadata, dashboards of bi/superset, viewers, RLS) and start; stop; "
                         "database: only create Superset's metadata database and login (docker-compose)")
    bi.set_defaults(handler=_bi)


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse.stages import export

    try:
        result = export.export_sdmx(settings, args.years, args.out)
    except export.ExportError as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 1
    for name, observations in result.files.items():
        print(f"{result.folder / name}" + (f" ({observations:,} observations)" if observations else ""))
    return 0


def _add_export(commands: argparse._SubParsersAction) -> None:
    from pathlib import Path

    exp = commands.add_parser("export", help="export the published rollup figures (SDMX)")
    exp.add_argument("format", choices=["sdmx"], help="sdmx: a DSD (SDMX-ML 2.1) and SDMX-CSV 2.0 data files")
    exp.add_argument("--years", type=years_arg, required=True, help="survey years, e.g. 2016-2023")
    exp.add_argument("--out", type=Path, help="folder to write into (default $HRSS_HOME/exports)")
    exp.set_defaults(handler=_export)


def _recovery(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from hrss_warehouse import graceful
    from hrss_warehouse.operations import backup, rebuild

    try:
        if args.command == "rebuild":
            result = rebuild.rebuild_from_archive(settings)
        elif args.command == "backup":
            result = backup.backup(settings, args.folder)
        else:
            result = backup.restore(settings, args.folder)
    except (rebuild.RebuildError, backup.BackupError) as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 2
    except graceful.Stopped as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return graceful.STOPPED_EXIT_CODE
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def _add_recovery(commands: argparse._SubParsersAction) -> None:
    from pathlib import Path

    rebuild = commands.add_parser("rebuild", help="rebuild a fresh warehouse from archive/ and quarantine/")
    rebuild.add_argument("--from-archive", action="store_true", required=True,
                         help="register every stored file again in received order, then load, build, publish")
    backup = commands.add_parser("backup", help="pg_dump of the warehouse, archive/, quarantine/, secrets/")
    restore = commands.add_parser("restore", help="bring a backup back on a fresh HRSS_HOME")
    for parser in (backup, restore):
        parser.add_argument("folder", type=Path, help="the backup folder")
    for parser in (rebuild, backup, restore):
        parser.set_defaults(handler=_recovery)


COMMAND_GROUPS = (_add_warehouse, _add_airflow, _add_run, _add_dbt, _add_ingest, _add_summary,
                  _add_check_file, _add_bi, _add_export, _add_recovery, _add_status)
# Commands of the development tools (package hrss-tools, the [dev] extra): they add themselves through
# this entry point group, so the product never imports them.
TOOL_ENTRY_POINTS = "hrss.commands"
TOOL_COMMANDS = ("generate", "bench", "reference build", "reference crosswalk")


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import entry_points

    parser = argparse.ArgumentParser(prog="hrss", description="HRSS grassroots platform survey warehouse")
    commands = parser.add_subparsers(dest="command", required=True)
    groups = {"reference": _add_reference(commands)}
    for add_group in COMMAND_GROUPS:
        add_group(commands)
    for tool in entry_points(group=TOOL_ENTRY_POINTS):
        tool.load()(commands, groups)
    return parser


def _missing_tool(argv: list[str]) -> str | None:
    """The development-tool command ``argv`` asks for when the tools are not installed."""
    from importlib.metadata import entry_points

    asked = " ".join(argv[:2])
    wanted = next((c for c in TOOL_COMMANDS if asked == c or asked.split(" ")[0] == c), None)
    return wanted if wanted and not entry_points(group=TOOL_ENTRY_POINTS) else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    missing = _missing_tool(argv)
    if missing:
        print(f"hrss: `hrss {missing}` is a development tool (package hrss-tools in tools/): install it with "
              "`make install` or `pip install ./tools`", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    from hrss_warehouse.db import WarehouseError
    from hrss_warehouse.stages.land import ArchiveError, LandingError

    try:
        settings = Settings.from_env()
        return args.handler(args, settings)
    except (ConfigError, WarehouseError, LandingError, ArchiveError) as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 2

