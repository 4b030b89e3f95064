"""Faults the sync must survive with the database equal to the source afterwards.

Each test injects the fault for real: SIGKILL of the worker, a hostile API (the
simulator over HTTP), PostgreSQL connections killed or the server restarted, a stuck
lock, two syncs at once, and records PostgreSQL cannot hold as sent.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import psycopg
import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.sync import sync_entity
from lightspeed_pipeline.warehouse import DbSettings, Warehouse
from lightspeed_pipeline.warehouse.locks import EntityBusyError, entity_lock
from lightspeed_pipeline.warehouse.migrations import apply_migrations

from tests.conftest import FAST_RETRIES, TOKEN
from tests.integration.helpers import (
    assert_database_equals_source,
    requests_by_resource,
    run_dag,
    run_dag_disturbed,
    run_killed,
    sync_state,
    wait_for,
)

PAGE = FAST_RETRIES["page_size"]


def sales_cursor(db: Any, schema: str) -> int | None:
    """The committed sales cursor, or None while the schema does not exist yet."""
    if db.execute("SELECT to_regclass(%s)", (f'"{schema}".sync_state',)).fetchone()[0] is None:  # type: ignore[index]
        return None
    row = db.execute(f"SELECT last_version FROM \"{schema}\".sync_state WHERE entity_type = 'sales'").fetchone()
    return row[0] if row else None


def orphans(db: Any, schema: str) -> int:
    """Children (of any parent: sales, gift cards, store credit) whose parent row is not there."""
    return sum(
        db.execute(
            f'SELECT count(*) FROM "{schema}"."{child.table}" c WHERE NOT EXISTS '
            f'(SELECT 1 FROM "{schema}"."{e.table}" p WHERE p.id = c."{child.parent_key}")'
        ).fetchone()[0]  # type: ignore[index]
        for e in reg.ENTITIES
        for child in e.children
    )


def test_sigkill_mid_entity_resumes_from_the_last_committed_page(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, api_version: str
) -> None:
    state = simulator.state(api_version)
    n_sales = len(state["sales"])
    simulator.faults(delay={"sales": 0.4})  # each sales page takes a while: the worker sits between pages
    run_killed(["sales"], lambda: (sales_cursor(db, schema) or 0) > 0 and db.execute(
        f'SELECT count(*) >= {2 * PAGE} FROM "{schema}".lightspeed_sales').fetchone()[0])  # fmt: skip
    committed = sales_cursor(db, schema)
    stored = db.execute(f'SELECT count(*), max(version) FROM "{schema}".lightspeed_sales').fetchone()
    assert 0 < stored[0] < n_sales and stored[1] == committed  # whole pages only, cursor = last page
    assert stored[0] % PAGE == 0
    assert orphans(db, schema) == 0
    assert sync_state(db, schema)["sales"][0] == "running"  # the killed run could not say so

    simulator.faults()
    simulator.reset_stats()
    run = run_dag(entities=["sales"])  # what clearing the sales group does
    assert run.state == "success"
    reqs = requests_by_resource(simulator.stats())["sales"]
    assert int(reqs[0]["query"]["after"]) == committed
    remaining = n_sales - stored[0]
    assert len(reqs) == math.ceil(remaining / PAGE) + 1  # nothing before the cursor is read again
    assert_database_equals_source(db, schema, simulator.state(api_version), only=("sales",), api_version=api_version)
    assert orphans(db, schema) == 0
    assert sync_state(db, schema)["sales"][0] == "success"


HOSTILE_SCRIPT = [
    "429-date", "429-seconds", "429-past", "429-none", "503", "502", "500", "reset", "cut", "truncate",
    "html", "nomax", "timeout", "200", "429-date", "504", "reset",
]  # fmt: skip


def test_hostile_api_still_ends_equal(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    api_version: str,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_API",
        simulator.airflow_connection(**{**FAST_RETRIES, "timeout": 0.5, "max_retries": 12}),
    )
    simulator.faults(
        script=HOSTILE_SCRIPT,
        rates={"429-date": 0.04, "503": 0.03, "reset": 0.03, "truncate": 0.02, "nomax": 0.05},
        fault_seed=11, retry_after_seconds=1, timeout_s=1.0,
    )  # fmt: skip
    run = run_dag()
    simulator.faults()
    assert run.state == "success"
    assert_database_equals_source(db, schema, simulator.state(api_version), api_version=api_version)
    statuses = simulator.stats()["by_status"]
    assert statuses.get("reset", 0) >= 2 and statuses.get("cut", 0) >= 1 and statuses.get("429", 0) >= 4


def test_exhausted_retry_budget_fails_clearly_and_the_next_run_resumes(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    api_version: str,
) -> None:
    monkeypatch.setenv("LIGHTSPEED_TASK_RETRIES", "0")
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES, retry_budget_s=2.5))
    # The store check, two good pages, then a storm of 429s with Retry-After: 1.
    simulator.faults(script=["200", "200", "200"], resources={"sales": "429-seconds"}, retry_after_seconds=1)
    started = time.monotonic()
    run = run_dag(entities=["sales"])
    assert run.state == "failed" and time.monotonic() - started < 60
    status, cursor, error = sync_state(db, schema)["sales"]
    assert status == "failed" and cursor is not None
    assert error.startswith(
        f"sales (page 3, after version {cursor}): giving up on GET /api/{api_version}/sales?after={cursor}"
    )
    assert "retry_budget_s=2.5" in error and "HTTP 429 (Retry-After: '1')" in error

    simulator.faults()
    simulator.reset_stats()
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES))
    assert run_dag(entities=["sales"]).state == "success"
    assert requests_by_resource(simulator.stats())["sales"][0]["query"]["after"] == str(cursor)
    assert_database_equals_source(db, schema, simulator.state(api_version), only=("sales",), api_version=api_version)


def test_dropped_database_connection_mid_entity_is_retried_and_resumes(
    connections: None,
    simulator: Any,
    db: Any,
    pg_dsn: str,
    schema: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    api_version: str,
) -> None:
    # This test's own application_name: only its sync's connections are killed, not those of a
    # test running beside it on the same server.
    name = f"lightspeed_sync_{schema}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_POSTGRES", f"{pg_dsn}{'&' if '?' in pg_dsn else '?'}application_name={name}"
    )
    simulator.faults(delay={"sales": 0.3})
    killed: list[int] = []

    def terminate_sync_connections() -> None:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
                " AND pid <> pg_backend_pid()",
                (name,),
            ).fetchall()
            killed.append(len(rows))

    # when sales is half way; the task fails once, and its retry resumes
    run, done = run_dag_disturbed(lambda: (sales_cursor(db, schema) or 0) > 0, terminate_sync_connections,
                                  entities=["sales"])  # fmt: skip
    simulator.faults()
    assert done and killed and killed[0] >= 1
    assert run.state == "success"
    log = [r[0] for r in db.execute(
        f"SELECT status FROM \"{schema}\".sync_log WHERE entity_type = 'sales' ORDER BY id").fetchall()]  # fmt: skip
    assert log == ["started", "failed", "started", "completed"]
    assert_database_equals_source(db, schema, simulator.state(api_version), only=("sales",), api_version=api_version)
    assert orphans(db, schema) == 0


def test_postgres_restart_mid_entity_rolls_back_the_page_and_the_retry_resumes(
    simulator: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch, api_version: str
) -> None:
    from devtools.pg import ThrowawayPostgres

    with ThrowawayPostgres() as pg:  # our own server, so restarting it disturbs nobody
        assert pg.dsn is not None
        monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES))
        monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pg.dsn)
        simulator.faults(delay={"sales": 0.3})
        conn = psycopg.connect(pg.dsn, autocommit=True)

        def restart() -> None:
            conn.close()
            pg.restart()

        run, restarted = run_dag_disturbed(lambda: (sales_cursor(conn, schema) or 0) > 0, restart, entities=["sales"])
        simulator.faults()
        assert restarted and run.state == "success"
        with psycopg.connect(pg.dsn, autocommit=True) as after:
            state = simulator.state(api_version)
            assert_database_equals_source(after, schema, state, only=("sales",), api_version=api_version)
            assert orphans(after, schema) == 0
            query = f"SELECT status FROM \"{schema}\".sync_log WHERE entity_type = 'sales' ORDER BY id"
            statuses = [r[0] for r in after.execute(query).fetchall()]
            assert statuses[-1] == "completed" and "started" in statuses[:-1]


def test_a_stuck_lock_fails_the_task_instead_of_hanging(
    connections: None, simulator: Any, db: Any, pg_dsn: str, schema: str, airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("LIGHTSPEED_TASK_RETRIES", "0")
    sep = "&" if "?" in pg_dsn else "?"
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", f"{pg_dsn}{sep}lock_timeout=1s&statement_timeout=30s")
    assert run_dag(entities=["brands"]).state == "success"  # schema exists
    blocker = psycopg.connect(pg_dsn)
    try:
        blocker.execute(f'LOCK TABLE "{schema}".lightspeed_brands IN SHARE MODE')  # held, uncommitted
        started = time.monotonic()
        simulator.mutate(seed=1, update={"brands": 1})
        run = run_dag(entities=["brands"])
        elapsed = time.monotonic() - started
    finally:
        blocker.rollback()
        blocker.close()
    assert run.state == "failed" and elapsed < 60
    status, _, error = sync_state(db, schema)["brands"]
    assert status == "failed" and "lock timeout" in error


def _client(sim: Any) -> LightspeedClient:
    return LightspeedClient(ClientConfig(base_url=sim.url, token=TOKEN, page_size=PAGE))


def test_two_syncs_of_one_entity_serialise_on_the_entity_lock(
    simulator: Any, pg_dsn: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = DbSettings(schema=schema)
    first, second = Warehouse.open(pg_dsn, settings), Warehouse.open(pg_dsn, settings)
    apply_migrations(first)
    simulator.faults(delay={"sales": 0.2})
    results: dict[str, Any] = {}

    def run(name: str, warehouse: Warehouse) -> None:
        with _client(simulator) as client:
            results[name] = sync_entity(reg.get("sales"), client, warehouse, run_id=name, lock_wait_s=120)

    a = threading.Thread(target=run, args=("a", first))
    a.start()
    with psycopg.connect(pg_dsn, autocommit=True) as watcher:
        wait_for(lambda: (sales_cursor(watcher, schema) or 0) > 0)
    with caplog.at_level(logging.WARNING, logger="lightspeed_pipeline.warehouse.locks"):
        run("b", second)  # starts while "a" is half way: waits, then resumes from a's cursor
    a.join()
    simulator.faults()
    assert "another sync of this entity is running (held by backend pid" in caplog.text
    assert results["a"].inserted == len(simulator.state()["sales"])
    assert results["b"].received == 0 and results["b"].http["requests"] == 1
    assert results["b"].start_version == results["a"].last_version
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert_database_equals_source_for(conn, schema, simulator, "sales")
        assert sync_state(conn, schema)["sales"][0] == "success"
    # skip mode: a second sync gives up at once with a clear message
    holder = Warehouse.open(pg_dsn, settings)
    with entity_lock(holder, reg.get("sales")):
        with _client(simulator) as client, pytest.raises(EntityBusyError, match="sales: another sync of this entity"):
            sync_entity(reg.get("sales"), client, second, skip_if_busy=True)
    for warehouse in (first, second, holder):
        warehouse.close()


def assert_database_equals_source_for(conn: Any, schema: str, simulator: Any, entity: str) -> None:
    state = simulator.state()
    rows = dict(conn.execute(f'SELECT id, version FROM "{schema}"."lightspeed_{entity}"').fetchall())
    assert rows == {r["id"]: r["version"] for r in state[entity]}


HOSTILE_CUSTOMERS = [
    {"id": "bad-nul", "version": 1, "first_name": "nul\x00inside", "email": "a\x00b@example.com"},
    {"id": "bad-surrogate", "version": 1, "first_name": "lone \ud800 surrogate", "last_name": None},
    {"id": "bad-long", "version": 1, "first_name": "x" * 100_000, "note": "y" * 100_000},
    {"id": "bad-emoji-rtl", "version": 1, "first_name": "😀👩‍👩‍👧", "last_name": "שלום עליכם", "company": "مرحبا"},
    {"id": "bad-numbers", "version": 1, "loyalty_balance": "12.50", "customer_group_id": 7},
    {"id": "bad-unknown", "version": 1, "brand_new_field": {"nested": [1, {"x": None}]}, "loyalty_balance": "n/a"},
    {"id": "bad-ts-z", "version": 1, "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00+00:00"},
    {"id": "bad-ts-nozone", "version": 1, "created_at": "2024-05-01T10:00:00", "updated_at": "yesterday"},
    "not an object",
    {"first_name": "no id at all"},
]


def test_hostile_records_are_stored_typed_where_possible_or_rejected(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, api_version: str
) -> None:
    simulator.inject("customers", HOSTILE_CUSTOMERS)
    simulator.inject("sales", [
        {"id": "sale-no-items", "version": 1, "status": "CLOSED", "total_price": "10.00", "line_items": [],
         "payments": None},
        {"id": "sale-items-null", "version": 1, "status": "CLOSED", "line_items": None},
        {"id": "sale-odd-items", "version": 1, "line_items": ["junk", {"id": "li", "quantity": "2"}]},
    ])  # fmt: skip
    run = run_dag(entities=["customers", "sales"])
    assert run.state == "success"
    rows = {
        r[0]: r[1:]
        for r in db.execute(
            f"SELECT id, first_name, email, loyalty_balance, created_at, updated_at, customer_group_id, data"
            f' FROM "{schema}".lightspeed_customers WHERE id LIKE %s',
            ("bad-%",),
        ).fetchall()
    }
    assert set(rows) == {r["id"] for r in HOSTILE_CUSTOMERS if isinstance(r, dict) and "id" in r}
    assert rows["bad-nul"][0] == "nul\\u0000inside" and rows["bad-nul"][1] == "a\\u0000b@example.com"
    assert rows["bad-surrogate"][0] == "lone \\ud800 surrogate"
    assert len(rows["bad-long"][0]) == 100_000 and len(rows["bad-long"][6]["note"]) == 100_000
    assert rows["bad-emoji-rtl"][0] == "😀👩‍👩‍👧" and rows["bad-emoji-rtl"][6]["company"] == "مرحبا"
    assert str(rows["bad-numbers"][2]) == "12.50" and rows["bad-numbers"][5] == "7"
    assert rows["bad-unknown"][2] is None and rows["bad-unknown"][6]["brand_new_field"] == {"nested": [1, {"x": None}]}
    assert rows["bad-ts-z"][3] == rows["bad-ts-z"][4] and rows["bad-ts-z"][3].isoformat() == "2024-05-01T10:00:00+00:00"
    assert rows["bad-ts-nozone"][3].isoformat() == "2024-05-01T10:00:00+00:00" and rows["bad-ts-nozone"][4] is None
    rejects = db.execute(
        f'SELECT entity_type, reason, payload, after_version FROM "{schema}".sync_rejects ORDER BY id'
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rejects] == [
        ("customers", "not a JSON object", "not an object"),
        ("customers", "missing or unusable id", {"first_name": "no id at all"}),
    ]
    assert all(r[3] is not None for r in rejects)
    meta = db.execute(
        f"SELECT metadata FROM \"{schema}\".sync_log WHERE entity_type = 'customers' AND status = 'completed'"
    ).fetchone()[0]  # type: ignore[index]
    assert meta["rejected"] == 2
    assert meta["untyped_values"] == {"loyalty_balance": 1, "updated_at": 1}
    items = dict(db.execute(
        f'SELECT sale_id, count(*) FROM "{schema}".lightspeed_sale_line_items WHERE sale_id LIKE %s GROUP BY 1',
        ("sale-%",)).fetchall())  # fmt: skip
    assert items == {"sale-odd-items": 2}
    query = f'SELECT id, total_price FROM "{schema}".lightspeed_sales WHERE id LIKE %s'
    sales = dict(db.execute(query, ("sale-%",)).fetchall())
    assert (
        set(sales) == {"sale-no-items", "sale-items-null", "sale-odd-items"} and str(sales["sale-no-items"]) == "10.00"
    )
