"""Running the parts on one machine: the embedded PostgreSQL, the local Airflow, Superset."""
