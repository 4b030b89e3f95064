"""The real DAG (dag.test()) against a real PostgreSQL and the simulator over HTTP."""

from __future__ import annotations

import math
from typing import Any

from lightspeed_pipeline import entities as reg

from tests.conftest import FAST_RETRIES
from tests.integration.helpers import (
    assert_database_equals_source,
    assert_views_match,
    entity_log,
    gone_ids,
    requests_by_resource,
    run_dag,
    snapshot,
    sync_state,
)

PAGE = FAST_RETRIES["page_size"]  # 50; the simulator caps at 200, so pages are 50 records


def visible(entity: reg.Entity, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records a complete listing of `entity` (as an API version lists it) serves."""
    records = [r for r in records if not r.get("_removed")]
    if isinstance(entity.paging, reg.ParentPaging):
        return records
    if entity.name == "product_categories":
        return [r for r in records if not r.get("_deleted")]
    if entity.supports_deleted:
        return records
    return [r for r in records if not r.get("deleted_at")]


SIM_CAP = 200  # the simulator's largest page (gift cards ask for 1000)


def page_size(entity: reg.Entity) -> int:
    """2026-07's POST /inventory asks for the documented maximum (5000), gift cards for theirs (1000,
    which the simulator caps); the rest for LIGHTSPEED_PAGE_SIZE."""
    if isinstance(entity.paging, reg.PostedVersionPaging):
        return entity.paging.max_size
    if isinstance(entity.paging, reg.DescIdPaging):
        return min(entity.paging.max_size, SIM_CAP)
    return PAGE


def minimum_requests(entity: reg.Entity, n: int, state: dict[str, list[dict[str, Any]]] | None = None) -> int:
    """Pages + 1 for version paging (only an empty page ends it); pages for id paging; for an
    entity read per parent, pages + 1 per live parent (`state`: the simulator's records)."""
    if isinstance(entity.paging, reg.ParentPaging):
        assert state is not None
        return sum(under_parent_requests(entity, state, parent["id"]) for parent in live_parents(entity, state))
    if isinstance(entity.paging, reg.WholeList):
        return 1  # one answer, no cursor
    if isinstance(entity.paging, reg.DescIdPaging):
        return entity.paging.requests(n, page_size(entity))  # a small first page; only an empty page ends it
    pages = math.ceil(n / page_size(entity))
    return max(pages, 1) if not entity.versioned else pages + 1


def live_parents(entity: reg.Entity, state: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    assert isinstance(entity.paging, reg.ParentPaging)
    gone = gone_ids(state, entity.paging.parent)
    return [p for p in state[entity.paging.parent] if p["id"] not in gone]


def under_parent_requests(entity: reg.Entity, state: dict[str, list[dict[str, Any]]], parent: str) -> int:
    """The requests that list one parent's records: its pages and the empty page that ends them."""
    lines = [r for r in visible(entity, state[entity.name]) if r["_parent"] == parent]
    return math.ceil(len(lines) / PAGE) + 1


def noop_requests(api_version: str, state: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    """A run on unchanged data: 1 request per entity, 2 for the small ones listed in full every
    run (the page and the empty page that ends it), the first page, the full ones and the empty
    one for gift cards (`state`: the simulator's records), 1 for an unpaged list, none for one
    read per parent (no parent moved), none for those the version does not list, and 1 for the
    store check."""

    def requests(e: reg.Entity) -> int:
        if isinstance(e.paging, reg.WholeList):
            return 1
        if isinstance(e.paging, reg.DescIdPaging):
            return e.paging.requests(len(visible(e, state[e.name])), page_size(e))
        return 2 if e.deletions == "every_run" else 1

    entities = [e.at(api_version) for e in reg.ENTITIES if e.available(api_version)]
    return {"retailer": 1} | {e.name: requests(e) for e in entities if not isinstance(e.paging, reg.ParentPaging)}


def available(api_version: str) -> list[reg.Entity]:
    """The entities `api_version` lists, as it lists them."""
    return [e.at(api_version) for e in reg.ENTITIES if e.available(api_version)]


def test_first_second_and_mutated_runs_keep_the_database_equal(
    connections: None,
    simulator: Any,
    db: Any,
    schema: str,
    airflow_db: None,
    api_version: str,
) -> None:
    """In each API version: the dated one lists inventory by POST and brands, suppliers, product
    types and payment types with their delete feed, and reshapes sales and inventory."""
    entities = available(api_version)
    # (a) first run: every table equals the source.
    state = simulator.state(api_version)
    run = run_dag()
    assert run.state == "success"
    assert_database_equals_source(db, schema, state, api_version=api_version)
    assert_views_match(db, schema, simulator.state())  # the views read typed columns: the same in both
    by_resource = requests_by_resource(simulator.stats())
    assert {r["api_version"] for r in simulator.stats()["requests"]} == {api_version}
    for e in entities:
        made = len(by_resource[e.name])
        assert made == minimum_requests(e, len(visible(e, state[e.name])), state), (e.name, made)
    states = sync_state(db, schema)
    assert {states[e.name][0] for e in entities} == {"success"}
    assert all(states[e.name][1] is not None for e in entities if e.versioned)
    health = dict(db.execute(f"SELECT entity_type, sync_status || ': ' || health_reason FROM \"{schema}\".sync_health"))
    for name in reg.unavailable(api_version):  # 2.0 lists no gift cards: skipped, tables left empty
        assert states[name][0] == "never_synced" and name not in by_resource, name
        assert db.execute(f'SELECT count(*) FROM "{schema}"."{reg.get(name).table}"').fetchone() == (0,)
        assert health[name].startswith(f"DISABLED: {reg.unavailable(api_version)[name]} since"), health[name]
    first_log = entity_log(db, schema, run.run_id)
    events = db.execute(
        f'SELECT entity_type, status, duration_seconds, records_processed FROM "{schema}".sync_log'
        " WHERE metadata->>'run_id' = %s AND action <> 'run_summary' ORDER BY id",
        (run.run_id,),
    ).fetchall()
    for e in entities:
        mine = [ev for ev in events if ev[0] == e.name]
        assert [ev[1] for ev in mine] == ["started", "completed"], e.name
        assert mine[1][2] is not None and mine[1][3] == len(visible(e, state[e.name]))
        meta = first_log[e.name]
        for key in (
            "pages",
            "requests",
            "retries",
            "first_version",
            "last_version",
            "rows_inserted",
            "rows_updated",
            "rows_unchanged",
            "rows_deleted",
        ):
            assert key in meta, (e.name, key)
        assert meta["requests"] == len(by_resource[e.name])
    assert first_log["products"]["rows_deleted"] == sum(1 for p in state["products"] if p.get("deleted_at")) > 0
    assert first_log["sales"]["action"] == "historical_import"
    assert first_log["sales"]["rows_inserted"] == len(state["sales"])
    assert first_log["sales"]["pages"] == math.ceil(len(state["sales"]) / PAGE)

    # (b) second run on unchanged data: one request per entity, no row written.
    before = snapshot(db, schema)
    simulator.reset_stats()
    run = run_dag()
    assert run.state == "success"
    stats = simulator.stats()
    assert stats["by_resource"] == noop_requests(api_version, simulator.state(api_version))
    assert snapshot(db, schema) == before  # synced_at included: nothing was rewritten
    second_log = entity_log(db, schema, run.run_id)
    assert all(m["rows_inserted"] + m["rows_updated"] == 0 for m in second_log.values())
    assert second_log["sales"]["action"] == "incremental_sync"

    # (c) after mutations: equal again, reading only pages after the stored versions.
    cursors = {name: v for name, (_, v, _) in sync_state(db, schema).items()}
    changed = simulator.mutate(
        seed=7,
        update={
            "products": 5,
            "customers": 4,
            "inventory": 6,
            "outlets": 1,
            "users": 1,
            "brands": 1,
            "tags": 1,
            "price_books": 1,
            "price_book_products": 2,
            "consignments": 1,
            "consignment_products": 2,
            "promotions": 1,
            "gift_cards": 3,  # balances move without a new id or version
            "store_credits": 2,
            "purchase_orders": 1,
            "purchase_order_line_items": 2,
        },
        delete={"products": 2, "customers": 2, "registers": 1, "tags": 1},
        new={
            "sales": 12,
            "customers": 3,
            "products": 2,
            "consignments": 1,
            "consignment_products": 1,
            "purchase_orders": 1,
        },
        remove={
            "consignment_products": 1,
            "gift_cards": 1,
            "store_credits": 1,
            "promotions": 1,
            "purchase_order_line_items": 1,
        },
        receive_consignments=1,
        receive_purchase_orders=1,
        void_sales=3,
        edit_sales=3,
        categories={"delete": 1, "rename": 1, "new": 1},
    )["changed"]
    state = simulator.state(api_version)
    simulator.reset_stats()
    run = run_dag()
    assert run.state == "success"
    assert_database_equals_source(db, schema, state, api_version=api_version)
    by_resource = requests_by_resource(simulator.stats())
    for e in entities:
        reqs = by_resource[e.name]
        if not e.versioned:  # no version: listed in full, every page
            assert len(reqs) == minimum_requests(e, len(visible(e, state[e.name]))), e.name
        elif e.deletions == "every_run":  # listed in full: from version 0, every page
            assert int(reqs[0]["query"]["after"]) == 0, e.name
            assert len(reqs) == minimum_requests(e, len(visible(e, state[e.name]))), e.name
        elif isinstance(e.paging, reg.ParentPaging):  # the parents that moved, each listed in full
            moved = {p["id"] for p in live_parents(e, state) if p["version"] > cursors[e.name]}
            assert {r["parent"] for r in reqs} == moved and moved, e.name
            assert len(reqs) == sum(under_parent_requests(e, state, p) for p in moved), e.name
        elif e.versioned:
            assert all(int(r["query"]["after"]) >= cursors[e.name] for r in reqs), e.name
            assert int(reqs[0]["query"]["after"]) == cursors[e.name]
            n_changed = len(set(changed.get(e.name, [])))
            assert len(reqs) == math.ceil(n_changed / page_size(e)) + 1, (e.name, len(reqs), n_changed)
    third_log = entity_log(db, schema, run.run_id)
    assert third_log["sales"]["rows_inserted"] + third_log["sales"]["rows_updated"] == len(set(changed["sales"]))
    assert third_log["product_categories"]["rows_deleted"] == 1

    # (d) with 429s (Retry-After as an HTTP date) and 5xx switched on: still equal.
    simulator.mutate(seed=8, update={"products": 3, "inventory": 3}, new={"sales": 5}, void_sales=2)
    state = simulator.state(api_version)
    simulator.reset_stats()
    simulator.faults(
        script=[429, 503, 429, 500, 502],
        rates={"429": 0.1, "503": 0.1},
        fault_seed=3,
        retry_after="date",
        retry_after_seconds=1,
    )
    run = run_dag()
    simulator.faults()
    assert run.state == "success"
    assert_database_equals_source(db, schema, state, api_version=api_version)
    assert_views_match(db, schema, simulator.state())
    statuses = simulator.stats()["by_status"]
    assert statuses.get("429", 0) >= 2 and statuses.get("503", 0) + statuses.get("500", 0) >= 2
    fourth_log = entity_log(db, schema, run.run_id)
    entity_faults = sum(
        1 for r in simulator.stats()["requests"] if r["resource"] != "retailer" and str(r["status"]) != "200"
    )  # the store check's retries are the migrate task's, not an entity's
    assert sum(m["retries"] for m in fourth_log.values()) == entity_faults


def test_entities_param_and_full_refresh_rewrite_nothing(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None
) -> None:
    run = run_dag(entities=["brands", "products"])
    assert run.state == "success"
    states = sync_state(db, schema)
    assert states["brands"][0] == "success" and states["products"][0] == "success"
    assert states["sales"][0] == "never_synced"
    assert set(requests_by_resource(simulator.stats())) == {"retailer", "brands", "products"}

    before = snapshot(db, schema)
    simulator.reset_stats()
    run = run_dag(entities=["products"], full_refresh=True)
    assert run.state == "success"
    products = [p for p in simulator.state()["products"]]
    reqs = requests_by_resource(simulator.stats())
    assert set(reqs) == {"retailer", "products"}
    assert reqs["products"][0]["query"]["after"] == "0"
    assert len(reqs["products"]) == math.ceil(len(products) / PAGE) + 1
    meta = entity_log(db, schema, run.run_id)["products"]
    assert meta["action"] == "historical_import"
    assert meta["rows_inserted"] + meta["rows_updated"] == 0 and meta["rows_unchanged"] == len(products)
    assert snapshot(db, schema) == before


def test_a_failing_entity_fails_the_run_and_the_rerun_recovers(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: Any
) -> None:
    # Every customers request answers 400 (not retryable): customers fails, sales (which
    # depends on it) does not run, every other entity succeeds, and the run fails.
    simulator.faults(script=[], resources={"customers": 400})
    monkeypatch.setenv("LIGHTSPEED_TASK_RETRIES", "0")
    run = run_dag()
    assert run.state == "failed"
    states = sync_state(db, schema)
    status, _, error = states["customers"]
    assert status == "failed"
    assert error.startswith("customers (page 1, after version 0): HTTP 400 on GET /api/2.0/customers?after=0")
    assert states["sales"][0] == "never_synced"
    unlisted = reg.unavailable(reg.V2)  # gift cards, store credits: 2.0 does not list them
    assert all(s == "success" for name, (s, _, _) in states.items() if name not in ("customers", "sales", *unlisted))
    summary = db.execute(
        f"SELECT status, error_details, metadata FROM \"{schema}\".sync_log WHERE action = 'run_summary'"
    ).fetchone()
    assert summary[0] == "failed" and summary[1] == "failed entities: customers, sales"
    outcome = {name: info["state"] for name, info in summary[2]["entities"].items()}
    assert outcome["customers"] == "failed" and outcome["sales"] == "upstream_failed"
    assert summary[2]["entities"]["customers"]["error"] == error
    assert {s for n, s in outcome.items() if n not in ("customers", "sales", *unlisted)} == {"success"}
    assert {outcome[n] for n in unlisted} <= {"skipped"}
    failed_log = db.execute(
        f"SELECT error_details FROM \"{schema}\".sync_log WHERE entity_type = 'customers' AND status = 'failed'"
    ).fetchone()
    assert failed_log[0] == error

    # Fixed: rerunning just the failed entity and its dependant brings the copy in line.
    simulator.faults()
    simulator.reset_stats()
    state = simulator.state()
    run = run_dag(entities=["customers", "sales"])
    assert run.state == "success"
    assert set(requests_by_resource(simulator.stats())) == {"retailer", "customers", "sales"}
    assert_database_equals_source(db, schema, state)
    assert {s for n, (s, *_) in sync_state(db, schema).items() if n not in unlisted} == {"success"}


def test_airflow_cli_runs_the_dag_from_any_directory(
    simulator: Any, pg_dsn: str, schema: str, db: Any, tmp_path: Any
) -> None:
    """The deployment path: only AIRFLOW_HOME, the two folders and the two connections; no PYTHONPATH."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(root / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(root / "plugins"),
        AIRFLOW_CONN_LIGHTSPEED_API=simulator.airflow_connection(**FAST_RETRIES),
        AIRFLOW_CONN_LIGHTSPEED_POSTGRES=pg_dsn,
        LIGHTSPEED_SCHEMA=schema,
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    for args in (["db", "migrate"], ["dags", "test", "lightspeed_sync"]):
        proc = subprocess.run([airflow, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # Its environment names no LIGHTSPEED_API_VERSION: a new database is filled through the newest.
    assert_database_equals_source(db, schema, simulator.state(reg.NEWEST), api_version=reg.NEWEST)
