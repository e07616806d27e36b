"""An Airflow 3 plugin: the project's documents one click from the Airflow UI.

A FastAPI app mounted by the API server under ``/hrss`` serves, from ``$HRSS_HOME``, the dbt docs of
the published build, the GX Data Docs (every batch's validation run), the latest ``summary.html`` and
the feedback reports; external views put a link to each in the UI's navigation. ``hrss run`` prints
the same links (``links``).
"""

from __future__ import annotations

from html import escape
from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from hrss_warehouse.config import Settings

URL_PREFIX = "/hrss"
# route under URL_PREFIX -> (name in the UI, page to open, folder under $HRSS_HOME)
PAGES = {
    "dbt-docs": ("dbt docs", "index.html", "docs/dbt"),
    "data-docs": ("GX Data Docs", "index.html", "docs/gx"),
    "summary": ("Marts summary", "summary.html", "reports"),
    "feedback": ("Feedback reports", "index.html", "reports/feedback"),
}
CATEGORY = "HRSS docs"
FEEDBACK_LISTED = 1000


def links(base_url: str) -> dict[str, str]:
    """The UI name and URL of every page, on the API server at ``base_url``."""
    return {name: f"{base_url.rstrip('/')}{URL_PREFIX}/{route}/{page}"
            for route, (name, page, _) in PAGES.items()}


def docs_app():
    """Static files straight from $HRSS_HOME: pages appear as the runs write them."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    home = Settings.from_env().home
    app = FastAPI(title="HRSS documents", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/feedback/index.html", response_class=HTMLResponse)
    def feedback_index() -> str:
        """The feedback reports, newest first (the folder has no index page of its own)."""
        reports = sorted((home / "reports" / "feedback").glob("*.html"), key=lambda p: p.stat().st_mtime,
                         reverse=True)[:FEEDBACK_LISTED]
        items = "".join(f'<li><a href="{escape(p.name)}">{escape(p.name)}</a></li>' for p in reports)
        return (f"<!doctype html><meta charset=utf-8><title>Feedback reports</title><h1>Feedback reports "
                f"(newest {len(reports)})</h1><ul>{items or '<li>none yet</li>'}</ul>")

    for route, (_, _, folder) in PAGES.items():
        # check_dir=False: a folder appears with the first run that writes it.
        app.mount(f"/{route}", StaticFiles(directory=home / folder, html=True, check_dir=False), name=route)
    return app


class HrssDocsPlugin(AirflowPlugin):
    name = "hrss_docs"
    fastapi_apps: ClassVar[list[dict]] = [{"app": docs_app(), "url_prefix": URL_PREFIX,
                                           "name": "HRSS documents"}]
    external_views: ClassVar[list[dict]] = [
        {"name": title, "href": f"{URL_PREFIX}/{route}/{page}", "destination": "nav", "category": CATEGORY}
        for route, (title, page, _) in PAGES.items()]
