# labelyard: `make run` starts the server on the embedded default (SQLite, local files);
# `make test` installs what the tests need and runs the whole suite on SQLite and PostgreSQL.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check format clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("labelyard needs Python >= 3.11") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/labelyard serve

test: $(VENV)/.dev-installed
	scripts/test.sh

check: $(VENV)/.dev-installed
	$(BIN)/ruff check labelyard tests bench
	$(BIN)/ruff format --check labelyard tests bench
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix labelyard tests bench
	$(BIN)/ruff format labelyard tests bench

clean:
	rm -rf $(VENV) labelyard-data .pytest_cache .mypy_cache .ruff_cache
