# reviewflow: `make run` (set up + run the pipeline, UI left up), `make test`, `make test-fast`, `make stop`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
DAYS ?= 3
ROWS ?= 2000
DATA ?=
PLANT ?= 0

.PHONY: run test test-fast lint stop venv bench clean

$(STAMP): requirements.txt constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt -c constraints.txt
	$(VENV)/bin/python scripts/fetch_ui_assets.py || echo "warning: UI assets not fetched (npm); Data Docs render unstyled in the UI"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	DAYS=$(DAYS) ROWS=$(ROWS) DATA="$(DATA)" PLANT=$(PLANT) bash scripts/run.sh

stop:
	bash scripts/stop.sh

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(STAMP) lint
	bash scripts/test.sh

# lint, unit tests, DAG integrity and the package-shape checks, without the `slow` ones (real BERT fine-tunes, a DAG.test run)
test-fast: $(STAMP) lint
	. scripts/env.sh && python -m pytest -q -p no:cacheprovider --timeout 600 -m "not slow" tests/unit tests/test_dag_integrity.py tests/test_architecture.py

bench: $(STAMP)
	. scripts/env.sh && for b in bench/bench_*.py; do echo "== $$b"; python $$b; done

clean: stop
	rm -rf lake airflow_home test-artifacts
