"""The `hrss` command line. Every subcommand works; errors a user can meet end in one clear line.

Each command group is declared by one `_add_*` function; handlers import their stage module lazily,
so `hrss warehouse url` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from hrss_warehouse.config import ConfigError, Settings


def _warehouse(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_warehouse import warehouse

    if args.action == "start":
        print(warehouse.start(settings), file=sys.stderr)
        print(settings.dsn())
    elif args.action == "stop":
        print(warehouse.stop(settings), file=sys.stderr)
    elif args.action == "status":
        state = warehouse.status(settings)
        print(state.detail)
        return 0 if state.running else 3
    elif args.action == "url":
        # stdout carries the DSN and nothing else, so `psql "$(hrss warehouse url)"` works.
        print(settings.bi_reader_dsn() if args.role == warehouse.BI_READER else settings.dsn())
    return 0


def _add_warehouse(commands: argparse._SubParsersAction) -> None:
    wh = commands.add_parser("warehouse", help="start, stop or inspect the warehouse PostgreSQL")
    wh.add_argument("action", choices=["start", "stop", "status", "url"])
    wh.add_argument("--role", choices=["admin", "bi_reader"], default="admin",
                    help="with `url`: whose DSN to print (default: the administrative login)")
    wh.set_defaults(handler=_warehouse)


COMMAND_GROUPS = (_add_warehouse,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hrss", description="HRSS grassroots platform survey warehouse")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_group in COMMAND_GROUPS:
        add_group(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from hrss_warehouse.warehouse import WarehouseError

    try:
        settings = Settings.from_env()
        return args.handler(args, settings)
    except (ConfigError, WarehouseError) as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
