"""SDMX export of the published rollup figures (`hrss export sdmx`), written with pysdmx.

One data structure definition (``JCPT_DSD.xml``, SDMX-ML 2.1 structure message: the DSD, its concept
scheme and code lists) and one SDMX-CSV 2.0 file per mart (``coverage.csv``, ``funding.csv``,
``staff.csv``). Dimensions: REGION (12-digit code), PLATFORM_LEVEL, TIME_PERIOD (survey year),
INDICATOR (the mart and figure, e.g. ``COVERAGE_UNITS_REPORTED``; funding by source,
``FUNDING_AMOUNT_WAN_CENTRAL``); measure OBS_VALUE; attributes OBS_STATUS, UNIT and UNIT_MULT (money
is in 万元: CNY with UNIT_MULT 4). The figures are read from the published `marts` as bi_reader
(``mart_rollup_figures``, where every figure carries its status), so an export shows what BI sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import psycopg

from hrss_warehouse.config import Settings

AGENCY = "HRSS"
DSD_ID = "JCPT"
VERSION = "1.0"
DSD_FILE = "JCPT_DSD.xml"
DATASETS = {"mart_coverage": "coverage", "mart_funding": "funding", "mart_staff": "staff"}
OBS_STATUSES = {
    "A": "Normal value",
    "P": "Provisional value",
    "R": "Revised value",
    "M": "Missing value",
    "E": "Estimated value",
}
# (unit code, its name, UNIT_MULT) by the kind of figure
UNITS = {
    "money": ("CNY", "Chinese yuan", 4),
    "ratio": ("PURE_NUMB", "Pure number (a fraction)", 0),
    "persons": ("PS", "Persons", 0),
    "units": ("NUMBER", "Number of units", 0),
}


class ExportError(RuntimeError):
    """Nothing (or not everything) was exported; the message says why."""


def unit_of(indicator: str) -> tuple[str, str, int]:
    """The unit of a figure column: money, a rate, persons, or a count of units."""
    if indicator.endswith("_wan"):
        return UNITS["money"]
    if indicator.endswith("_rate"):
        return UNITS["ratio"]
    if any(word in indicator for word in ("staff", "coordinators", "persons")):
        return UNITS["persons"]
    return UNITS["units"]


def indicator_code(mart: str, indicator: str, funding_source: str) -> str:
    parts = [DATASETS[mart], indicator] + ([funding_source] if funding_source else [])
    return "_".join(parts).upper()


def _structure(indicators: dict[str, str]):
    from pysdmx.model import Code, Codelist, Concept, ConceptScheme, DataType
    from pysdmx.model.dataflow import Component, Components, DataStructureDefinition, Role

    concepts: list[Concept] = []

    def component(
        id_: str,
        role: Role,
        name: str,
        dtype: DataType = DataType.STRING,
        *,
        codes: Codelist | None = None,
        required: bool = True,
    ) -> Component:
        urn = f"urn:sdmx:org.sdmx.infomodel.conceptscheme.Concept={AGENCY}:CS_{DSD_ID}({VERSION}).{id_}"
        concept = Concept(id=id_, name=name, dtype=dtype, urn=urn)
        concepts.append(concept)
        return Component(
            id=id_,
            required=required,
            role=role,
            concept=concept,
            local_codes=codes,
            attachment_level="O" if role == Role.ATTRIBUTE else None,
        )

    def codelist(id_: str, name: str, codes: dict[str, str]) -> Codelist:
        return Codelist(
            id=id_,
            agency=AGENCY,
            version=VERSION,
            name=name,
            items=[Code(id=code, name=label) for code, label in codes.items()],
        )

    code_lists = [
        codelist("CL_OBS_STATUS", "Observation status", OBS_STATUSES),
        codelist(
            "CL_PLATFORM_LEVEL",
            "Platform level",
            {"county": "County service centre", "township": "Township office", "village": "Village station"},
        ),
        codelist("CL_INDICATOR", "JCPT indicator", indicators),
        codelist("CL_UNIT", "Unit", {code: name for code, name, _ in UNITS.values()}),
    ]
    by_id = {cl.id: cl for cl in code_lists}
    components = Components(
        [
            component("REGION", Role.DIMENSION, "Region (12-digit NBS statistical division code)"),
            component("PLATFORM_LEVEL", Role.DIMENSION, "Platform level", codes=by_id["CL_PLATFORM_LEVEL"]),
            component("TIME_PERIOD", Role.DIMENSION, "Survey year"),
            component("INDICATOR", Role.DIMENSION, "Indicator", codes=by_id["CL_INDICATOR"]),
            component("OBS_VALUE", Role.MEASURE, "Observation value", DataType.DOUBLE, required=False),
            component("OBS_STATUS", Role.ATTRIBUTE, "Observation status", codes=by_id["CL_OBS_STATUS"]),
            component("UNIT", Role.ATTRIBUTE, "Unit of measure", codes=by_id["CL_UNIT"]),
            component("UNIT_MULT", Role.ATTRIBUTE, "Unit multiplier (power of 10)", DataType.INTEGER),
        ]
    )
    scheme = ConceptScheme(
        id=f"CS_{DSD_ID}", agency=AGENCY, version=VERSION, name="JCPT concepts", items=concepts
    )
    dsd = DataStructureDefinition(
        id=DSD_ID,
        agency=AGENCY,
        version=VERSION,
        components=components,
        name="Grassroots HRSS platform survey (JCPT) rollup figures",
    )
    return [*code_lists, scheme, dsd], dsd


def published_years(settings: Settings) -> list[int]:
    """The survey years the published marts hold figures for."""
    with psycopg.connect(settings.bi_reader_dsn()) as conn:
        return [
            row[0]
            for row in conn.execute("SELECT DISTINCT survey_year FROM marts.mart_rollup_figures ORDER BY 1")
        ]


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: dict[str, int]  # file name -> observations (0 for the DSD)


def export_sdmx(settings: Settings, years: list[int], out: Path | None = None) -> ExportResult:
    """Write the DSD and one SDMX-CSV file per rollup mart for ``years`` into ``out``."""
    from pysdmx.io import write_sdmx
    from pysdmx.io.format import Format
    from pysdmx.io.pd import PandasDataset

    folder = out or settings.home / "exports"
    try:
        with psycopg.connect(settings.bi_reader_dsn()) as conn:
            # every figure the marts publish (any year), so the DSD does not change with --years
            indicators = {
                indicator_code(mart, figure, source): f"{mart}.{figure}" + (f" ({source})" if source else "")
                for mart, figure, source in conn.execute(
                    "SELECT DISTINCT mart, indicator, funding_source FROM marts.mart_rollup_figures "
                    "ORDER BY 1, 3, 2"
                )
            }
            figures = pd.DataFrame(
                conn.execute(
                    "SELECT mart, survey_year, region_code, platform_level, funding_source, indicator, "
                    "value, "
                    "obs_status FROM marts.mart_rollup_figures WHERE survey_year = ANY(%s) "
                    "ORDER BY mart, survey_year, region_code, platform_level, funding_source, indicator",
                    (years,),
                ).fetchall(),
                columns=[
                    "mart",
                    "survey_year",
                    "region_code",
                    "platform_level",
                    "funding_source",
                    "indicator",
                    "value",
                    "obs_status",
                ],
            )
    except psycopg.errors.UndefinedTable as exc:
        raise ExportError(
            f"nothing to export: {exc.diag.message_primary} in the published marts; "
            f"build and publish first (`hrss dbt build --publish`)"
        ) from None
    if figures.empty:
        raise ExportError(f"the published marts hold no figures for survey years {years[0]}-{years[-1]}")
    structures, dsd = _structure(indicators)
    folder.mkdir(parents=True, exist_ok=True)
    write_sdmx(structures, Format.STRUCTURE_SDMX_ML_2_1, output_path=str(folder / DSD_FILE))
    files = {DSD_FILE: 0}
    units = figures["indicator"].map(unit_of)
    frame = pd.DataFrame(
        {
            "REGION": figures["region_code"],
            "PLATFORM_LEVEL": figures["platform_level"],
            "TIME_PERIOD": figures["survey_year"].astype(str),
            "INDICATOR": [
                indicator_code(m, i, s)
                for m, i, s in zip(
                    figures["mart"], figures["indicator"], figures["funding_source"], strict=True
                )
            ],
            "OBS_VALUE": figures["value"].astype("float64"),
            "OBS_STATUS": figures["obs_status"],
            "UNIT": units.str[0],
            "UNIT_MULT": units.str[2],
        }
    )
    schema = dsd.to_schema()
    for mart, name in DATASETS.items():
        rows = frame[(figures["mart"] == mart).to_numpy()].reset_index(drop=True)
        path = folder / f"{name}.csv"
        write_sdmx(
            [PandasDataset(structure=schema, data=rows)], Format.DATA_SDMX_CSV_2_0_0, output_path=str(path)
        )
        files[path.name] = len(rows)
    return ExportResult(folder, files)
