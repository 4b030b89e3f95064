"""Compare the database with the simulator's data, and run the real DAG."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lightspeed_pipeline import entities as reg

ROOT = Path(__file__).resolve().parents[2]


def load_dag() -> Any:
    """The DAG as Airflow parses it from the dags folder (so dag.test() finds it serialised)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags["lightspeed_sync"]


def run_dag(**conf: Any) -> Any:
    """One real DAG run with dag.test(); returns the DagRun."""
    return load_dag().test(run_conf=conf or None)


def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


GONE = "gone from the listing"  # deleted_at set by reconciliation (any time), data as last listed


def expected_rows(entity: reg.Entity, records: list[dict[str, Any]]) -> dict[str, tuple[Any, ...]]:
    """What the table must hold for the simulator's records: id -> (version, deleted_at, data).

    A record the API no longer lists (a removed category, any `_removed` record) must be
    marked deleted if it was ever synced (`GONE`); one removed before it was synced is absent.
    """
    out: dict[str, tuple[Any, ...]] = {}
    for rec in records:
        rec = dict(rec)
        gone = rec.pop("_removed", False) | (entity.name == "product_categories" and rec.pop("_deleted", False))
        if rec.get("deleted_at") and not entity.supports_deleted:
            continue  # never returned by the API
        deleted = GONE if gone else _ts(rec.get("deleted_at"))
        out[rec["id"]] = (rec.get("version") if entity.versioned else None, deleted, rec)
    return out


def table_rows(db: Any, schema: str, entity: reg.Entity, gone: set[str] = frozenset()) -> dict[str, tuple[Any, ...]]:  # type: ignore[assignment]
    rows = db.execute(f'SELECT id, version, deleted_at, data FROM "{schema}"."{entity.table}"').fetchall()
    out = {}
    for rid, version, deleted_at, data in rows:
        if rid in gone and deleted_at is not None:
            deleted_at = GONE
        out[rid] = (version, deleted_at, data)
    return out


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def assert_database_equals_source(
    db: Any, schema: str, state: dict[str, list[dict[str, Any]]], only: tuple[str, ...] | None = None
) -> None:
    """Every table (or those in `only`) equals the simulator: ids, versions, deleted_at, data, sale children."""
    for entity in reg.ENTITIES:
        if only is not None and entity.name not in only:
            continue
        want = expected_rows(entity, state[entity.name])
        have = table_rows(db, schema, entity, {k for k, v in want.items() if v[1] == GONE})
        # A record removed before it was ever synced is (correctly) simply absent.
        want = {k: v for k, v in want.items() if v[1] != GONE or k in have}
        assert set(have) == set(want), (
            f"{entity.name}: missing {sorted(set(want) - set(have))[:5]}, extra {sorted(set(have) - set(want))[:5]}"
        )
        for rid, (version, deleted, data) in want.items():
            got = have[rid]
            assert got[0] == version, (entity.name, rid, "version", got[0], version)
            assert got[1] == deleted, (entity.name, rid, "deleted_at", got[1], deleted)
            assert _same_json(got[2], data), (entity.name, rid, "data differs")
    if only is not None and "sales" not in only:
        return
    sales = {s["id"]: s for s in state["sales"]}
    for child in reg.get("sales").children:
        rows = db.execute(
            f'SELECT sale_id, position, data FROM "{schema}"."{child.table}" ORDER BY sale_id, position'
        ).fetchall()
        got: dict[str, list[Any]] = {}
        for sale_id, position, data in rows:
            got.setdefault(sale_id, []).append(data)
            assert position == len(got[sale_id]) - 1
        want_children = {sid: s.get(child.member) or [] for sid, s in sales.items()}
        want_children = {k: v for k, v in want_children.items() if v}
        assert set(got) == set(want_children), f"{child.table}: sales with children differ"
        for sid, items in want_children.items():
            assert _same_json(got[sid], items), (child.table, sid)


def snapshot(db: Any, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, synced_at included (so a rewrite shows)."""
    out = {}
    for table in [e.table for e in reg.ENTITIES] + list(reg.CHILD_TABLES):
        out[table] = db.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1, 2').fetchall()
    return out


def sync_state(db: Any, schema: str) -> dict[str, tuple[Any, ...]]:
    rows = db.execute(f'SELECT entity_type, status, last_version, error_message FROM "{schema}".sync_state')
    return {r[0]: r[1:] for r in rows.fetchall()}


def requests_by_resource(stats: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for req in stats["requests"]:
        out.setdefault(req["resource"], []).append(req)
    return out


def _local_day(ts: str, tz: str | None) -> Any:
    from zoneinfo import ZoneInfo

    when = _ts(ts)
    assert when is not None
    return when.astimezone(ZoneInfo(tz or "UTC")).date()


def expected_daily_sales(
    state: dict[str, list[dict[str, Any]]],
) -> dict[tuple[Any, str], tuple[int, float, float, float]]:
    """daily_sales_summary computed in Python from the source records."""
    zones = {o["id"]: o.get("time_zone") for o in state["outlets"]}
    out: dict[tuple[Any, str], list[float]] = {}
    for sale in state["sales"]:
        status = sale.get("status") or ""
        if (
            not (status == "CLOSED" or status.endswith("_CLOSED"))
            or sale.get("deleted_at")
            or not sale.get("sale_date")
        ):
            continue
        key = (_local_day(sale["sale_date"], zones.get(sale["outlet_id"])), sale["outlet_id"])
        acc = out.setdefault(key, [0, 0.0, 0.0, 0.0])
        acc[0] += 1
        acc[1] += sale["total_price"]
        acc[2] += sale["total_tax"]
        for li in sale.get("line_items") or []:
            if li.get("status") != "VOIDED":
                acc[3] += li.get("discount_total", li.get("discount", 0) * li.get("quantity", 0)) or 0
    return {k: (int(v[0]), round(v[1], 4), round(v[2], 4), round(v[3], 4)) for k, v in out.items()}


def expected_low_stock(state: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    products = {p["id"]: p for p in state["products"]}
    out = set()
    for inv in state["inventory"]:
        amount = inv.get("current_amount", inv.get("inventory_level"))
        point = inv.get("reorder_point")
        product = products.get(inv["product_id"])
        if point is None or amount is None or product is None or amount > point:
            continue
        if product.get("deleted_at") or not product.get("active") or not product.get("has_inventory"):
            continue
        out.add((product["id"], inv["outlet_id"]))
    return out


def assert_views_match(db: Any, schema: str, state: dict[str, list[dict[str, Any]]]) -> None:
    rows = db.execute(
        "SELECT sale_date, outlet_id, transaction_count, total_revenue, total_tax, total_discount"
        f' FROM "{schema}".daily_sales_summary'
    ).fetchall()
    got = {(d, o): (n, round(float(r), 4), round(float(t), 4), round(float(disc), 4)) for d, o, n, r, t, disc in rows}
    want = expected_daily_sales(state)
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key][0] == value[0] and all(
            math.isclose(a, b, abs_tol=1e-3) for a, b in zip(got[key][1:], value[1:], strict=True)
        ), key
    low = set(db.execute(f'SELECT id, outlet_id FROM "{schema}".low_stock_products').fetchall())
    assert low == expected_low_stock(state)


def wait_for(predicate: Any, timeout: float = 60.0, every: float = 0.02) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(every)


def run_dag_disturbed(
    when: Callable[[], bool], action: Callable[[], None], *, every: float = 0.02, **conf: Any
) -> tuple[Any, bool]:
    """Run the DAG while a thread waits for `when` and then does `action` (a fault mid-run).

    Returns the run and whether the action happened.
    """
    done = threading.Event()

    def disturb() -> None:
        wait_for(when, every=every)
        action()
        done.set()

    thread = threading.Thread(target=disturb, daemon=True)
    thread.start()
    run = run_dag(**conf)
    thread.join(5)
    return run, done.is_set()
