"""The reporting contract as data: forms.yaml and rules.yaml of the spec in force (`config.spec_dir`).

The parser, the checks, the generator and the raw table DDL all read the forms and rules from here;
no column list or rule text is written anywhere else in the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import yaml

from hrss_warehouse.config import spec_dir

NUMERIC_TYPES = frozenset({"enum", "flag", "count", "area", "money"})
# The raw tables' column types (raw_table_ddl), which are also where C03's upper bounds come from
# (Column.upper_bound): what passes C03 always fits the column the loader writes it into.
PG_TYPES = {"code": "text", "text": "text", "enum": "integer", "flag": "smallint", "count": "bigint",
            "area": "numeric(14,2)", "money": "numeric(16,4)"}
_INTEGER_LIMITS = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


@dataclass(frozen=True)
class Column:
    code: str
    name: str
    zh: str
    type: str
    group: str | None = None
    values: tuple[int, ...] | None = None
    blank_stays_null: bool = False  # `blank_without_platform: null` in forms.yaml

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def pg_type(self) -> str:
        return PG_TYPES[self.type]

    @property
    def scale(self) -> int:
        """Decimal places the column keeps (the loader rounds to them)."""
        numeric = re.fullmatch(r"numeric\((\d+),(\d+)\)", self.pg_type)
        return int(numeric[2]) if numeric else 0

    @property
    def upper_bound(self) -> float:
        """The smallest value (after rounding to ``scale``) its PostgreSQL column cannot hold."""
        numeric = re.fullmatch(r"numeric\((\d+),(\d+)\)", self.pg_type)
        if numeric:
            return 10.0 ** (int(numeric[1]) - int(numeric[2]))
        return float(_INTEGER_LIMITS[self.pg_type])


@dataclass(frozen=True)
class FormVersion:
    form: str
    version: str
    title: str
    level: str
    columns: tuple[Column, ...]

    # cached: the parser asks for these for every sheet it reads
    @cached_property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.columns)

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def numeric_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.is_numeric)

    @cached_property
    def summed_columns(self) -> tuple[Column, ...]:
        """The columns coded 1, 2, …: the total row (合计) sums these; 甲 乙 丙 are descriptive."""
        return tuple(c for c in self.columns if c.code.isdigit())

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def has_total_row(self) -> bool:
        return self.level != "county"


@dataclass(frozen=True)
class Version:
    name: str
    first_year: int
    last_year: int | None
    valid_until_label: str
    unit_line: str
    money_unit: str  # "yuan" or "wan_yuan"

    @property
    def money_divisor(self) -> int:
        """What a money cell is divided by to give 万元."""
        return 10_000 if self.money_unit == "yuan" else 1

    def covers(self, year: int) -> bool:
        return self.first_year <= year and (self.last_year is None or year <= self.last_year)


@dataclass(frozen=True)
class Rule:
    id: str
    stage: str
    severity: str
    scope: str
    check: str
    message_zh: str
    message_en: str

    @property
    def is_hard(self) -> bool:
        return self.severity == "hard"


# Rules of the warehouse itself, not of the survey contract (survey_spec/ is the office's read-only copy):
# the county did nothing wrong when one fires, and the report says so (README, "Edit checks").
WAREHOUSE_FAILURE = Rule(
    id="W01", stage="load", severity="hard", scope="submission",
    check="the checked rows of the file load into the warehouse (an internal failure, never the county's)",
    message_zh="仓库载入本文件时发生内部错误，不是贵县文件的问题，无需修改重报；修复后将重新处理：{detail}",
    message_en="The warehouse failed to load this file: an internal error, not a fault of the county's "
               "file; nothing needs to be sent again, the file is processed again once it is fixed: {detail}")
WAREHOUSE_RULES = {WAREHOUSE_FAILURE.id: WAREHOUSE_FAILURE}


@dataclass(frozen=True)
class Spec:
    survey: str
    groups: dict[str, str]
    versions: dict[str, Version]
    forms: dict[str, dict[str, FormVersion]]  # form code -> version -> definition
    rules: dict[str, Rule]

    @property
    def form_codes(self) -> tuple[str, ...]:
        return tuple(self.forms)

    def rule(self, rule_id: str) -> Rule:
        """A rule of rules.yaml or of the warehouse itself (WAREHOUSE_RULES)."""
        return self.rules.get(rule_id) or WAREHOUSE_RULES[rule_id]

    def version_for_year(self, year: int) -> Version:
        for version in self.versions.values():
            if version.covers(year):
                return version
        raise ValueError(f"no form version covers survey year {year}")

    def form(self, form: str, version: str) -> FormVersion:
        return self.forms[form][version]

    def level_of(self, form: str) -> str:
        return next(iter(self.forms[form].values())).level

    def canonical_columns(self, form: str) -> tuple[Column, ...]:
        """Every column of the form over all versions, newest version's order first."""
        seen: dict[str, Column] = {}
        for version in sorted(self.versions, key=lambda v: -self.versions[v].first_year):
            for column in self.forms[form][version].columns:
                seen.setdefault(column.name, column)
        return tuple(seen.values())

    def raw_table(self, form: str) -> str:
        return f"jcpt_{self.level_of(form)}_rows"

    def raw_table_ddl(self, form: str, schema: str = "raw") -> str:
        """DDL of the raw table of one form: canonical columns plus lineage and row flags."""
        columns = ",\n    ".join(f"{c.name} {c.pg_type}" for c in self.canonical_columns(form))
        return (
            f"CREATE TABLE IF NOT EXISTS {schema}.{self.raw_table(form)} (\n"
            "    submission_id bigint NOT NULL,\n"
            "    source_row integer NOT NULL,\n"
            f"    {columns},\n"
            "    quality_flags text[] NOT NULL DEFAULT '{}',\n"
            "    PRIMARY KEY (submission_id, source_row)\n"
            ")"
        )


def _column(raw: dict) -> Column:
    values = raw.get("values")
    return Column(
        code=str(raw["code"]), name=raw["name"], zh=raw["zh"], type=raw["type"], group=raw.get("group"),
        values=tuple(int(v) for v in values) if values else None,
        blank_stays_null=raw.get("blank_without_platform", "zero") is None,
    )


def _read_yaml(path: Path) -> dict:
    # libyaml's safe loader when PyYAML has it: ten times faster, and every task process loads the spec
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


@cache
def load_spec() -> Spec:
    folder = spec_dir()
    forms_doc = _read_yaml(folder / "forms.yaml")
    rules_doc = _read_yaml(folder / "rules.yaml")
    versions = {
        name: Version(name=name, first_year=v["first_year"], last_year=v["last_year"],
                      valid_until_label=v["valid_until_label"], unit_line=forms_doc["unit_line"][name],
                      money_unit=forms_doc["money_unit"][name])
        for name, v in forms_doc["versions"].items()
    }
    forms = {
        code: {
            version: FormVersion(form=code, version=version, title=body["title"], level=body["level"],
                                 columns=tuple(_column(c) for c in columns))
            for version, columns in body["columns"].items()
        }
        for code, body in forms_doc["forms"].items()
    }
    rules = {r["id"]: Rule(**{k: r[k] for k in Rule.__dataclass_fields__}) for r in rules_doc["rules"]}
    return Spec(survey=forms_doc["survey"], groups={k: v["zh"] for k, v in forms_doc["groups"].items()},
                versions=versions, forms=forms, rules=rules)
