"""The sync-health page inside the Airflow API server: protected, and showing real data."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.warehouse.history import measure_history, measure_stock_value


@pytest.fixture
def client(migrated: Any, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Any:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pg_dsn)
    return TestClient(create_app())


def token(role: str = "viewer") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="someone", role=role))


def test_anonymous_and_forged_requests_are_refused(client: Any) -> None:
    for path in ("/lightspeed/health", "/lightspeed/api/health"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403


def test_no_unguarded_route_in_the_plugin(client: Any) -> None:
    """FastAPI's docs and schema routes bypass app dependencies: they are switched off, and
    every route the plugin still has needs a login."""
    from lightspeed_pipeline.ui import create_app

    for path in (
        "/lightspeed/docs",
        "/lightspeed/redoc",
        "/lightspeed/openapi.json",
        "/lightspeed/docs/oauth2-redirect",
    ):
        for headers in ({}, {"Authorization": f"Bearer {token()}"}):
            assert client.get(path, headers=headers).status_code == 404, path
    routes = [r.path for r in create_app().routes]
    assert sorted(routes) == ["/api/health", "/health", "/rerun"]
    for path in routes:
        assert client.get(f"/lightspeed{path}").status_code == 401


def test_health_json_and_page_for_a_logged_in_user(client: Any, migrated: Any, schema: str) -> None:
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() - interval '3 hours',"
        " last_version = 42 WHERE entity_type = 'sales'"
    )
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() WHERE entity_type = 'brands'"
    )
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() - interval '26 hours'"
        " WHERE entity_type = 'taxes'"
    )
    resp = client.get("/lightspeed/api/health", headers={"Authorization": f"Bearer {token()}"})
    assert resp.status_code == 200
    body = resp.json()
    health = {e["entity_type"]: e["sync_status"] for e in body["entities"]}
    assert set(health) == set(reg.NAMES)
    # Daily schedule (the default): 3 h since the last success is OK, 26 h is ALERT.
    assert health["brands"] == "OK" and health["sales"] == "OK" and health["customers"] == "ALERT"
    assert health["taxes"] == "ALERT"
    assert body["overall"] == "ALERT" and body["last_run"] is None
    page = client.get("/lightspeed/health", cookies={"_token": token()})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Lightspeed sync health" in page.text and "never synced successfully" in page.text and "sales" in page.text


def test_business_strip_counts_each_outlets_local_today_and_yesterday(
    client: Any, migrated: Any, warehouse: Any, schema: str
) -> None:
    """Today's and yesterday's completed sales per outlet in its own zone, low stock, new customers."""
    s = f'"{schema}"'
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_outlets (id, name, time_zone, data) VALUES"
        " ('akl', 'Auckland', 'Pacific/Auckland', '{}'), ('nyc', 'New York', 'America/New_York', '{}'),"
        " ('odd', 'Odd zone', 'Mars/Olympus', '{}')"
    )
    # Per outlet: sales stamped at local noon today (2 completed, 1 voided) and yesterday (1).
    for outlet, zone in (("akl", "Pacific/Auckland"), ("nyc", "America/New_York"), ("odd", "UTC")):
        for n, (days, status, total) in enumerate(
            [(0, "CLOSED", 10.5), (0, "LAYBY_CLOSED", 4.5), (0, "VOIDED", 99), (1, "CLOSED", 7), (2, "CLOSED", 1)]
        ):
            migrated.execute(
                f"INSERT INTO {s}.lightspeed_sales (id, outlet_id, status, total_price, sale_date, data)"
                " VALUES (%s, %s, %s, %s, (date_trunc('day', now() AT TIME ZONE %s) - make_interval(days => %s)"
                " + interval '12 hours') AT TIME ZONE %s, '{}')",
                (f"{outlet}-{n}", outlet, status, total, zone, days, zone),
            )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_customers (id, created_at, data) VALUES ('c1', now(), '{{}}'),"
        " ('c2', now(), '{}'), ('c3', now() - interval '70 days', '{}')"
    )
    # Money owed and on order: two cards (one voided), a store credit, an open order of 3 at 2.50
    # of which 1 arrived (5.00 outstanding, due yesterday: overdue) and a received one.
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_gift_cards (id, status, balance, data) VALUES"
        " ('g1', 'ACTIVE', 30.5, '{}'), ('g2', 'VOIDED', 0, '{}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_gift_card_transactions (gift_card_id, position, type, amount, created_at, data)"
        " VALUES ('g1', 0, 'ACTIVATION', 40, now(), '{}'), ('g1', 1, 'REDEEMING', -9.5, now(), '{}'),"
        " ('g2', 0, 'ACTIVATION', 10, now(), '{}'), ('g2', 1, 'VOIDING', -10, now(), '{}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_store_credits (id, customer_id, balance, data) VALUES ('c1', 'c1', 12, '{{}}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_store_credit_transactions (customer_id, position, type, amount, created_at, data)"
        " VALUES ('c1', 0, 'ISSUE', 12, now(), '{}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_purchase_orders (id, status, due_at, data) VALUES"
        " ('po1', 'SENT', now() - interval '1 day', '{}'), ('po2', 'RECEIVED', now(), '{}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_purchase_order_line_items (id, purchase_order_id, quantity, cost_price, data)"
        " VALUES ('l1', 'po1', 3, 2.5, '{}'), ('l2', 'po2', 8, 1, '{}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_purchase_order_deliveries (id, purchase_order_id, status, data)"
        " VALUES ('d1', 'po1', 'RECEIVED', '{}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_purchase_order_delivery_line_items"
        " (id, purchase_order_delivery_id, purchase_order_line_item_id, received_quantity, data)"
        " VALUES ('dl1', 'd1', 'l1', 1, '{}')"
    )
    # Stock over the last days (history mode): 5 units at 2.00 from 3 days ago, 3 from yesterday.
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_products (id, version, supply_price, data) VALUES ('p1', 1, 2, '{{}}')"
    )
    migrated.execute(
        f"INSERT INTO {s}.lightspeed_inventory (id, version, product_id, outlet_id, current_amount, updated_at,"
        " synced_at, data) VALUES ('i1', 1, 'p1', 'nyc', 5, now() - interval '3 days', now(), '{}')"
    )
    migrated.execute(
        f"UPDATE {s}.lightspeed_inventory SET version = 2, current_amount = 3, updated_at = now() - interval '1 day'"
    )
    measure_history(warehouse)
    measure_stock_value(warehouse)  # what finalize does at the end of each run
    body = client.get("/lightspeed/api/health", headers={"Authorization": f"Bearer {token()}"}).json()
    business = body["business"]
    nyc_today = migrated.execute("SELECT (now() AT TIME ZONE 'America/New_York')::date").fetchone()[0]
    assert [(d["day"], float(d["value"])) for d in business["stock_value"]] == [
        (str(nyc_today - timedelta(days=n)), value) for n, value in ((3, 10), (2, 10), (1, 6), (0, 6))
    ]
    kept = {e["entity_type"]: e["versions"] for e in body["entities"]}
    assert kept["inventory"]["enabled"] and kept["inventory"]["versions_rows"] == 1
    assert kept["brands"] is None  # never switched on
    by_outlet = {o["outlet_id"]: o for o in business["outlets"]}
    for outlet in ("akl", "nyc", "odd"):  # an unknown zone counts in UTC, as the views do
        o = by_outlet[outlet]
        assert (o["today_sales"], o["today_revenue"], o["yesterday_sales"], o["yesterday_revenue"]) == (2, 15, 1, 7)
    assert by_outlet["odd"]["time_zone"] == "UTC"
    assert business["new_customers_this_month"] == 2  # c3 joined 70 days ago
    assert business["low_stock_count"] == 0
    assert (business["gift_card_liability"], business["store_credit_liability"]) == (30.5, 12)
    assert (business["open_purchase_order_value"], business["open_purchase_orders"]) == (5, 1)
    assert business["overdue_purchase_orders"] == 1
    assert body["time_zone"] == "America/New_York"  # one outlet per known zone: the tie goes by name
    page = client.get("/lightspeed/health", cookies={"_token": token()}).text
    assert "Auckland" in page and "New York" in page
    assert "30.50" in page and "5.00" in page and "1 open purchase orders at cost" in page
    assert "Stock value" in page and "1 past · since " in page
