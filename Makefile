# evaltoolkit: two commands.
#   make demo   -> builds .venv (Python 3.11) from requirements/runtime.lock, runs the example study, writes a report
#   make test   -> builds .venv from requirements/dev.lock (exactly: nothing more, nothing less), lints, runs the suite
# and, by hand:
#   make lock         -> regenerate the three locks from pyproject.toml's ranges (newest versions they allow)
#   make test-latest  -> run the suite in a throw-away environment resolved afresh from the ranges (drift check)
#   make bench        -> benchmarks, in .venv-bench built from requirements/bench.lock
#   make docs         -> the documentation site in site/ (notebooks executed; offline; mkdocs build --strict)
#   make app          -> the local web app (evaltoolkit serve) on the demo study, in the browser
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
SYNC   := requirements/sync.py
# Python 3.11 on Linux x86-64 is the platform the locks are made for.
LOCKFLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --quiet

.PHONY: demo app test lint bench lock test-latest clean docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# demo: install the runtime lock, keep anything else already there (a dev environment also runs the demo)
$(VENV)/.installed: requirements/runtime.lock pyproject.toml | $(BIN)/python
	$(BIN)/python $(SYNC) requirements/runtime.lock --keep
	@touch $@

# test: the venv holds exactly the dev lock (tests/test_environment.py checks it)
$(VENV)/.installed-dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python $(SYNC) requirements/dev.lock
	@touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/evaltoolkit demo --out evaltoolkit-demo

# app: the local web app on the demo study (the runtime lock includes the app extra)
app: $(VENV)/.installed
	$(BIN)/evaltoolkit serve --demo

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check evaltoolkit tests benchmarks requirements
	$(BIN)/ruff format --check evaltoolkit tests benchmarks requirements
	$(BIN)/lint-imports --no-cache

test: lint
	EVALTOOLKIT_LOCK=requirements/dev.lock $(BIN)/python -m pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

bench: | $(BIN)/python
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python $(SYNC) requirements/bench.lock
	.venv-bench/bin/python benchmarks/run_all.py

# docs: executes the notebooks (tests/test_docs.py builds without, as the suite runs them itself)
docs: $(VENV)/.installed-dev
	EVALTOOLKIT_DOCS_EXECUTE=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --clean -d site

lock: $(VENV)/.installed-dev
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra dev $(LOCKFLAGS) -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra app $(LOCKFLAGS) \
	  -c requirements/dev.lock -o requirements/runtime.lock
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra dev --extra bench $(LOCKFLAGS) \
	  -c requirements/dev.lock -o requirements/bench.lock
	@echo "Locks regenerated; run 'make test' (it re-syncs .venv), then commit requirements/*.lock."

test-latest:
	@d=$$(mktemp -d) && echo "Throw-away environment: $$d" && \
	  $(PYTHON) -m venv $$d/venv && \
	  $$d/venv/bin/python -m pip install --quiet --upgrade pip && \
	  $$d/venv/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]" && \
	  echo "Versions that differ from requirements/dev.lock:" && \
	  ($$d/venv/bin/python $(SYNC) requirements/dev.lock --check --keep || true) && \
	  $$d/venv/bin/python -m pytest -q -p no:cacheprovider; rc=$$?; rm -rf $$d; exit $$rc

clean:
	rm -rf $(VENV) .venv-bench evaltoolkit-demo build site *.egg-info .pytest_cache .ruff_cache
