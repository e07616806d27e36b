# The project's Airflow image: the official Airflow 3.3 image plus this project (DAGs, the
# hrss_warehouse package, the dbt project and the survey spec). Every Airflow service of
# docker-compose.yml runs it; only the command differs.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
ARG UV_VERSION=0.13.9
ENV HRSS_PROJECT=/opt/hrss \
    HRSS_HOME=/opt/hrss/home \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/hrss/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/hrss/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DEFAULT_TIMEZONE=Asia/Shanghai \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    AIRFLOW__USAGE_DATA_COLLECTION__ENABLED=False \
    DBT_SEND_ANONYMOUS_USAGE_STATS=False \
    DO_NOT_TRACK=1

WORKDIR /opt/hrss
# Dependencies first, from uv.lock (the versions CI tested; Airflow is the image's own 3.3.2), so that
# code changes do not reinstall them; then the package itself, non-editable.
COPY --chown=airflow:root pyproject.toml uv.lock README.md ./
RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && uv export --frozen --no-dev --extra deploy --no-emit-project --no-hashes -o /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
COPY --chown=airflow:root plugins/ plugins/
RUN pip install --no-cache-dir --no-deps .

COPY --chown=airflow:root dags/ dags/
COPY --chown=airflow:root dbt_project/ dbt_project/
COPY --chown=airflow:root survey_spec/ survey_spec/
COPY --chown=airflow:root seed/ seed/
COPY --chown=airflow:root expectations/ expectations/

# The manifest Cosmos renders the dbt task group from (dbt parse never connects to a database).
RUN python -c "from hrss_warehouse.stages import transform; transform.parse()" \
    && mkdir -p /opt/hrss/home/landing /opt/hrss/home/archive /opt/hrss/home/quarantine \
                /opt/hrss/home/reports /opt/hrss/home/docs /opt/hrss/home/tmp
