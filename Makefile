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

.PHONY: help install demo test lint stop clean

help:
	@echo "make demo   install, start the warehouse and run the whole flow on sample returns"
	@echo "make test   install and run every test (lint, unit, warehouse, quick bench and soak)"
	@echo "make stop   stop the embedded warehouse"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is required (python3.11, python3.12, ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv installs the set in ~20 s where pip needs ~2.5 min: use it from PATH, else bring it into the venv.
	@command -v uv >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv \
		2> >(grep -v "is ignored: it is neither" >&2) || true
	@if command -v uv >/dev/null 2>&1; then \
		uv pip install --quiet --python $(BIN)/python -e '.[dev]'; \
	else \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'; \
	fi
	@touch $@

demo: install
	$(BIN)/hrss warehouse start
	@echo
	@echo "Warehouse DSN (admin):     $$($(BIN)/hrss warehouse url)"
	@echo "Warehouse DSN (bi_reader): $$($(BIN)/hrss warehouse url --role bi_reader)"
	@echo "Stop it with: make stop"

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

stop: install
	$(BIN)/hrss warehouse stop

clean: stop
	rm -rf $(HRSS_HOME) .hrss-test
