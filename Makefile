# Broadsheet: `make run` serves a demo publication, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
# What the suite needs besides the database: a throwaway Redis (rate limits shared by API
# processes) and nginx (the proxy config, run for real). Each script installs its tool if missing.
WITH_SERVICES := scripts/with-redis.sh scripts/with-nginx.sh

.PHONY: run install install-dev test lint typecheck test-sqlite test-postgres bench bench-pg clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --frozen --inexact --no-dev

install-dev: $(UV)
	$(UV) sync --frozen --inexact

run: install
	$(VENV)/bin/broadsheet migrate
	$(VENV)/bin/broadsheet seed-demo
	@echo "Broadsheet on http://$(HOST):$(PORT)  (API docs: /docs, readiness: /readyz)"
	$(VENV)/bin/broadsheet serve --host $(HOST) --port $(PORT)

test: install-dev lint typecheck test-sqlite test-postgres

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy app tests bench

test-sqlite:
	$(WITH_SERVICES) $(VENV)/bin/pytest

test-postgres:
	scripts/with-postgres.sh $(WITH_SERVICES) $(VENV)/bin/pytest

bench: install-dev
	$(VENV)/bin/python -m bench.run --database sqlite $(BENCH_ARGS)

bench-pg: install-dev
	scripts/with-postgres.sh $(VENV)/bin/python -m bench.run --database postgres $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
