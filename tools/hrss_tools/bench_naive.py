"""The naive peer of the benchmark: the ingest a tutorial would write, run over the same files.

``pandas.read_excel`` (openpyxl) once per sheet, ``pandas.read_csv`` for CSV exports, then
``DataFrame.to_sql`` with its default method through a SQLAlchemy engine. It does only what a tutorial
does: header at the indicator-code row, unit rows picked by the 12-digit code in column 甲, columns
renamed to the canonical names by the survey year's form version. No normalisation, no checks, no
quarantine: its tables hold every cell as text (a messy cell such as ``1,234`` or ``是`` would stop an
inferred numeric column), in its own schema, dropped before and after a run.
"""

from __future__ import annotations

import re
from pathlib import Path

from hrss_warehouse.config import Settings
from hrss_warehouse.spec import load_spec

NAIVE_SCHEMA = "bench_naive"
CODE_ROW = 6  # 0-based: the indicator-code row is row 7 of the template
_NAME = re.compile(r"^(?P<county>\d{6})_(?P<year>\d{4})(?:_(?P<form>JCPT-\d))?(?:_r\d+)?\.(?:xlsx|csv)$")
_UNIT_CODE = r"\d{12}"


def _engine(settings: Settings):
    import sqlalchemy

    # the same server and login as the pipeline, through the psycopg 3 dialect
    url = settings.dsn().replace("postgresql://", "postgresql+psycopg://", 1)
    return sqlalchemy.create_engine(url)


def reset_schema(settings: Settings, schema: str = NAIVE_SCHEMA, *, create: bool = True) -> None:
    """Drop the naive schema and (with ``create``) recreate its tables: every canonical column as text."""
    from hrss_warehouse.db import connect

    spec = load_spec()
    with connect(settings) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            conn.execute(f"CREATE SCHEMA {schema}")
            for form in spec.form_codes:
                columns = ", ".join(f"{c.name} text" for c in spec.canonical_columns(form))
                conn.execute(f"CREATE TABLE {schema}.{spec.raw_table(form)} "
                             f"(submission_id bigint, source_row bigint, {columns})")
        conn.commit()


def _code_label(value: object) -> str:
    """A code-row cell as its code: the template may store ``1`` as the number 1.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _frame_for(df, form: str, year: int, submission_id: int, first_row: int):
    """Unit rows of one sheet or CSV file, columns renamed to their canonical names."""
    spec = load_spec()
    definition = spec.form(form, spec.version_for_year(year).name)
    names = dict(zip(definition.codes, definition.names, strict=True))
    df.columns = [_code_label(c) for c in df.columns]
    df = df[df["甲"].astype(str).str.fullmatch(_UNIT_CODE)]
    df = df[[c for c in df.columns if c in names]].rename(columns=names)
    df.insert(0, "source_row", df.index + first_row)
    df.insert(0, "submission_id", submission_id)
    return df


def _read_file(path: Path, submission_id: int) -> list[tuple[str, object]]:
    """(form, frame) pairs of one return file, read the tutorial way."""
    import pandas as pd

    match = _NAME.match(path.name)
    if match is None:
        raise ValueError(f"unrecognised file name {path.name}")
    year = int(match["year"])
    if path.suffix == ".xlsx":
        frames = []
        for form in load_spec().form_codes:
            # one read_excel per sheet, as tutorials write it; 甲 as text or 12-digit codes turn into floats
            df = pd.read_excel(path, sheet_name=form, header=CODE_ROW, engine="openpyxl", dtype={"甲": str})
            frames.append((form, _frame_for(df, form, year, submission_id, first_row=CODE_ROW + 2)))
        return frames
    try:
        df = pd.read_csv(path, dtype={"甲": str}, encoding="utf-8-sig")
    except UnicodeDecodeError:
        df = pd.read_csv(path, dtype={"甲": str}, encoding="gb18030")
    return [(match["form"], _frame_for(df, match["form"], year, submission_id, first_row=2))]


def naive_load(settings: Settings, files: list[Path], schema: str = NAIVE_SCHEMA) -> dict:
    """Read every file with pandas and append its unit rows with ``to_sql``; returns rows and failures.

    A file pandas cannot read (a corrupt or mis-named return) is counted and skipped, so one bad file
    does not end the run.
    """
    spec = load_spec()
    engine = _engine(settings)
    rows = 0
    failed: list[str] = []
    try:
        for submission_id, path in enumerate(files, start=1):
            try:
                frames = _read_file(Path(path), submission_id)
            except Exception as exc:  # the tutorial's loop has no parser: any read error skips the file
                failed.append(f"{Path(path).name}: {type(exc).__name__}")
                continue
            for form, df in frames:
                df.to_sql(spec.raw_table(form), engine, schema=schema, if_exists="append", index=False)
                rows += len(df)
    finally:
        engine.dispose()
    return {"rows": rows, "files": len(files), "failed_files": len(failed), "failed": failed[:20]}
