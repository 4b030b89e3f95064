"""What a data team relies on without checking: honest health, deletions for every entity,
one store per database, the vendor's own payloads, and errors that fail fast.

The real DAG (dag.test()) against a real PostgreSQL and the simulator over HTTP.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.mapping import prepare_page
from lightspeed_pipeline.records import keys_under, version_of
from lightspeed_pipeline.warehouse.migrations import VIEWS_DIR

from devtools.simproc import SimulatorProcess
from tests.conftest import FAST_RETRIES, TOKEN
from tests.integration.helpers import (
    _same_json,
    assert_database_equals_source,
    entity_log,
    requests_by_resource,
    run_dag,
    snapshot,
    sync_state,
)
from tests.integration.test_dag_sync import noop_requests

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NO_FEED = (
    "users", "taxes", "payment_types", "brands", "suppliers", "product_types", "price_books", "inventory",
    "promotions", "gift_cards", "store_credits",
)  # fmt: skip


def health(db: Any, schema: str) -> dict[str, tuple[str, str | None]]:
    """sync_health by entity, less the entities the API version in use does not list (gift cards
    in 2.0: DISABLED with that reason, see test_dag_sync)."""
    rows = db.execute(
        f'SELECT entity_type, sync_status, health_reason FROM "{schema}".sync_health'
        " WHERE health_reason IS NULL OR health_reason NOT LIKE 'not listed by API%%'"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture
def ui(connections: None, airflow_db: None) -> Any:
    """The Airflow API server app (with the plugin) and a logged-in viewer's headers."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    client = TestClient(create_app())
    jwt = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="analyst", role="viewer"))
    return client, {"Authorization": f"Bearer {jwt}"}


# -- 1. health that tells the truth ------------------------------------------------------


def test_a_failed_entity_is_alert_until_a_successful_rerun(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, ui: Any, api_version: str
) -> None:
    client, auth = ui
    assert run_dag().state == "success"
    assert {s for s, _ in health(db, schema).values()} == {"OK"}
    # products fails (403: fails at once); inventory and sales depend on it and are not run.
    simulator.faults(resources={"products": 403})
    run = run_dag()
    assert run.state == "failed"
    now = health(db, schema)
    assert now["products"] == ("ALERT", "latest sync failed")
    independent = {e.name for e in reg.ENTITIES if e.available(api_version)} - {"products", "inventory", "sales"}
    assert {now[name][0] for name in independent} == {"OK"}
    body = client.get("/lightspeed/api/health", headers=auth).json()
    assert body["overall"] == "ALERT"
    by_name = {e["entity_type"]: e for e in body["entities"]}
    assert by_name["products"]["sync_status"] == "ALERT" and by_name["products"]["status"] == "failed"
    assert "HTTP 403" in by_name["products"]["error_message"]
    assert "needs the `products:read` scope" in by_name["products"]["error_message"]  # names the missing scope
    assert [f["resolved"] for f in body["recent_failures"] if f["entity"] == "products"] == [False]
    page = client.get("/lightspeed/health", headers=auth).text
    assert "latest sync failed" in page and "resolved by a later sync" not in page

    # The rerun of what failed (what clearing the products group with downstream does).
    simulator.faults()
    assert run_dag(entities=["products", "inventory", "sales"]).state == "success"
    assert {s for s, _ in health(db, schema).values()} == {"OK"}
    body = client.get("/lightspeed/api/health", headers=auth).json()
    assert body["overall"] == "OK"
    assert [f["resolved"] for f in body["recent_failures"] if f["entity"] == "products"] == [True]
    assert "resolved by a later sync" in client.get("/lightspeed/health", headers=auth).text


def test_health_thresholds_follow_the_schedule_and_validation(migrated: Any, schema: str, warehouse: Any) -> None:
    from lightspeed_pipeline.settings import schedule_interval_s
    from lightspeed_pipeline.warehouse.migrations import apply_migrations

    db = migrated

    def status_after(hours: float, **extra: Any) -> str:
        values = {"status": "success", **extra}
        sets = ", ".join(f"{k} = %({k})s" for k in values)
        db.execute(
            f'UPDATE "{schema}".sync_state SET last_sync_time = now() - make_interval(secs => %(s)s), {sets}'
            " WHERE entity_type = 'brands'",
            {"s": hours * 3600, **values},
        )
        return health(db, schema)["brands"][0]

    # Daily (the default): OK all day, ALERT after 25 h; never a meaningless WARNING at 3 h.
    assert status_after(3) == "OK" and status_after(24.5) == "OK" and status_after(25.5) == "ALERT"
    # Hourly: WARNING after 2 h, as in the seed.
    apply_migrations(warehouse, run_settings={"schedule_interval_s": schedule_interval_s("@hourly")})
    assert status_after(1.5) == "OK" and status_after(2.5) == "WARNING" and status_after(26) == "ALERT"
    # A failed latest sync is ALERT however recent the last success; a standing warning is WARNING.
    assert status_after(0.1, status="failed") == "ALERT"
    assert status_after(0.1, warning_message="listing was empty") == "WARNING"
    db.execute(f"UPDATE \"{schema}\".sync_state SET warning_message = NULL WHERE entity_type = 'brands'")
    # The latest validation found orphans: WARNING; a clean one after it: OK.
    for orphans in (3, 0):
        db.execute(
            f'INSERT INTO "{schema}".sync_validation (entity_type, row_count, deleted_count, orphan_count,'
            " duplicate_count, details) VALUES ('brands', 10, 0, %s, 0, '{}')",
            (orphans,),
        )
        assert status_after(0.1) == ("WARNING" if orphans else "OK")


# -- 2. deletions for the seven entities without a delete feed ------------------------------


def test_records_removed_in_the_store_are_marked_deleted_and_revived(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, api_version: str
) -> None:
    """2.0 lists the reference lists without a delete feed in full every run, and inventory in full
    on its cadence, to find removals; 2026-07 reports the removals of brands, suppliers, product
    types, payment types and inventory in their delete feeds (users and taxes are still listed)."""
    entities = {e.name: e.at(api_version) for e in reg.ENTITIES if e.available(api_version)}
    no_feed = [name for name in NO_FEED if name in entities]
    small = [name for name, e in entities.items() if e.deletions == "every_run"]
    fed = [name for name in no_feed if entities[name].deletions == "feed"]  # removals arrive as deletions
    assert run_dag().state == "success"
    removed = simulator.mutate(remove={name: 1 for name in no_feed} | {"product_categories": 1})["changed"]
    state = simulator.state(api_version)
    simulator.reset_stats()
    run = run_dag()
    assert run.state == "success"
    assert_database_equals_source(db, schema, state, only=(*small, *fed, "product_categories"), api_version=api_version)
    logged = entity_log(db, schema, run.run_id)
    assert {name: logged[name]["rows_deleted"] for name in (*small, *fed)} == {name: 1 for name in (*small, *fed)}
    gone_inventory = removed["inventory"][0]
    live = db.execute(f'SELECT deleted_at FROM "{schema}".lightspeed_inventory WHERE id = %s', (gone_inventory,))
    if "inventory" in fed:  # its delete feed said so
        assert live.fetchone()[0] is not None
        assert_database_equals_source(db, schema, state, api_version=api_version)
    else:  # no delete feed and big: an ordinary run is incremental, a full refresh reconciles it.
        assert live.fetchone()[0] is None
        run = run_dag(entities=["inventory"], full_refresh=True)
        assert run.state == "success"
        assert_database_equals_source(db, schema, state, api_version=api_version)
        assert entity_log(db, schema, run.run_id)["inventory"]["rows_deleted"] == 1

    # Nothing changed: nothing is written, the small ones cost 2 requests, every other entity 1.
    before = snapshot(db, schema)
    simulator.reset_stats()
    assert run_dag().state == "success"
    assert snapshot(db, schema) == before
    assert simulator.stats()["by_resource"] == noop_requests(api_version, simulator.state(api_version))

    # A record that comes back is live again; inventory, the price book prices and consignments,
    # on their weekly cadence, reconcile by themselves (2026-07's inventory: its feed says so at
    # once), and a consignment gone takes its products with it.
    changed = simulator.mutate(
        restore={"brands": removed["brands"]}, remove={"inventory": 2, "price_book_products": 1, "consignments": 1}
    )["changed"]
    db.execute(
        f"UPDATE \"{schema}\".sync_state SET last_reconciled_at = now() - interval '8 days'"
        " WHERE entity_type IN ('inventory', 'price_book_products', 'consignments')"
    )
    state = simulator.state(api_version)
    lines = [r for r in state["consignment_products"] if r["_parent"] in changed["consignments"]]
    run = run_dag()
    assert run.state == "success"
    assert_database_equals_source(db, schema, state, api_version=api_version)
    logged = entity_log(db, schema, run.run_id)
    assert logged["inventory"]["rows_deleted"] == 2
    assert logged["price_book_products"]["rows_deleted"] == 1
    assert (logged["consignments"]["rows_deleted"], logged["consignment_products"]["rows_deleted"]) == (1, len(lines))
    assert lines and logged["consignment_products"]["requests"] == 0  # no consignment moved
    assert entity_log(db, schema, run.run_id)["brands"]["rows_updated"] == 1  # revived
    reconciled = db.execute(
        f"SELECT last_reconciled_at > now() - interval '1 hour' FROM \"{schema}\".sync_state"
        " WHERE entity_type = 'inventory'"
    ).fetchone()[0]
    assert reconciled is entities["inventory"].reconciled  # with a delete feed it never needs to be


def test_low_stock_ignores_deleted_products_outlets_and_inventory(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None
) -> None:
    assert run_dag().state == "success"
    low = db.execute(f'SELECT inventory_id, id, outlet_id FROM "{schema}".low_stock_products').fetchall()
    assert len(low) >= 3
    inv, product, outlet = low[0][0], low[1][1], low[2][2]
    db.execute(f'UPDATE "{schema}".lightspeed_inventory SET deleted_at = now() WHERE id = %s', (inv,))
    db.execute(f'UPDATE "{schema}".lightspeed_products SET deleted_at = now() WHERE id = %s', (product,))
    db.execute(f'UPDATE "{schema}".lightspeed_outlets SET deleted_at = now() WHERE id = %s', (outlet,))
    after = db.execute(f'SELECT inventory_id, id, outlet_id FROM "{schema}".low_stock_products').fetchall()
    assert after and all(i != inv and p != product and o != outlet for i, p, o in after)


# -- 3. an empty listing never deletes a table -------------------------------------------------


def test_an_empty_listing_marks_nothing_deleted_and_says_so(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, api_version: str
) -> None:
    # the categories and a list read in full every run in this version (2.0: brands; 2026-07: taxes)
    listed = ("product_categories", "brands" if reg.get("brands").at(api_version).reconciled else "taxes")
    assert run_dag().state == "success"
    before = snapshot(db, schema)
    simulator.faults(resources={name: "empty" for name in listed})
    run = run_dag()
    simulator.faults()
    assert run.state == "success"
    assert snapshot(db, schema) == before  # nothing marked deleted
    logged = entity_log(db, schema, run.run_id)
    for name in listed:
        assert logged[name]["rows_deleted"] == 0 and logged[name]["reconciled"] is False
        assert any("listing was empty" in w for w in logged[name]["warnings"]), logged[name]["warnings"]
        status, reason = health(db, schema)[name]
        assert status == "WARNING" and "listing was empty" in reason
    # The next complete listing clears the warning.
    assert run_dag().state == "success"
    assert {s for s, _ in health(db, schema).values()} == {"OK"}


def test_purchase_orders_without_the_costs_scope_land_without_costs_and_health_says_why(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token without `products:read:costs` gets purchase orders with their cost members empty:
    every row lands, the cost columns stay NULL, and sync_health says WARNING and why; granted, a
    full refresh of them fills the costs and clears the warning."""
    monkeypatch.setenv("LIGHTSPEED_API_VERSION", reg.NEWEST)
    orders = [e.name for e in reg.ENTITIES if e.cost_members]
    assert set(orders) == {
        "purchase_orders", "purchase_order_line_items", "purchase_order_deliveries",
        "purchase_order_delivery_line_items",
    }  # fmt: skip
    simulator.grants(costs=False)
    assert run_dag().state == "success"
    state = simulator.state(reg.NEWEST)
    now = health(db, schema)
    for name in orders:
        entity = reg.get(name)
        rows = db.execute(
            f"SELECT count(*), count(*) FILTER (WHERE {' IS NULL AND '.join(entity.cost_members)} IS NULL)"
            f' FROM "{schema}"."{entity.table}"'
        ).fetchone()
        assert rows[0] == len([r for r in state[name] if not r.get("_removed")]) > 0 and rows[1] == rows[0], name
        status, reason = now[name]
        assert status == "WARNING" and "products:read:costs" in (reason or ""), (name, now[name])
    assert {s for name, (s, _) in now.items() if name not in orders} == {"OK"}

    simulator.grants(costs=True)
    assert run_dag(entities=orders, full_refresh=True).state == "success"
    assert_database_equals_source(db, schema, simulator.state(reg.NEWEST), only=tuple(orders), api_version=reg.NEWEST)
    assert {s for s, _ in health(db, schema).values()} == {"OK"}


# -- 4. one store per database -----------------------------------------------------------------


def test_a_connection_moved_to_another_store_writes_nothing(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lightspeed_pipeline.identity import ensure_same_store
    from lightspeed_pipeline.sync import EntitySyncError, sync_entity
    from lightspeed_pipeline.warehouse import DbSettings, Warehouse

    assert run_dag().state == "success"
    mine = simulator.retailer()
    stored = db.execute(f'SELECT retailer_id, domain_prefix FROM "{schema}".sync_store').fetchone()
    assert stored == (mine["id"], "simulator")
    # A database from before the store check adopts its store without rewriting anything.
    db.execute(f'DELETE FROM "{schema}".sync_store')
    before = snapshot(db, schema)
    assert run_dag().state == "success"
    assert snapshot(db, schema) == before
    assert db.execute(f'SELECT retailer_id FROM "{schema}".sync_store').fetchone() == (mine["id"],)

    cursors = {n: v for n, (_, v, _) in sync_state(db, schema).items()}
    with SimulatorProcess(token=TOKEN, seed=7, store="otherstore") as other:
        theirs = other.retailer()
        monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", other.airflow_connection(**FAST_RETRIES))
        run = run_dag()
        assert run.state == "failed"
        assert set(requests_by_resource(other.stats())) == {"retailer"}  # asked who it is, read nothing
        assert snapshot(db, schema) == before
        states = sync_state(db, schema)
        assert {n: v for n, (_, v, _) in states.items()} == cursors
        error = states["sales"][2]
        assert theirs["id"] in error and "otherstore" in error and mine["id"] in error and "'simulator'" in error
        logged = db.execute(
            f"SELECT error_details FROM \"{schema}\".sync_log WHERE status = 'failed' AND entity_type = 'all'"
            " AND metadata->>'run_id' = %s",
            (run.run_id,),
        ).fetchone()[0]
        assert theirs["id"] in logged

        # An entity task cleared after the connection changed checks too, before reading a record.
        from lightspeed_pipeline.hooks import LightspeedHook

        with Warehouse.open(pg_dsn, DbSettings(schema=schema)) as warehouse:
            with LightspeedHook().get_conn() as client:
                with pytest.raises(EntitySyncError, match="store mismatch") as failure:
                    check = lambda: ensure_same_store(warehouse, client)  # noqa: E731
                    sync_entity(reg.get("brands"), client, warehouse, check_store=check)
            assert failure.value.permanent
        assert snapshot(db, schema) == before
        assert set(requests_by_resource(other.stats())) == {"retailer"}

        # Pointing it back works.
        monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES))
        assert run_dag().state == "success"
        assert {s for s, _ in health(db, schema).values()} == {"OK"}

        # Switching on purpose: the switch_store param names the new store; the copy starts over.
        monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", other.airflow_connection(**FAST_RETRIES))
        assert run_dag(switch_store="nosuchstore").state == "failed"
        assert snapshot(db, schema) == before
        assert run_dag(switch_store="otherstore").state == "success"
        assert_database_equals_source(db, schema, other.state())
        assert db.execute(f'SELECT domain_prefix FROM "{schema}".sync_store').fetchone() == ("otherstore",)


# -- 5. the vendor's own example payloads -------------------------------------------------------


def vendor_bodies(api_version: str) -> dict[str, Any]:
    """The vendor's example list bodies of `api_version`. The 2026-07 description has no sale list
    example: its sales body is the spec's only sale (the return action's, still in the 2.0 flat
    shape) beside a sale in the schema's 2026-07 shape, the one the unit tests use."""
    if api_version == reg.V2:
        return json.loads((FIXTURES / "vendor_examples.json").read_text())["bodies"]
    from tests.unit.test_mapping import SALE_2026_07

    fixture = json.loads((FIXTURES / "vendor_examples_2026_07.json").read_text())
    flat = fixture["sale_return_example"]
    nested = {**SALE_2026_07, "id": "s-2026-07", "invoice_number": "INV-2026-07", "return": None}
    nested["_metadata"] = {"version": flat["version"] + 1}
    return {**fixture["bodies"], "sales": {"data": [flat, nested], "version": {"min": None, "max": None}}}


def records_of(body: Any) -> list[Any]:
    return body if isinstance(body, list) else body["data"]


def test_the_vendors_example_payloads_sync_completely(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    api_version: str,
) -> None:
    """Each version's own examples, as published, land whole: `data` as sent, every typed column
    the reader can fill filled (whichever shape), and a second run rewrites nothing."""
    bodies = vendor_bodies(api_version)
    for resource, body in bodies.items():
        simulator.publish(resource, body)
    unversioned = [r for r, b in bodies.items() if not any(version_of(rec) is not None for rec in records_of(b))]
    assert {"brands", "suppliers", "product_types"} <= set(unversioned)
    run = run_dag()
    assert run.state == "success"
    state = simulator.state(api_version)
    for resource, body in bodies.items():
        entity = reg.get(resource).at(api_version)
        rows = {
            r[0]: r[1:] for r in db.execute(f'SELECT id, version, data FROM "{schema}"."{entity.table}"').fetchall()
        }
        # Listed under a parent (the same body for each of its parents: a consignment's products
        # carry no id, so they are keyed `<consignment>/<product>`, `/2`, `/3`: the example lists
        # one product three times), else one row per record.
        groups = [(None, records_of(body), None)]
        if isinstance(entity.paging, reg.ParentPaging):
            parents = [p["id"] for p in state[entity.paging.parent] if not p.get("_removed")]
            groups = [(p, records_of(body), keys_under(p, entity.paging.key, records_of(body), {})) for p in parents]
        want = {
            k: rec for _, recs, keys in groups for k, rec in zip(keys or [r["id"] for r in recs], recs, strict=True)
        }
        assert set(rows) == set(want) and want, resource
        for key, rec in want.items():
            version, data = rows[key]
            assert _same_json(data, rec), (resource, key)
            assert version == version_of(rec), (resource, key)
        # Every typed column a record has a member for is filled (from whichever shape it has).
        prepared = prepare_page(entity, [])
        for parent, recs, keys in groups:
            page = prepare_page(entity, recs, parent, keys)
            prepared.rows += page.rows
            prepared.untyped += page.untyped
        assert not prepared.untyped, (resource, prepared.untyped)
        for col in entity.columns:
            sent = {row["id"] for row in prepared.rows if row[col.name] is not None}
            filled = {
                r[0]
                for r in db.execute(
                    f'SELECT id FROM "{schema}"."{entity.table}" WHERE "{col.name}" IS NOT NULL'
                ).fetchall()
            }
            assert filled == sent, (resource, col.name)
            if col.sources == (col.name,) and col.name != getattr(entity.paging, "parent_key", None):
                assert sent == {k for k, rec in want.items() if rec.get(col.name) is not None}
    listed = tuple(r for r in bodies if not isinstance(reg.get(r).paging, reg.ParentPaging))  # checked above
    assert_database_equals_source(db, schema, state, only=listed, api_version=api_version)
    items = db.execute(f'SELECT count(*) FROM "{schema}".lightspeed_sale_line_items').fetchone()[0]
    assert items == sum(len(s["line_items"]) for s in records_of(bodies["sales"])) > 0
    if api_version == reg.NEWEST:  # the two published sale shapes filled the same columns alike
        same = "status, outlet_id, register_id, customer_id, user_id, total_tax, sale_date IS NOT NULL"
        shapes = dict(db.execute(f'SELECT data_shape, ROW({same})::text FROM "{schema}".lightspeed_sales').fetchall())
        assert set(shapes) == {"2.0", "2026-07"} and all("," in v for v in shapes.values())
    logged = entity_log(db, schema, run.run_id)
    assert all(not meta["untyped_values"] for meta in logged.values())
    for resource in unversioned:
        assert any("without any version" in w for w in logged[resource]["warnings"]), resource
    # A second run rewrites nothing.
    before = snapshot(db, schema)
    assert run_dag().state == "success"
    assert snapshot(db, schema) == before


# -- 6. errors no retry can fix fail at once; finishing cleanly ------------------------------


def test_permanent_errors_fail_at_once_and_a_failed_reference_list_blocks_nothing(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    warehouse: Any,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
    api_version: str,
) -> None:
    monkeypatch.setenv("LIGHTSPEED_TASK_RETRIES", "2")
    simulator.faults(resources={"brands": 403, "customer_groups": 404})
    run = run_dag()
    assert run.state == "failed"
    reqs = requests_by_resource(simulator.stats())
    assert len(reqs["brands"]) == 1 and len(reqs["customer_groups"]) == 1  # no retry of the task
    failures = db.execute(
        f"SELECT entity_type, count(*) FROM \"{schema}\".sync_log WHERE status = 'failed'"
        " AND action <> 'run_summary' AND metadata->>'run_id' = %s GROUP BY 1",
        (run.run_id,),
    ).fetchall()
    assert dict(failures) == {"brands": 1, "customer_groups": 1}
    states = sync_state(db, schema)
    # Soft dependants (products needs brands, customers needs customer_groups) still ran, and so
    # did sales, which needs products and customers.
    unlisted = reg.unavailable(api_version)  # gift cards in 2.0: never requested
    assert {n: s for n, (s, _, _) in states.items() if s != "success" and n not in unlisted} == {
        "brands": "failed",
        "customer_groups": "failed",
    }
    # The 403 names the scope and how to switch the entity off.
    assert "add brands to LIGHTSPEED_ENTITIES_DISABLED" in states["brands"][2]

    # The store does not grant brands: switched off (with outlets, which registers, inventory and
    # sales reference), they are not requested, show DISABLED (not ALERT, no stale alert), and
    # what references them still syncs without orphan warnings.
    monkeypatch.setenv("LIGHTSPEED_ENTITIES_DISABLED", "brands, outlets")
    simulator.faults(resources={"brands": 403})
    simulator.reset_stats()
    run = run_dag()
    assert run.state == "success"
    assert not {"brands", "outlets"} & set(simulator.stats()["by_resource"])
    tis = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert tis["brands.sync"] == tis["outlets.sync"] == "skipped" and tis["registers.sync"] == "success"
    now = health(db, schema)
    assert now["brands"][0] == now["outlets"][0] == "DISABLED"
    assert now["brands"][1].startswith("disabled by LIGHTSPEED_ENTITIES_DISABLED since ")
    assert {s for name, (s, _) in now.items() if name not in ("brands", "outlets")} == {"OK"}
    assert db.execute(f'SELECT count(*) FROM "{schema}".lightspeed_outlets').fetchone()[0] > 0  # kept
    from lightspeed_pipeline.warehouse.reads import ReadModel

    assert ReadModel(warehouse).stale() == []
    # Switched back on: both sync again and are OK.
    monkeypatch.delenv("LIGHTSPEED_ENTITIES_DISABLED")
    simulator.faults()
    assert run_dag().state == "success"
    assert {s for s, _ in health(db, schema).values()} == {"OK"}
    # A name the registry does not know fails the run at once, naming the variable.
    monkeypatch.setenv("LIGHTSPEED_ENTITIES_DISABLED", "brands,gift_vouchers")
    run = run_dag()
    assert run.state == "failed"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()}["migrate"] == "failed"
    monkeypatch.delenv("LIGHTSPEED_ENTITIES_DISABLED")

    # A rejected token fails the run in its first task, with one request.
    simulator.faults()
    simulator.reset_stats()
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_API",
        simulator.airflow_connection(**FAST_RETRIES).replace(TOKEN, "lsxs_pt_revoked"),
    )
    assert run_dag().state == "failed"
    assert simulator.stats()["by_resource"] == {"retailer": 1}
    # A connection the sync cannot use fails without a request.
    simulator.reset_stats()
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(page_size="many"))
    assert run_dag().state == "failed"
    assert simulator.stats()["by_resource"] == {}


def test_a_long_report_query_does_not_fail_the_run(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    pg_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Views are replaced only when their definition changed: a report holding a view never
    meets the run's DDL (which would wait, then fail on lock_timeout)."""
    assert run_dag().state == "success"
    applied = db.execute(f'SELECT name, applied_at FROM "{schema}".schema_views ORDER BY 1').fetchall()
    history = [f"history_{name}" for name in reg.VERSIONED_NAMES]  # lightspeed_<entity>_history
    assert [n for n, _ in applied] == sorted([p.stem for p in VIEWS_DIR.glob("*.sql")] + history)
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pg_dsn + ("&" if "?" in pg_dsn else "?") + "lock_timeout=1s")
    report = psycopg.connect(pg_dsn)
    try:
        for view in ("daily_sales_summary", "low_stock_products", "sync_health", "lightspeed_products_history"):
            report.execute(f'SELECT count(*) FROM "{schema}"."{view}"').fetchone()  # a transaction holds the views
        assert run_dag().state == "success"
    finally:
        report.rollback()
        report.close()
    assert db.execute(f'SELECT name, applied_at FROM "{schema}".schema_views ORDER BY 1').fetchall() == applied


def test_the_token_refresh_holds_its_row_lock_no_longer_than_lock_timeout(
    simulator: Any, pg_dsn: str, schema: str
) -> None:
    import time

    from lightspeed_pipeline.api.client import ClientConfig, LightspeedAPIError, LightspeedClient
    from lightspeed_pipeline.api.oauth import OAuthConfig
    from lightspeed_pipeline.warehouse import DbSettings, Warehouse
    from lightspeed_pipeline.warehouse.migrations import apply_migrations
    from lightspeed_pipeline.warehouse.tokens import PostgresTokenVault

    client_cfg = {"client_id": "ls-client-1", "client_secret": "ls-secret-0123456789abcdef"}
    settings = DbSettings(schema=schema, lock_timeout="1s")
    with Warehouse.open(pg_dsn, settings) as warehouse:
        apply_migrations(warehouse)
    simulator.setup_oauth(**client_cfg, refresh_token="rt-1", access_token=TOKEN, delay_s=4)
    oauth = OAuthConfig(**client_cfg, refresh_token="rt-1", token_url=f"{simulator.url}/api/1.0/token")
    simulator.expire_access_token()
    held: list[float] = []

    def refresher() -> None:
        with Warehouse.open(pg_dsn, settings) as vault_db:
            vault = PostgresTokenVault(vault_db, oauth, simulator.url)
            config = ClientConfig(base_url=simulator.url, token=TOKEN, oauth=oauth, max_retries=0)
            client = LightspeedClient(config, token_vault=vault)
            started = time.monotonic()
            # The exchange was bounded by 0.8 x lock_timeout (1 s), not left to the 4 s endpoint.
            with pytest.raises(LightspeedAPIError, match=r"within 0\.8 s \(bounded by the database's lock_timeout\)"):
                client.get_json("/brands", {}, what="brands")
            held.append(time.monotonic() - started)

    thread = threading.Thread(target=refresher)
    thread.start()
    thread.join(30)
    assert held and held[0] < 4.0, held  # it gave up before the endpoint's 4 s answer
    with psycopg.connect(pg_dsn, autocommit=True) as conn:  # and the row lock is free again
        conn.execute(f'SELECT 1 FROM "{schema}".lightspeed_oauth_tokens FOR UPDATE NOWAIT').fetchall()
