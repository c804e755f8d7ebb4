# casem: `make up` runs everything on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers: suites use per-worker databases, so they run in parallel safely.
TEST_WORKERS ?= auto

.PHONY: up test lint proto clean venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

up: $(STAMP)
	$(BIN)/casem up

test: $(STAMP)
	$(BIN)/ruff check casem tests bench scripts
	$(BIN)/ruff format --check casem tests bench scripts
	$(BIN)/lint-imports
	bash scripts/tools/install.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check casem tests bench scripts
	$(BIN)/ruff format --check casem tests bench scripts
	$(BIN)/lint-imports

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

clean:
	rm -rf $(VENV) var .pytest_cache
