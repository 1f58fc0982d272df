# The two commands of the README: `make run` and `make test`. Each installs what it needs:
# `make run` only what running needs, `make test` adds the test tools (pytest, Playwright,
# ruff, mypy) on top. Both install the exact versions of the lock files in requirements/
# (checked against their hashes), then the project itself with no dependencies of its own.
# `make lock` updates the lock files from pyproject.toml (docs/operations.md).
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $(wildcard /root/.pyenv/versions/3.1[2-9]*/bin/python3); do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

LOCK_TOOLS := $(VENV)/lock-tools
PIP_COMPILE := $(LOCK_TOOLS)/bin/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links

$(VENV)/.installed: pyproject.toml requirements/run.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/run.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements/test.txt
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/test.txt
	touch $@

.PHONY: install install-test run test lint bench lock
install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

lock:
	@test -n "$(PYTHON)" || { echo "Python 3.12 or newer is needed (set PYTHON=...)"; exit 1; }
	test -x $(LOCK_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_TOOLS) && \
		$(LOCK_TOOLS)/bin/pip install --quiet pip-tools; }
	$(PIP_COMPILE) --output-file requirements/run.txt pyproject.toml
	$(PIP_COMPILE) --extra test --output-file requirements/test.txt pyproject.toml

run: install
	$(VENV)/bin/guongsang run

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy bot handlers models scheduler

test: lint
	$(VENV)/bin/pytest

bench: install
	$(VENV)/bin/python bench/updates.py
