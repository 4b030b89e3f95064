"""Which Lightspeed API version a database is filled through, and switching it (issue 17).

The real DAG against a real PostgreSQL and the simulator (which serves 2.0 and 2026-07 at once).
A new database uses the newest version; one filled through 2.0 keeps it until
LIGHTSPEED_API_VERSION names another; the switch needs no full refresh: the entities listed in
the same shape continue from their cursor (0 rows written when nothing changed), the two the new
version reshapes are read once and restated in its shape, and the copy equals the source; the
next run writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from lightspeed_pipeline import entities as reg

from tests.integration.helpers import (
    assert_database_equals_source,
    entity_log,
    requests_by_resource,
    run_dag,
    snapshot,
)
from tests.integration.test_dag_sync import noop_requests


def api_versions_used(simulator: Any) -> set[str]:
    return {r["api_version"] for r in simulator.stats()["requests"]}


def stored_versions(db: Any, schema: str) -> tuple[str | None, set[str | None]]:
    """(sync_store's api_version, the api_version of every entity's last sync)."""
    store = db.execute(f'SELECT api_version FROM "{schema}".sync_store').fetchone()
    states = {
        r[0]  # the entities a version does not list (gift cards in 2.0) have none
        for r in db.execute(f'SELECT api_version FROM "{schema}".sync_state WHERE disabled_at IS NULL').fetchall()
    }
    return (store[0] if store else None), states


def test_a_new_database_is_filled_through_the_newest_version(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LIGHTSPEED_API_VERSION", raising=False)
    assert run_dag().state == "success"
    assert api_versions_used(simulator) == {reg.NEWEST}
    assert stored_versions(db, schema) == (reg.NEWEST, {reg.NEWEST})
    assert_database_equals_source(db, schema, simulator.state(reg.NEWEST), api_version=reg.NEWEST)
    shapes = dict(db.execute(f'SELECT DISTINCT data_shape, 1 FROM "{schema}".lightspeed_sales').fetchall())
    assert set(shapes) == {"2026-07"}
    health = db.execute(f'SELECT DISTINCT api_version FROM "{schema}".sync_health').fetchall()
    assert health == [(reg.NEWEST,)]


def test_a_2_0_database_keeps_its_version_until_switched_and_the_switch_rewrites_nothing(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Filled through 2.0 (as every database before dated versions were).
    monkeypatch.setenv("LIGHTSPEED_API_VERSION", reg.V2)
    assert run_dag().state == "success"
    assert stored_versions(db, schema) == (reg.V2, {reg.V2})

    # LIGHTSPEED_API_VERSION unset: it keeps the version it was filled with.
    monkeypatch.delenv("LIGHTSPEED_API_VERSION")
    simulator.reset_stats()
    assert run_dag().state == "success"
    assert api_versions_used(simulator) == {reg.V2}

    # The switch: LIGHTSPEED_API_VERSION names the new version. No full refresh: the entities the
    # new version lists in the same shape go on from their cursor and write nothing; those it
    # reshapes (sales, inventory, tags, price books) are read once from 0 and every row is restated.
    before = snapshot(db, schema)
    state = simulator.state(reg.NEWEST)
    monkeypatch.setenv("LIGHTSPEED_API_VERSION", reg.NEWEST)
    simulator.reset_stats()
    run = run_dag()
    assert run.state == "success"
    assert api_versions_used(simulator) == {reg.NEWEST}
    assert stored_versions(db, schema) == (reg.NEWEST, {reg.NEWEST})
    logged = entity_log(db, schema, run.run_id)
    reshaped = {e.name for e in reg.ENTITIES if e.shapes}
    assert reshaped == {"sales", "inventory", "tags", "price_books"}
    listed_now = set(reg.unavailable(reg.V2))  # gift cards, store credits: new in 2026-07, imported now
    # No version, read in full every run: a record 2026-07 sends differently is rewritten at once.
    unversioned_reshaped = {"promotions"}
    for name, meta in logged.items():
        written = meta["rows_inserted"] + meta["rows_updated"] + meta["rows_deleted"]
        if name in listed_now:
            assert meta["action"] == "historical_import" and meta["rows_inserted"] > 0, name
        elif name in unversioned_reshaped:
            assert (meta["rows_inserted"], meta["rows_updated"]) == (0, len(before[reg.get(name).table])), name
        elif name in reshaped:  # every stored row restated (same version, new shape), nothing inserted
            assert (meta["rows_inserted"], meta["rows_updated"]) == (0, len(before[reg.get(name).table])), name
        else:
            assert written == 0, (name, meta)
    restated = {reg.get(name).table for name in reshaped | listed_now | unversioned_reshaped} | set(reg.CHILD_TABLES)
    after = snapshot(db, schema)
    assert {t: r for t, r in after.items() if t not in restated} == {
        t: r for t, r in before.items() if t not in restated
    }
    switched = db.execute(
        f"SELECT metadata FROM \"{schema}\".sync_log WHERE action = 'api_version' ORDER BY id"
    ).fetchall()
    assert [m[0] for m in switched] == [{"from": reg.V2, "to": reg.NEWEST}]
    # The copy equals the source as 2026-07 serves it: data, typed columns, children, deletions.
    assert_database_equals_source(db, schema, state, api_version=reg.NEWEST)
    requests = requests_by_resource(simulator.stats())
    assert int(requests["sales"][0]["query"]["after"]) == 0 and int(requests["inventory"][0]["query"]["after"]) == 0

    # A no-op run in 2026-07: one request per entity, two for those still listed in full (users,
    # taxes: no delete signal); product categories one (has_next false); plus the store check.
    monkeypatch.delenv("LIGHTSPEED_API_VERSION")  # kept from now on without saying it again
    simulator.reset_stats()
    assert run_dag().state == "success"
    made = {name: len(reqs) for name, reqs in requests_by_resource(simulator.stats()).items()}
    listed_in_full = {e.name for e in reg.ENTITIES if e.at(reg.NEWEST).deletions == "every_run" and e.versioned}
    assert listed_in_full == {"users", "taxes"}  # and the lists without a version at all
    assert made == noop_requests(reg.NEWEST, simulator.state(reg.NEWEST))
    assert api_versions_used(simulator) == {reg.NEWEST}

    # Changes after the switch: in the new shape, deletions of brands by their new delete feed.
    changed = simulator.mutate(seed=11, update={"inventory": 4, "customers": 2}, new={"sales": 6}, delete={"brands": 1})
    assert run_dag().state == "success"
    assert_database_equals_source(db, schema, simulator.state(reg.NEWEST), api_version=reg.NEWEST)
    shapes = {r[0] for r in db.execute(f'SELECT DISTINCT data_shape FROM "{schema}".lightspeed_sales').fetchall()}
    assert shapes == {"2026-07"}
    (deleted_brand,) = changed["changed"]["brands"]
    assert db.execute(
        f'SELECT deleted_at IS NOT NULL FROM "{schema}".lightspeed_brands WHERE id = %s', (deleted_brand,)
    ).fetchone() == (True,)
