"""Shared by the end-to-end tests: the settings a native stack runs the sync with."""

from __future__ import annotations

import json

from devtools.simproc import SimulatorProcess

# Clearing customers.sync with its downstream: what needs customers (sales; store credit), their
# `finished` gates (soft dependants wait on them) and what needs sales (gift cards).
CLEARED_WITH_CUSTOMERS = {
    "customers.sync", "customers.finished", "sales.sync", "sales.finished", "gift_cards.sync", "store_credits.sync",
    "finalize",
}  # fmt: skip


def sync_env(sim: SimulatorProcess, pg_dsn: str, schema: str, api_version: str | None = "2.0") -> dict[str, str | None]:
    """The recommended connection forms (no extra on the API connection) and fast retries;
    `api_version` None leaves LIGHTSPEED_API_VERSION unset (the database decides: the newest for a new one)."""
    return {
        "LIGHTSPEED_API_VERSION": api_version,
        "AIRFLOW_CONN_LIGHTSPEED_API": json.dumps({"conn_type": "http", "host": sim.url, "password": sim.token}),
        "AIRFLOW_CONN_LIGHTSPEED_POSTGRES": pg_dsn,
        "LIGHTSPEED_SCHEMA": schema,
        "LIGHTSPEED_PAGE_SIZE": "50",
        "LIGHTSPEED_BACKOFF_INITIAL": "0.05",
        "LIGHTSPEED_TASK_RETRIES": "1",
        "LIGHTSPEED_RETRY_DELAY_S": "1",
    }
