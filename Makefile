# casem: `make up` installs what running needs and runs everything on embedded defaults;
# `make test` adds the test tools and runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# One stamp per package set: `make up` installs only what running needs (about a third of the test set).
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# pytest workers: suites use per-worker databases, so they run in parallel safely.
TEST_WORKERS ?= auto
CONSOLE_ASSETS := casem/services/case_console/static/vendor/manifest.json
step = @printf '\n\033[1m==> %s\033[0m\n' "$(1)"

.PHONY: up test lint proto clean venv console-assets

$(RUN_STAMP): pyproject.toml
	$(call step,[1/4] Python virtualenv in $(VENV))
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: casem needs Python 3.11 or newer" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "casem needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -V
	$(call step,[2/4] Installing casem and what it needs to run (first time: a few minutes; pip shows each package))
	$(BIN)/pip install --upgrade --progress-bar on pip
	$(BIN)/pip install --progress-bar on -e .
	@touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(call step,Installing the test and development tools (pytest, ruff, import-linter, ...))
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	@touch $@

# The web console's front-end libraries: `npm ci` from the lockfile, copied where casem serves them.
$(CONSOLE_ASSETS): casem/services/case_console/frontend/package-lock.json
	$(call step,[3/4] The web console's front-end libraries (npm ci from the lockfile))
	bash scripts/tools/build-console.sh

console-assets: $(CONSOLE_ASSETS)

venv: $(DEV_STAMP)

up: $(RUN_STAMP) $(CONSOLE_ASSETS)
	$(call step,[4/4] Starting casem: $(BIN)/casem up (Ctrl-C stops it))
	@$(BIN)/casem up

test: $(DEV_STAMP) $(CONSOLE_ASSETS)
	$(BIN)/ruff check casem tests bench scripts examples
	$(BIN)/ruff format --check casem tests bench scripts examples
	$(BIN)/lint-imports
	bash scripts/tools/install.sh
	bash scripts/tools/install-chromium.sh
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -p no:cacheprovider $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check casem tests bench scripts examples
	$(BIN)/ruff format --check casem tests bench scripts examples
	$(BIN)/lint-imports

proto: $(DEV_STAMP)
	$(BIN)/python scripts/gen_proto.py

clean:
	rm -rf $(VENV) var .pytest_cache casem/services/case_console/static/vendor casem/services/case_console/frontend/node_modules
