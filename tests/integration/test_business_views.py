"""The business metric views (daily transactions, inventory per outlet, customer growth) against the
figures computed from the source records, through real DAG runs on the simulator over HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightspeed_pipeline.warehouse.migrations import VIEWS_DIR, apply_migrations

from devtools.simproc import SimulatorProcess
from tests.conftest import TOKEN
from tests.integration.helpers import (
    _local_day,
    assert_business_views_match,
    expected_daily_transactions,
    expected_inventory_by_outlet,
    run_dag,
)

BUSINESS_VIEWS = ("daily_transactions_by_outlet", "inventory_by_outlet", "customer_growth_by_month")
# Three outlets (Sydney, New York, London: local days differ from UTC days both ways).
SCALE = "outlets=3,registers=6,customers=120,sales=400"


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(token=TOKEN, scale=SCALE)
    yield sim
    sim.stop()


def views_in(db: Any, schema: str) -> set[str]:
    return {r[0] for r in db.execute("SELECT viewname FROM pg_views WHERE schemaname = %s", (schema,)).fetchall()}


def oddities(state: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Records with values the typed columns cannot hold, and an outlet in a zone nobody knows."""

    def live(resource: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in r.items() if k != "_removed"}
            for r in state[resource]
            if not r.get("deleted_at") and not r.get("_removed")
        ]

    sale = next(s for s in live("sales") if s["status"] == "CLOSED" and s.get("customer_id"))
    stocked = next(p for p in live("products") if p["active"] and p["has_inventory"])
    shop = live("outlets")[0]["id"]
    outlet = {**live("outlets")[0], "id": "odd-outlet", "name": "Pop-up ☂", "time_zone": "Mars/Olympus"}
    customer = {**live("customers")[0], "id": "odd-customer", "created_at": "last Tuesday"}
    when = "2024-06-30T23:30:00Z"  # 30 June in UTC (the unknown zone), 1 July in Sydney
    items = [{**li, "quantity": "two"} for li in sale["line_items"]]
    base = {**sale, "outlet_id": outlet["id"], "customer_id": customer["id"], "sale_date": when}
    sales = [
        # completed (lower case is upper-cased), no typable total, no typable quantity
        {**base, "id": "odd-sale-1", "invoice_number": "ODD-1", "status": "closed", "total_price": "n/a",
         "line_items": items},
        {**base, "id": "odd-sale-2", "invoice_number": "ODD-2", "status": "PICKED_UP_CLOSED", "total_price": "10.50"},
        {**base, "id": "odd-sale-3", "invoice_number": "ODD-3", "status": "LAYBY", "total_price": 99},
        {**base, "id": "odd-sale-4", "invoice_number": "ODD-4", "sale_date": "soon"},  # no day: not counted
    ]  # fmt: skip
    product = {**stocked, "id": "odd-product", "sku": "ODD-SKU", "supply_price": "unknown", "price_excluding_tax": 8}
    inventory = [
        {"id": "odd-inv-1", "product_id": product["id"], "outlet_id": shop, "inventory_level": 5,
         "reorder_point": "five", "reorder_amount": None},
        {"id": "odd-inv-2", "product_id": stocked["id"], "outlet_id": shop, "inventory_level": "lots",
         "reorder_point": 3},
    ]  # fmt: skip
    return {"outlets": [outlet], "customers": [customer], "products": [product], "sales": sales, "inventory": inventory}


def test_business_views_equal_the_source_before_and_after_changes(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, api_version: str
) -> None:
    """In each API version: the views read typed columns, so the figures computed from the 2.0
    shape of the records must come out of the dated shape too."""
    # First import: every row of the three views equals the figures from the source records.
    assert run_dag().state == "success"
    state = simulator.state()
    assert_business_views_match(db, schema, state)
    days = expected_daily_transactions(state)
    assert len({o for _, o in days}) == 3
    assert all(sum(r[c] for r in days.values()) > 0 for c in ("completed_count", "voided_count", "open_count"))
    zones = {o["id"]: o["time_zone"] for o in state["outlets"]}
    shifted = [
        s
        for s in state["sales"]
        if _local_day(s["sale_date"], zones[s["outlet_id"]]) != _local_day(s["sale_date"], None)
    ]
    assert len(shifted) > 20  # local days matter: many sales fall on another day in UTC
    stock = expected_inventory_by_outlet(state)
    assert all(row["products_in_stock"] and row["stock_value_at_supply_price"] for row in stock.values())
    assert any(row["products_low_stock"] for row in stock.values())

    # Changes in the store: new, voided and edited sales, price and stock changes, deletions
    # (an outlet too), stock rows gone from the listing, and records with odd values.
    simulator.mutate(
        seed=11,
        update={"products": 8, "inventory": 12, "outlets": 1, "customers": 3},
        delete={"products": 3, "customers": 3, "outlets": 1},
        new={"sales": 25, "customers": 6, "products": 2},
        void_sales=5,
        edit_sales=4,
        remove={"inventory": 2},
    )
    odd = oddities(simulator.state())
    for resource, records in odd.items():
        simulator.inject(resource, records)
    state = simulator.state()
    assert run_dag().state == "success"
    # 2.0's inventory has no delete feed: a full refresh of it marks the removed rows deleted
    # (2026-07's feed already said so; the refresh then changes nothing).
    assert run_dag(entities=["inventory"], full_refresh=True).state == "success"
    assert_business_views_match(db, schema, state)

    assert sum(1 for o in state["outlets"] if o.get("deleted_at")) == 1
    got = db.execute(
        "SELECT sale_date, time_zone, sales_count, completed_count, open_count, completed_revenue,"
        f" average_sale_value, items_sold FROM \"{schema}\".daily_transactions_by_outlet WHERE outlet_id = 'odd-outlet'"
    ).fetchall()
    assert len(got) == 1
    day, zone, n, completed, open_, revenue, average, items = got[0]
    assert (str(day), zone, n, completed, open_) == ("2024-06-30", "UTC", 3, 2, 1)
    assert (float(revenue), float(average)) == (10.5, 10.5)
    assert items == sum(li["quantity"] for li in odd["sales"][1]["line_items"])
    month = db.execute(
        f"SELECT first_purchase_customers FROM \"{schema}\".customer_growth_by_month WHERE month = '2024-06-01'"
    ).fetchone()
    assert month is not None and month[0] >= 1  # the customer without a created_at still bought


def test_migrate_adds_the_business_views_to_an_existing_database(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    warehouse: Any,
    airflow_db: None,
    tmp_path: Path,
) -> None:
    # A database migrated before the business views existed.
    older = tmp_path / "views"
    older.mkdir()
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        if path.stem.split("_", 1)[1] not in BUSINESS_VIEWS:
            shutil.copy(path, older / path.name)
    created = apply_migrations(warehouse, views_dir=older)["views"]
    assert created and not set(created) & set(BUSINESS_VIEWS)
    assert not views_in(db, schema) & set(BUSINESS_VIEWS)
    before = dict(db.execute(f'SELECT name, applied_at FROM "{schema}".schema_views').fetchall())

    # The DAG's migrate creates them (and only them), and they are right.
    assert run_dag().state == "success"
    assert set(BUSINESS_VIEWS) <= views_in(db, schema)
    applied = dict(db.execute(f'SELECT name, applied_at FROM "{schema}".schema_views').fetchall())
    assert {n: applied[n] for n in before} == before  # the others were not re-created
    assert {n.split("_", 1)[1] for n in set(applied) - set(before)} == set(BUSINESS_VIEWS)
    assert_business_views_match(db, schema, simulator.state())

    # A second run adds nothing: no view is re-created.
    assert run_dag().state == "success"
    assert dict(db.execute(f'SELECT name, applied_at FROM "{schema}".schema_views').fetchall()) == applied
    assert apply_migrations(warehouse)["views"] == []


def test_the_views_are_empty_on_an_empty_store(migrated: Any, schema: str) -> None:
    for view in BUSINESS_VIEWS:
        assert migrated.execute(f'SELECT count(*) FROM "{schema}"."{view}"').fetchone()[0] == 0, view
