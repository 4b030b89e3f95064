"""Through a transaction-mode pooler (PgBouncer, as Supabase's port 6543): no session state is relied on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.pooler import TransactionPooler, pgbouncer_binary
from tests.conftest import FAST_RETRIES, TOKEN, require_system
from tests.integration.helpers import assert_database_equals_source, run_dag


@pytest.fixture
def pooler(pg_dsn: str) -> Iterator[TransactionPooler]:
    require_system(
        "PgBouncer",
        pgbouncer_binary() is not None,
        "`make test` installs it on Debian as root (apt-get install pgbouncer)",
    )
    with TransactionPooler(pg_dsn, pool_size=3) as p:
        yield p


def test_the_whole_sync_works_through_a_transaction_pooler(
    pooler: TransactionPooler, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = {"client_id": "c", "client_secret": "s" * 16, "refresh_token": "rt-pooler"}
    simulator.setup_oauth(**client, access_token=TOKEN)
    simulator.expire_access_token()  # the token store's row lock goes through the pooler too
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES, **client))
    assert pooler.dsn is not None
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pooler.dsn)
    assert run_dag().state == "success"
    assert_database_equals_source(db, schema, simulator.state())
    simulator.mutate(seed=9, update={"products": 4, "customers": 3}, new={"sales": 8}, void_sales=2,
                     delete={"customers": 1})  # fmt: skip
    assert run_dag().state == "success"
    assert_database_equals_source(db, schema, simulator.state())
    # It really went through PgBouncer in transaction mode, sharing a few server connections.
    config = {row["key"]: row["value"] for row in pooler.admin("SHOW CONFIG")}
    assert config["pool_mode"] == "transaction"
    stats = {row["database"]: row for row in pooler.admin("SHOW STATS")}
    db_stats = next(v for k, v in stats.items() if k != "pgbouncer")
    assert int(db_stats["total_xact_count"]) > 100
