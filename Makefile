# fixgw — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install demo test lint bench fuzz wheels clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-9s %s\n", $$1, $$2}'

# Compiled with mypyc (setup.py) in place: `make` compiles again whenever a module changes.
# FIXGW_COMPILE=0 leaves the package pure Python.
FIXGW_COMPILE ?= 1
export FIXGW_COMPILE
SOURCES := $(shell find fixgw -name '*.py')

install: $(VENV)/.compiled-$(FIXGW_COMPILE) ## create .venv, install fixgw with its test and lint tools, compile it

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77' wheel
	FIXGW_COMPILE=0 $(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.compiled-$(FIXGW_COMPILE): $(VENV)/.installed $(SOURCES)
	rm -f $(VENV)/.compiled-*
	find fixgw -name '*.so' -delete
	$(BIN)/python setup.py --quiet build_ext --inplace
	# build_ext copies a library it did not need to rebuild with its old time; the tests'
	# guard (tests/conftest.py) reads that time as when the sources were last compiled.
	find fixgw -name '*.so' -exec touch {} +
	touch $@

demo: install ## run the bundled simulator and the gateway on the demo config (Ctrl-C stops)
	$(BIN)/fixgw demo

test: install ## run every test: units, and real QuickFIX sessions against the simulator
	$(BIN)/pytest

lint: install ## ruff and mypy (strict)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install ## benchmarks: print figures and gateway/floor ratios
	$(BIN)/python -m bench.run

fuzz: install ## every fuzz test (pytest -m fuzz; corpus in tests/fuzz.py) at 100,000 examples (CI: 1,500)
	FIXGW_FUZZ_EXAMPLES=100000 $(BIN)/pytest -q --timeout 0 -m fuzz

wheels: ## build fixgw, its NATS and tui extras and every dependency as wheels in dist/wheels (the Docker image's build stage)
	$(PYTHON) -m pip wheel --quiet --wheel-dir dist/wheels '.[nats,tui]'

clean: ## remove the venv, caches and run state
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find fixgw -name '*.so' -delete
