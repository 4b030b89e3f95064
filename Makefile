# make demo : set everything up, run the whole DAG once against the local simulator, print a summary
# make test : lint + the whole test suite (what CI runs through .ci/run)
# make bench: (see bench/) performance numbers
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint unit clean

$(STAMP): requirements.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m devtools.demo

lint: venv
	$(BIN)/ruff check .

test: venv lint
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit tests/dags

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
