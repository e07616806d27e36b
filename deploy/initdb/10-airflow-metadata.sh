#!/bin/bash
# First start of the warehouse container only (docker-entrypoint-initdb.d): Airflow's metadata gets its
# own database and role, so Airflow never logs in as the warehouse superuser. `hrss warehouse start`
# finds the database there and leaves it alone.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
SQL
