"""Resetting the test warehouse to a fresh bootstrap: shared by conftest and the recovery tests (a module
of its own because `from conftest import` finds whichever conftest pytest loaded first)."""

from __future__ import annotations

from hrss_warehouse import warehouse
from hrss_warehouse.config import Settings

# Schemas the project (and dbt) create; dropping them resets the warehouse to a fresh bootstrap.
PROJECT_SCHEMAS = ("raw", "reference", "staging", "intermediate", "core", "marts", "marts_build",
                   "marts_retired", "vintage", "ops")


def drop_project_schemas(settings: Settings) -> None:
    """Drop every project schema (the database's content is lost), then bootstrap again."""
    with warehouse.connect(settings) as conn:
        for schema in PROJECT_SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.commit()
    warehouse.bootstrap(settings)
