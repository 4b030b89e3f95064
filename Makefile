# make demo : set everything up, run the whole DAG once against the local simulator, print a summary
# make test : lint + the whole test suite (what CI runs through .ci/run)
# make bench: the performance benchmark (bench/run.py): prints a table, writes bench/results.json
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps demo test lint unit bench clean

$(STAMP): requirements.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m devtools.demo

lint: venv
	$(BIN)/ruff check .

# PgBouncer (transaction mode, like Supabase's pooler) for the pooler test: from Debian's
# packages when missing and we can install it; otherwise that one test is skipped.
sysdeps:
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer) >/dev/null 2>&1 \
	    || echo "note: pgbouncer not installed; the pooler test will be skipped"; }

test: venv lint sysdeps
	$(BIN)/python -m pytest

# Starts its own PostgreSQL and simulator; about 5 minutes on 2 cores. BENCH_ARGS="--quick"
# skips the 4x-memory, prefetch and rate-limit runs.
bench: venv
	$(BIN)/python bench/run.py $(BENCH_ARGS)

unit: venv
	$(BIN)/python -m pytest tests/unit tests/dags

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
