# make demo : set everything up, run the whole DAG once against the local simulator, print a summary
# make check: the inner loop (under a minute): lint, unit tests, DAG integrity and layering
# make test : lint + the whole test suite on every core (what CI runs through .ci/run)
# make bench: the benchmarks (bench/run.py, bench/scheduler.py): print tables and the timing targets,
#             write bench/results.json and bench/scheduler.json
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv sysdeps demo check test lint unit bench clean
# pytest-xdist workers for `make test` (auto: one per core)
WORKERS ?= auto

$(STAMP): requirements.txt requirements-dev.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(BIN)/python -m devtools.demo

lint: venv
	$(BIN)/ruff check .

# System packages some tests need, from Debian's packages when missing and we can install them
# (root with apt, as CI runs); otherwise the tests that need them are skipped and say so (with
# CI set, as CI runs, they fail instead):
# PgBouncer (transaction mode, like Supabase's pooler) for the pooler test, and Chromium for
# the browser test of the health page.
sysdeps:
	@missing=""; \
	command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || missing="$$missing pgbouncer"; \
	command -v chromium >/dev/null || test -n "$$LIGHTSPEED_CHROMIUM" || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null 2>&1; \
	  then echo "installed:$$missing"; \
	  else echo "note: could not install$$missing; the tests that need them will be skipped (fail with CI set)"; fi; \
	fi

# Independent tests run in parallel (pytest-xdist); the end-to-end tests, each a whole Airflow
# deployment, run one after another on one worker (tests/conftest.py groups them).
test: venv lint sysdeps
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadgroup

check: venv lint
	$(BIN)/python -m devtools.docs --check
	$(BIN)/python -m pytest tests/unit tests/dags

# Starts its own PostgreSQL and simulator; about 15 minutes on 2 cores. BENCH_ARGS="--quick"
# skips the 4x-memory, prefetch and rate-limit runs. bench/scheduler.py times runs under a
# real scheduler (a no-op run, one entity vs clearing its group) against their targets.
bench: venv
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/scheduler.py

unit: check

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
