# evaltoolkit: two commands.
#   make demo   -> builds .venv (Python 3.11), installs the package, runs the example study, writes an HTML report
#   make test   -> builds .venv with the dev extras, runs ruff and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[dev]"
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/evaltoolkit demo --out evaltoolkit-demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check evaltoolkit tests benchmarks
	$(BIN)/ruff format --check evaltoolkit tests benchmarks

test: lint
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: $(VENV)/.installed-dev
	$(PIP) install --quiet -e ".[dev,bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) evaltoolkit-demo build *.egg-info .pytest_cache .ruff_cache
