# casem: `make up` runs everything on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers: suites use per-worker databases, so they run in parallel safely.
TEST_WORKERS ?= auto

CONSOLE_ASSETS := casem/services/case_console/static/vendor/manifest.json

.PHONY: up test lint proto clean venv console-assets

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# The web console's front-end libraries: `npm ci` from the lockfile, copied where casem serves them.
$(CONSOLE_ASSETS): casem/services/case_console/frontend/package-lock.json
	bash scripts/tools/build-console.sh

console-assets: $(CONSOLE_ASSETS)

up: $(STAMP) $(CONSOLE_ASSETS)
	$(BIN)/casem up

test: $(STAMP) $(CONSOLE_ASSETS)
	$(BIN)/ruff check casem tests bench scripts
	$(BIN)/ruff format --check casem tests bench scripts
	$(BIN)/lint-imports
	bash scripts/tools/install.sh
	bash scripts/tools/install-chromium.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check casem tests bench scripts
	$(BIN)/ruff format --check casem tests bench scripts
	$(BIN)/lint-imports

proto: $(STAMP)
	$(BIN)/python scripts/gen_proto.py

clean:
	rm -rf $(VENV) var .pytest_cache casem/services/case_console/static/vendor casem/services/case_console/frontend/node_modules
