# The targets people type. `make serve` and `make test` are the README's two set-up commands.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

# The built-in cifar10 data set reads the real CIFAR-10 batches next to this checkout, if present.
CIFAR10 := $(abspath ../shared/data/cifar-10-batches-py)
ifneq ($(wildcard $(CIFAR10)/data_batch_1),)
export DESCENT_CIFAR10_DIR ?= $(CIFAR10)
endif

.PHONY: serve test install install-test lint typecheck contracts pytest bench reproduce clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes (the stamp files remember the last install).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

serve: install
	mkdir -p var
	$(BIN)/descent serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

lint: install-test
	$(BIN)/ruff check .

typecheck: install-test
	$(BIN)/mypy

contracts: install-test
	$(BIN)/lint-imports

pytest: install-test
	$(BIN)/pytest

test: lint typecheck contracts pytest

bench: install-test
	$(BIN)/python -m bench

reproduce: install-test
	$(BIN)/python -m bench reproduce

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
