"""Migrations and the page writer against a real PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.mapping import prepare_page
from lightspeed_pipeline.warehouse.migrations import MigrationError, apply_migrations
from lightspeed_pipeline.warehouse.pages import PageWriter
from lightspeed_pipeline.warehouse.reconciliation import mark_vanished

PG_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "numeric": "numeric",
    "boolean": "boolean",
    "timestamptz": "timestamp with time zone",
    "integer": "integer",
    "jsonb": "jsonb",
}


def columns(db: Any, schema: str, table: str) -> dict[str, str]:
    rows = db.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, table),
    ).fetchall()
    return dict(rows)


def test_migrations_create_every_table_with_registry_columns(migrated: Any, schema: str) -> None:
    for e in reg.ENTITIES:
        cols = columns(migrated, schema, e.table)
        expected = {
            "id": "text",
            "version": "bigint",
            "created_at": "timestamptz",
            "updated_at": "timestamptz",
            "deleted_at": "timestamptz",
            "data": "jsonb",
            "synced_at": "timestamptz",
        }
        expected.update({c.name: c.type for c in e.columns})
        for name, type_ in expected.items():
            assert cols.get(name) == PG_TYPES[type_], (e.table, name, cols.get(name))
        for child in e.children:
            ccols = columns(migrated, schema, child.table)
            for c in child.columns:
                assert ccols.get(c.name) == PG_TYPES[c.type], (child.table, c.name)
            assert ccols[child.parent_key] == "text" and ccols["position"] == "integer"
    states = dict(migrated.execute(f'SELECT entity_type, status FROM "{schema}".sync_state').fetchall())
    assert states == {name: "never_synced" for name in reg.NAMES}


def test_interface_indexes_exist(migrated: Any, schema: str) -> None:
    rows = migrated.execute(
        "SELECT t.relname, a.attname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] WHERE n.nspname = %s",
        (schema,),
    ).fetchall()
    leading = set(rows)
    for table, column in [
        ("lightspeed_products", "sku"),
        ("lightspeed_customers", "email"),
        ("lightspeed_sales", "invoice_number"),
        ("lightspeed_sales", "sale_date"),
        ("lightspeed_sales", "updated_at"),
        ("lightspeed_sale_line_items", "sale_id"),
        ("lightspeed_sale_line_items", "product_id"),
        ("lightspeed_inventory", "product_id"),
        ("lightspeed_inventory", "outlet_id"),
        ("sync_log", "timestamp"),
    ]:
        assert (table, column) in leading, (table, column)


def test_migrations_are_idempotent_and_immutable(migrated: Any, warehouse: Any, tmp_path: Any) -> None:
    again = apply_migrations(warehouse)
    assert again["applied"] == [] and again["seeded"] == 0
    (tmp_path / "0001_initial.sql").write_text("-- edited\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        apply_migrations(warehouse, migrations_dir=tmp_path)


def write(writer: PageWriter, entity_name: str, records: list[Any], cursor: int | None = None) -> Any:
    entity = reg.get(entity_name)
    page = prepare_page(entity, records)
    return writer.write(entity, page, cursor=cursor if cursor is not None else page.max_version, after=0, run_id="t")


def test_upsert_is_version_guarded_and_replays_write_nothing(migrated: Any, warehouse: Any, schema: str) -> None:
    writer = PageWriter(warehouse)
    first = write(writer, "products", [{"id": "p1", "version": 10, "sku": "A"}, {"id": "p2", "version": 11}])
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    synced = migrated.execute(f'SELECT synced_at FROM "{schema}".lightspeed_products WHERE id = %s', ("p1",)).fetchone()
    replay = write(writer, "products", [{"id": "p1", "version": 10, "sku": "CHANGED"}, {"id": "p2", "version": 9}])
    assert (replay.inserted, replay.updated, replay.unchanged) == (0, 0, 2)
    row = migrated.execute(
        f'SELECT sku, version, synced_at FROM "{schema}".lightspeed_products WHERE id = %s', ("p1",)
    ).fetchone()
    assert row == ("A", 10, synced[0])
    newer = write(writer, "products", [{"id": "p1", "version": 12, "sku": "B", "deleted_at": "2024-01-01T00:00:00Z"}])
    assert (newer.updated, newer.deleted) == (1, 1)
    last = migrated.execute(
        f"SELECT last_version FROM \"{schema}\".sync_state WHERE entity_type = 'products'"
    ).fetchone()
    assert last == (12,)
    write(writer, "products", [], cursor=5)  # the cursor never moves back
    assert migrated.execute(
        f"SELECT last_version FROM \"{schema}\".sync_state WHERE entity_type = 'products'"
    ).fetchone() == (12,)


def test_audit_records_exactly_the_members_that_changed(migrated: Any, warehouse: Any, schema: str) -> None:
    """The update trigger's diff: typed members by value, unmapped members exactly, one side when absent."""
    writer = PageWriter(warehouse)
    base = {"id": "c1", "first_name": "Ava", "loyalty_balance": "12.50", "phone": "x", "note": "vip", "tags": [1]}
    other = {"id": "c2", "first_name": "Noah", "loyalty_balance": "oops", "extra": {"a": 1}}
    write(writer, "customers", [{**base, "version": 1}, {**other, "version": 1}])
    write(writer, "customers", [{**base, "version": 1}])  # a replay writes (and audits) nothing
    changed = {**base, "version": 2, "loyalty_balance": 12.5, "first_name": "Zoë", "tags": [1, 2], "new": None}
    del changed["phone"]
    write(writer, "customers", [changed, {**other, "version": 2, "loyalty_balance": "still bad", "extra": {"a": 1}}])
    rows = {
        (row_id, op): (old, new)
        for row_id, op, old, new in migrated.execute(
            f'SELECT row_id, operation, old_values, new_values FROM "{schema}".lightspeed_audit_log ORDER BY id'
        ).fetchall()
    }
    assert set(rows) == {("c1", "INSERT"), ("c2", "INSERT"), ("c1", "UPDATE"), ("c2", "UPDATE")}
    old, new = rows[("c1", "UPDATE")]
    # "12.50" -> 12.5 is the same typed value: not a change; note is unchanged and unmapped
    assert old == {"version": 1, "first_name": "Ava", "phone": "x", "tags": [1]}
    assert new == {"version": 2, "first_name": "Zoë", "tags": [1, 2], "new": None}
    # both balances are untypable (NULL columns): the raw members are compared instead
    assert rows[("c2", "UPDATE")] == ({"version": 1, "loyalty_balance": "oops"},
                                      {"version": 2, "loyalty_balance": "still bad"})  # fmt: skip


def test_newer_ids_names_exactly_what_the_upsert_would_write(migrated: Any, warehouse: Any) -> None:
    """The full-refresh pre-check: same condition as the upsert's filter, by id and version alone."""
    writer = PageWriter(warehouse)
    write(writer, "sales", [{"id": "s1", "version": 5}, {"id": "s3"}])
    sales = reg.get("sales")
    assert writer.newer_ids(sales, ["s1", "s2", "s3"], [5, 6, 9]) == {"s2", "s3"}  # s3 has no stored version
    assert writer.newer_ids(sales, ["s1", "s2"], [6, None]) == {"s1", "s2"}
    assert writer.newer_ids(sales, ["s1"], [4]) == set()


def test_sale_children_are_replaced_to_match_the_sale(migrated: Any, warehouse: Any, schema: str) -> None:
    writer = PageWriter(warehouse)
    sale = {
        "id": "s1",
        "version": 1,
        "status": "CLOSED",
        "line_items": [{"id": "a", "product_id": "p1"}, {"id": "b", "product_id": "p2"}],
        "payments": [{"id": "pay", "retailer_payment_type_id": "pt", "amount": 5}],
    }
    write(writer, "sales", [sale])
    voided = {
        **sale,
        "version": 2,
        "status": "VOIDED",
        "line_items": [{"id": "a", "product_id": "p1", "status": "VOIDED"}],
        "payments": [],
    }
    counts = write(writer, "sales", [voided])
    assert counts.child_rows == 1
    items = migrated.execute(f'SELECT id, status FROM "{schema}".lightspeed_sale_line_items').fetchall()
    assert items == [("a", "VOIDED")]
    assert migrated.execute(f'SELECT count(*) FROM "{schema}".lightspeed_sale_payments').fetchone() == (0,)
    # An older replay of the sale leaves its children alone.
    write(writer, "sales", [sale])
    assert migrated.execute(f'SELECT count(*) FROM "{schema}".lightspeed_sale_line_items').fetchone() == (1,)


def test_hostile_strings_are_stored(migrated: Any, warehouse: Any, schema: str) -> None:
    writer = PageWriter(warehouse)
    rec = {
        "id": "c1",
        "version": 1,
        "first_name": "nul\x00byte",
        "last_name": "lone \udc00",
        "email": "😀@x.io",
        "note": "x" * 100_000,
        "loyalty_balance": "12.50",
        "unknown_field": {"nested": [1, None]},
    }
    counts = write(writer, "customers", [rec, "garbage"])
    assert (counts.inserted, counts.rejected) == (1, 1)
    assert counts.escaped == 4  # two strings, each in its typed column and in data
    row = migrated.execute(
        f"SELECT first_name, last_name, email, loyalty_balance, length(data->>'note')"
        f' FROM "{schema}".lightspeed_customers'
    ).fetchone()
    assert row[0] == "nul\\u0000byte" and row[1] == "lone \\udc00" and row[2] == "😀@x.io"
    assert str(row[3]) == "12.50" and row[4] == 100_000
    rej = migrated.execute(f'SELECT entity_type, reason, payload FROM "{schema}".sync_rejects').fetchall()
    assert rej == [("customers", "not a JSON object", "garbage")]


def test_categories_missing_from_a_complete_read_are_marked_deleted(migrated: Any, warehouse: Any, schema: str) -> None:
    writer = PageWriter(warehouse)
    entity = reg.get("product_categories")
    write(writer, "product_categories", [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}])
    again = write(writer, "product_categories", [{"id": "a", "name": "A"}])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    assert mark_vanished(warehouse, entity, max_version=None, unversioned_ids=["a"]) == 1
    rows = dict(migrated.execute(f'SELECT id, deleted_at IS NOT NULL FROM "{schema}".lightspeed_product_categories'))
    assert rows == {"a": False, "b": True}
    revived = write(writer, "product_categories", [{"id": "b", "name": "B"}])
    assert revived.updated == 1
    assert migrated.execute(
        f'SELECT count(*) FROM "{schema}".lightspeed_product_categories WHERE deleted_at IS NOT NULL'
    ).fetchone() == (0,)


def test_both_sale_shapes_land_in_the_same_columns_and_an_unknown_shape_warns(
    migrated: Any, warehouse: Any, schema: str
) -> None:
    """The tolerant reader against the database: a sale as 2.0 sends it and as 2026-07 does fill the
    same typed columns (and children); a record in neither shape is stored, counted by validation,
    and makes sync_health say WARNING."""
    from lightspeed_pipeline.validate import validate_entity

    from tests.unit.test_mapping import SALE_2_0, SALE_2026_07

    writer = PageWriter(warehouse)
    referenced = {"outlets": "o1", "registers": "r1", "users": "u1", "customers": "c1", "products": "p1",
                  "taxes": "t1", "payment_types": "rpt1"}  # fmt: skip  # no orphans: the health is the shapes'
    for name, rid in referenced.items():
        write(writer, name, [{"id": rid, "version": 1}])
    write(writer, "sales", [SALE_2_0])
    second = {
        **SALE_2026_07,
        "id": "s2",
        "invoice_number": "INV-2",  # its own invoice and child ids: no duplicates
        "line_items": [{**li, "id": "l2"} for li in SALE_2026_07["line_items"]],
        "payments": [{**pay, "id": "pay2"} for pay in SALE_2026_07["payments"]],
    }
    write(writer, "sales", [second])
    sales, children = reg.get("sales"), reg.get("sales").children
    same = [c.name for c in sales.columns if c.name not in ("invoice_number", "total_price_incl_tax")]
    rows = dict(
        (r[0], r[1:])
        for r in migrated.execute(
            f'SELECT id, data_shape, version, {", ".join(same)} FROM "{schema}".lightspeed_sales ORDER BY id'
        ).fetchall()
    )
    assert rows["s1"][0] == "2.0" and rows["s2"][0] == "2026-07"
    assert rows["s1"][1:] == rows["s2"][1:] and rows["s2"][1] == 41
    for child in children:
        names = ", ".join(c.name for c in child.columns if c.name != "id")
        per_sale = {
            sid: migrated.execute(
                f'SELECT {names} FROM "{schema}"."{child.table}" WHERE sale_id = %s ORDER BY position', (sid,)
            ).fetchall()
            for sid in ("s1", "s2")
        }
        assert per_sale["s1"] == per_sale["s2"] and per_sale["s1"], child.name
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() WHERE entity_type = 'sales'"
    )
    assert validate_entity(sales, warehouse).unknown_shape_count == 0
    health = (
        "SELECT sync_status, health_reason, unknown_shape_count"
        f" FROM \"{schema}\".sync_health WHERE entity_type = 'sales'"
    )
    assert migrated.execute(health).fetchone() == ("OK", None, 0)

    write(writer, "sales", [{"id": "s3", "_meta": {"v": 43}, "lines": []}], cursor=43)
    assert validate_entity(sales, warehouse).unknown_shape_count == 1
    status, reason, unknown = migrated.execute(health).fetchone()
    assert (status, unknown) == ("WARNING", 1) and "1 rows in no known record shape" in reason
    assert migrated.execute(
        f"SELECT data, data_shape FROM \"{schema}\".lightspeed_sales WHERE id = 's3'"
    ).fetchone() == ({"id": "s3", "_meta": {"v": 43}, "lines": []}, "unknown")


def test_migration_0006_classifies_the_rows_already_stored(db: Any, warehouse: Any, schema: str, tmp_path: Any) -> None:
    """A database filled before record shapes were tracked: the migration gives every stored sale
    and inventory row its shape and fills the new columns its data can fill."""
    import json
    import shutil

    from lightspeed_pipeline.warehouse.migrations import MIGRATIONS_DIR

    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if path.name < "0006":
            shutil.copy(path, before / path.name)
    (tmp_path / "no-views").mkdir()  # today's views read the columns this migration adds
    apply_migrations(warehouse, migrations_dir=before, views_dir=tmp_path / "no-views")
    from tests.unit.test_mapping import SALE_2_0, SALE_2026_07

    stored = {"s1": SALE_2_0, "s2": {**SALE_2026_07, "id": "s2"}, "s3": {"id": "s3", "odd": True}}
    for sid, data in stored.items():
        db.execute(
            f'INSERT INTO "{schema}".lightspeed_sales (id, data) VALUES (%s, %s::jsonb)', (sid, json.dumps(data))
        )
    db.execute(
        f'INSERT INTO "{schema}".lightspeed_inventory (id, data) VALUES (%s, %s::jsonb), (%s, %s::jsonb)',
        ("i1", json.dumps({"id": "i1", "inventory_level": 3}), "i2",
         json.dumps({"id": "i2", "current_inventory_level": 3, "reorder_target": 9})),
    )  # fmt: skip
    assert apply_migrations(warehouse)["applied"][0] == "0006_record_shapes.sql"
    sales = db.execute(
        f'SELECT id, data_shape, return_for, total_price_incl_tax FROM "{schema}".lightspeed_sales ORDER BY id'
    ).fetchall()
    assert [(r[0], r[1], r[2], None if r[3] is None else float(r[3])) for r in sales] == [
        ("s1", "2.0", "s0", None),
        ("s2", "2026-07", "s0", 23.0),
        ("s3", "unknown", None, None),
    ]
    inventory = db.execute(
        f'SELECT id, data_shape, reorder_target FROM "{schema}".lightspeed_inventory ORDER BY id'
    ).fetchall()
    assert [(r[0], r[1], None if r[2] is None else float(r[2])) for r in inventory] == [
        ("i1", "2.0", None),
        ("i2", "2026-07", 9.0),
    ]
    # The migration's markers are the registry's: the reader classifies the same records alike.
    from lightspeed_pipeline.mapping import shape_of

    assert [shape_of(reg.get("sales"), d) for d in stored.values()] == [r[1] for r in sales]
