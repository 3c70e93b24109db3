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

.PHONY: serve test install install-test lock lint typecheck contracts pytest bench reproduce clean

# Installs come from uv.lock, so a fresh machine gets exactly what CI tested. uv itself is pinned
# here and lives in a venv of its own (a sync of .venv would remove it from there).
UV_VERSION := 0.13.9
TOOLS ?= .venv-tools
UV := $(TOOLS)/bin/uv
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet uv==$(UV_VERSION)

# --locked refuses a lock that no longer matches pyproject.toml; the stamps re-sync on a change.
# The runtime install is --inexact so that it keeps the test tools of an earlier `make test`.
$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --inexact --python $(PYTHON)
	touch $@

$(VENV)/.installed-test: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra test --python $(PYTHON)
	touch $@ $(VENV)/.installed

# Refresh the lock on purpose: every dependency to its newest release that pyproject.toml allows
# (`make lock PACKAGE=name` upgrades that one only). Run `make test`, then commit uv.lock.
lock: | $(UV)
	$(UV) lock $(if $(PACKAGE),--upgrade-package $(PACKAGE),--upgrade)

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
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache
