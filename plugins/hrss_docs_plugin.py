"""The project's Airflow plugin (the documents in the Airflow UI). Airflow loads plugins from the .py
files of this folder; the plugin itself lives with the rest of the Airflow wiring."""

from hrss_warehouse.airflow.docs_plugin import HrssDocsPlugin

__all__ = ["HrssDocsPlugin"]
