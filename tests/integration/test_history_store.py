"""History mode at the database: the page writer's real statements against PostgreSQL, on a
hand-built timeline whose every interval is known (the DAG over HTTP: test_history.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.mapping import prepare_page
from lightspeed_pipeline.warehouse.history import measure_history, prune_history
from lightspeed_pipeline.warehouse.migrations import apply_migrations
from lightspeed_pipeline.warehouse.pages import PageWriter
from lightspeed_pipeline.warehouse.reconciliation import mark_vanished


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


def write(writer: PageWriter, name: str, records: list[dict[str, Any]]) -> Any:
    page = prepare_page(reg.get(name), records)
    return writer.write(reg.get(name), page, cursor=page.max_version, after=0, run_id="t")


def product(version: int, updated: datetime, price: float, **more: Any) -> dict[str, Any]:
    return {"id": "p1", "version": version, "updated_at": updated.isoformat(), "price_excluding_tax": price, **more}


def history(db: Any, schema: str, name: str = "products") -> list[tuple[Any, ...]]:
    return db.execute(
        f'SELECT version, valid_from, valid_to, is_current, deleted, seeded FROM "{schema}".lightspeed_{name}_history'
        " ORDER BY valid_from, version"
    ).fetchall()


def synced_at(db: Any, schema: str, version: int) -> datetime:
    """When the sync wrote `version` of p1 (the versions table keeps each version's synced_at)."""
    return db.execute(
        f'SELECT synced_at FROM "{schema}".lightspeed_products_history WHERE id = %s AND version = %s', ("p1", version)
    ).fetchone()[0]


def as_of(db: Any, schema: str, ts: datetime) -> list[tuple[Any, ...]]:
    return db.execute(
        f'SELECT id, version, price_excluding_tax FROM "{schema}".lightspeed_products_as_of(%s)', (ts,)
    ).fetchall()


def versions_rows(db: Any, schema: str, name: str = "products") -> int:
    return db.execute(f'SELECT count(*) FROM "{schema}".lightspeed_{name}_versions').fetchone()[0]


def test_a_hand_built_timeline_gives_exact_intervals_and_as_of_answers(
    migrated: Any, warehouse: Any, schema: str
) -> None:
    writer = PageWriter(warehouse)
    write(writer, "products", [product(10, at(1), 10)])
    assert versions_rows(migrated, schema) == 0  # a first version is the current row: nothing copied
    write(writer, "products", [product(11, at(5), 12)])
    write(writer, "products", [product(11, at(5), 99)])  # a replayed version: written nowhere
    write(writer, "products", [product(12, at(3), 15)])  # updated_at not later: valid from the sync
    s12 = synced_at(migrated, schema, 12)
    write(writer, "products", [product(13, at(9), 15, deleted_at=at(9).isoformat())])  # 9 Jan < s12: the sync
    s13 = synced_at(migrated, schema, 13)
    assert history(migrated, schema) == [
        (10, at(1), at(5), False, False, False),
        (11, at(5), s12, False, False, False),
        (12, s12, s13, False, False, False),
        (13, s13, None, True, True, False),
    ]
    assert as_of(migrated, schema, at(1) - timedelta(microseconds=1)) == []
    assert as_of(migrated, schema, at(1)) == [("p1", 10, 10)]  # valid_from is inclusive
    assert as_of(migrated, schema, at(4, 23)) == [("p1", 10, 10)]
    assert as_of(migrated, schema, at(5)) == [("p1", 11, 12)]  # valid_to is exclusive
    assert as_of(migrated, schema, s12 - timedelta(microseconds=1)) == [("p1", 11, 12)]
    assert as_of(migrated, schema, s12) == [("p1", 12, 15)]
    assert as_of(migrated, schema, s13) == []  # deleted
    # Revived, with an updated_at in the future (a clock ahead): valid from the sync, not later.
    write(writer, "products", [product(14, s13 + timedelta(days=1), 20)])
    s14 = synced_at(migrated, schema, 14)
    assert history(migrated, schema)[-2:] == [(13, s13, s14, False, True, False), (14, s14, None, True, False, False)]
    assert as_of(migrated, schema, s14) == [("p1", 14, 20)]
    # The same version again (a full refresh, an API version switch restating it): no version.
    before = versions_rows(migrated, schema)
    write(writer, "products", [product(14, s13 + timedelta(days=1), 20)])
    with warehouse.transaction() as conn:  # a restatement in another shape touches the row itself
        conn.execute(
            f"UPDATE \"{schema}\".lightspeed_products SET data = data || jsonb_build_object('shape', 2) WHERE id = 'p1'"
        )
    assert versions_rows(migrated, schema) == before
    price_changes = migrated.execute(
        f'SELECT version, old_price, new_price, change_percent FROM "{schema}".product_price_history'
        " ORDER BY changed_at"
    ).fetchall()
    # 10 -> 12 -> 15, deleted (13 keeps 15: no change), revived at 20 (compared with 15)
    assert [(v, float(o), float(n), float(p)) for v, o, n, p in price_changes] == [
        (11, 10, 12, 20.0),
        (12, 12, 15, 25.0),
        (14, 15, 20, 33.33),
    ]


def test_a_listing_that_no_longer_holds_a_row_closes_its_interval(migrated: Any, warehouse: Any, schema: str) -> None:
    writer = PageWriter(warehouse)
    inventory = [
        {"id": f"i{n}", "version": n, "updated_at": at(n).isoformat(), "product_id": "p", "inventory_level": n}
        for n in (1, 2)
    ]
    write(writer, "inventory", inventory)
    # A complete listing that ended at version 1: i2 vanished (marked deleted, version unchanged).
    assert mark_vanished(warehouse, reg.get("inventory"), max_version=1, unversioned_ids=[]) == 1
    rows = migrated.execute(
        f'SELECT id, version, deleted, is_current FROM "{schema}".lightspeed_inventory_history ORDER BY id, valid_from'
    ).fetchall()
    assert rows == [("i1", 1, False, True), ("i2", 2, False, False), ("i2", 2, True, True)]


def test_switching_history_on_seeds_the_rows_there_and_off_stops_it(db: Any, warehouse: Any, schema: str) -> None:
    apply_migrations(warehouse, history=("inventory",))
    writer = PageWriter(warehouse)
    write(writer, "products", [product(10, at(1), 10)])
    write(writer, "products", [product(11, at(2), 11)])  # history off: nothing kept
    assert versions_rows(db, schema) == 0
    assert history(db, schema) == [(11, at(2), None, True, False, True)]  # not kept: the current row only

    result = apply_migrations(warehouse, history=("inventory", "products"))
    assert result["history"]["switched_on"] == ["products"]
    # Seeded: the row there is the open interval, marked as the start of history (no API call).
    assert history(db, schema) == [(11, at(2), None, True, False, True)]
    write(writer, "products", [product(12, at(3), 12)])
    assert history(db, schema) == [(11, at(2), at(3), False, False, True), (12, at(3), None, True, False, False)]

    assert sorted(apply_migrations(warehouse, history=())["history"]["switched_off"]) == ["inventory", "products"]
    write(writer, "products", [product(13, at(4), 13)])
    assert versions_rows(db, schema) == 1  # no trigger: nothing more kept
    apply_migrations(warehouse, history=("products",))
    write(writer, "products", [product(14, at(5), 14)])
    # History restarts: version 13 (written while it was off) is a seeded start again; the gap
    # between the end of 11 and 13's updated_at is known to be unknown.
    assert history(db, schema)[-2:] == [(13, at(4), at(5), False, False, True), (14, at(5), None, True, False, False)]


def test_retention_prunes_old_versions_in_batches(migrated: Any, warehouse: Any, schema: str) -> None:
    writer = PageWriter(warehouse)
    for v in range(1, 8):  # six past versions, ended on 2..7 January 2026
        write(writer, "products", [product(v, at(v), float(v))])
    recent = datetime.now(UTC) - timedelta(days=1)
    write(writer, "products", [product(8, recent, 8.0)])  # ends version 7's interval yesterday
    assert versions_rows(migrated, schema) == 7
    assert prune_history(warehouse, 0) == {}  # 0: keep everything
    assert prune_history(warehouse, 10, batch=2) == {"products": 6}  # versions 1-6 ended long ago
    assert [r[0] for r in history(migrated, schema)] == [7, 8]
    assert measure_history(warehouse)["products"] == {"versions": 1, "oldest": at(7)}
    assert migrated.execute(
        f"SELECT pruned_rows, versions_rows, oldest_at FROM \"{schema}\".sync_history WHERE entity_type = 'products'"
    ).fetchone() == (6, 1, at(7))
