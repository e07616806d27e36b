# The two commands a newcomer needs: `make demo` and `make test`. Both install first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(abspath $(VENV))/bin
# The venv's bin leads PATH: Airflow starts its components by the bare name `airflow`.
export PATH := $(BIN):$(PATH)
export HRSS_HOME ?= $(abspath .hrss)

PYTHON := $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)

.PHONY: help install system-deps demo test lint stop clean airflow airflow-stop bench bench-quick soak soak-quick bi bi-stop bi-install

help:
	@echo "make demo   install, start the warehouse and run the whole flow on sample returns"
	@echo "make test   install and run every test (lint, unit, warehouse, quick bench and soak)"
	@echo "make bench  national benchmark vs naive pandas and the floors (writes \$$HRSS_HOME/reports/bench.md)"
	@echo "make soak   full fault-injection and long end-to-end tests"
	@echo "make airflow       start the Airflow UI on the embedded warehouse, DAGs unpaused (EXECUTOR=celery:"
	@echo "                   Redis and two Celery workers; make airflow-stop stops it)"
	@echo "make bi     Apache Superset with the dashboards of bi/superset on the marts (make bi-stop stops it)"
	@echo "make stop   stop Airflow and the embedded warehouse"
	@echo "make system-deps  (as root) the Debian packages the browser and Celery tests drive"

install: $(VENV)/.installed

UV_VERSION := 0.13.9

# Debian packages some tests drive: Chromium and its driver (browser tests of the UIs; a CJK font so
# that their screenshots show the Chinese labels), Redis (the Celery executor). Tests that need one skip with a line naming the package when it is missing.
SYSTEM_PACKAGES := chromium chromium-driver fonts-wqy-microhei redis-server
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml uv.lock
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (python3.11, python3.12, ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs the locked set in ~20 s where pip needs ~2.5 min: use it from PATH, else bring it into the venv.
	@command -v uv >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
		2> >(grep -v "is ignored: it is neither" >&2)
	@# Exactly the versions of uv.lock (--frozen: never re-resolved here; `uv lock` changes the lock).
	@# --inexact keeps pip and uv themselves, which the lock does not list. --compile-bytecode once here
	@# (30 s), because where PYTHONDONTWRITEBYTECODE is set every process (hrss, dbt, Airflow tasks)
	@# would compile its imports from source again at each start.
	UV_PROJECT_ENVIRONMENT=$(abspath $(VENV)) uv sync --quiet --frozen --inexact --compile-bytecode --extra dev \
		--python $(BIN)/python
	@# Cosmos renders the dbt task group from this manifest; parsing needs no database.
	$(BIN)/hrss dbt parse
	@touch $@

# The seed provinces' returns (deterministic, so generated once and kept under HRSS_HOME); 2017 is
# the year the published figures reconcile against. `make demo DEMO_YEARS=2014-2018` for all five.
DEMO_YEARS ?= 2017
DEMO_RETURNS := $(HRSS_HOME)/demo-returns-$(DEMO_YEARS)

demo: install
	$(BIN)/hrss warehouse start > /dev/null
	$(BIN)/hrss reference load
	@test -f $(DEMO_RETURNS).manifest.json || \
		$(BIN)/hrss generate --out $(DEMO_RETURNS) --years $(DEMO_YEARS) --seed 1
	@mkdir -p $(HRSS_HOME)/landing && cp -p $(DEMO_RETURNS)/* $(HRSS_HOME)/landing/
	$(BIN)/hrss run --landing $(HRSS_HOME)/landing
	$(BIN)/hrss summary
	@echo
	@echo "Warehouse DSN (admin):     $$($(BIN)/hrss warehouse url)"
	@echo "Warehouse DSN (bi_reader): $$($(BIN)/hrss warehouse url --role bi_reader)"
	@echo "Airflow UI: make airflow    Dashboards (Apache Superset): make bi    Stop everything: make stop"

lint: install
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint --disable-progress-bar dbt_project/models

# Unit, warehouse, dbt, DAG and end-to-end tests, then the quick soak and benchmark variants.
test: lint
	$(BIN)/python -m pytest -m "not soak"
	$(MAKE) --no-print-directory soak-quick
	$(MAKE) --no-print-directory bench-quick

soak-quick: install
	$(BIN)/python -m pytest -m soak tests/soak

# Fault injection at full size, the Airflow end-to-end and backfill tests, the slow benchmark tests.
soak: install
	HRSS_SOAK=full $(BIN)/python -m pytest -m soak

bench-quick: install
	$(BIN)/hrss bench --quick

# One national survey year and a national 10-year reprocess: an hour or more on 2 cores.
bench: install
	$(BIN)/hrss bench

# EXECUTOR=celery: Redis and two Celery workers instead of the LocalExecutor.
EXECUTOR ?= local
airflow: install
	HRSS_AIRFLOW_EXECUTOR=$(EXECUTOR) $(BIN)/hrss airflow start

airflow-stop: install
	$(BIN)/hrss airflow stop

# Apache Superset in a venv of its own (its pins conflict with Airflow's), on an interpreter it
# supports (3.10-3.12), installed once from the pinned set in bi/requirements.txt.
BI_VENV := .venv-bi
BI_PYTHON := $(shell for p in python3.11 python3.12 python3.10; do \
	command -v $$p >/dev/null 2>&1 && { echo $$p; break; }; done)

bi-install: $(BI_VENV)/.installed

$(BI_VENV)/.installed: bi/requirements.txt | install
	@test -n "$(BI_PYTHON)" || { echo "Superset needs Python 3.10, 3.11 or 3.12 (python3.11 ...)"; exit 1; }
	uv venv --quiet --allow-existing --python "$$($(BI_PYTHON) -c 'import sys; print(sys.executable)')" $(BI_VENV)
	uv pip install --quiet --python $(BI_VENV)/bin/python -r bi/requirements.txt
	@touch $@

bi: bi-install
	$(BIN)/hrss warehouse start > /dev/null
	$(BIN)/hrss bi start

bi-stop: install
	$(BIN)/hrss bi stop

stop: install
	-$(BIN)/hrss bi stop
	-$(BIN)/hrss airflow stop
	$(BIN)/hrss warehouse stop

clean: stop
	rm -rf $(HRSS_HOME) .hrss-test
