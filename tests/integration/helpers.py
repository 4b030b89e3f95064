"""Compare the database with the simulator's data, and run the real DAG."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.mapping import prepare_page
from lightspeed_pipeline.records import keys_under, version_of

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
AS_LAST_LISTED = "as last listed"  # a record's version or data the source no longer shows


def row_key(entity: reg.Entity, record: dict[str, Any]) -> str:
    """The row id of a simulator record: its id; for one listed under a parent without an id of
    its own, `<parent id>/<key member>` (the simulator lists a product once per consignment, so
    the `/2` suffixes of `keys_under` never arise here)."""
    if isinstance(entity.paging, reg.ParentPaging) and "_parent" in record:
        return keys_under(record["_parent"], entity.paging.key, [served(record)], {})[0] or ""
    return str(record[entity.id_member])


def served(record: dict[str, Any]) -> dict[str, Any]:
    """A simulator record as the API sends it (without its `_parent` and `_key` bookkeeping)."""
    return {k: v for k, v in record.items() if k not in ("_parent", "_key")}


def gone_ids(state: dict[str, list[dict[str, Any]]], name: str) -> set[str]:
    """The row ids of `name` gone from the store: removed, deleted, or listed under a parent that
    is gone (a delivery's line items go with the purchase order)."""
    entity = reg.get(name)
    under = gone_ids(state, entity.paging.parent) if isinstance(entity.paging, reg.ParentPaging) else set()
    return {
        row_key(entity, r)
        for r in state[name]
        if r.get("_removed") or r.get("deleted_at") or r.get("_parent", "") in under
    }


def expected_rows(
    entity: reg.Entity, records: list[dict[str, Any]], gone_parents: set[str] | None = None
) -> dict[str, tuple[Any, ...]]:
    """What the table must hold for the simulator's records: id -> (version, deleted_at, data).

    `entity` is the entity as the API version read lists it (`reg.get(name).at(version)`), and
    `records` as that version serves them. A record the API no longer lists (a removed
    category, any `_removed` record, a deleted one where the version has no delete feed) must
    be marked deleted if it was ever synced (`GONE`); one removed before it was synced is absent.
    A record listed under a parent in `gone_parents` (`gone_ids`) is gone with it.
    """
    out: dict[str, tuple[Any, ...]] = {}
    for rec in records:
        rid = row_key(entity, rec)
        under_gone = rec.get("_parent", "") in (gone_parents or set())
        rec = served(rec)
        gone = rec.pop("_removed", False) | (entity.name == "product_categories" and rec.pop("_deleted", False))
        gone |= under_gone
        if gone or (rec.get("deleted_at") and not entity.supports_deleted):  # no longer listed by this version
            # version and data: as the listing last held them (a record changed and then removed
            # before a sync saw the change keeps what was read before)
            out[rid] = (AS_LAST_LISTED, GONE, AS_LAST_LISTED)
            continue
        out[rid] = (version_of(rec) if entity.versioned else None, _ts(rec.get("deleted_at")), rec)
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
    db: Any,
    schema: str,
    state: dict[str, list[dict[str, Any]]],
    only: tuple[str, ...] | None = None,
    api_version: str = reg.V2,
    compare_data: bool = True,
) -> None:
    """Every table (or those in `only`) equals the simulator as `api_version` serves it (`state`
    from `simulator.state(api_version)`): ids, versions, deleted_at, data, the typed columns, and
    the children (line items, payments, transactions); entities that version does not list are
    passed by. `compare_data` False (after switching API versions, when rows not changed
    since keep the shape they were sent in) compares all but `data`."""
    for base in reg.ENTITIES:
        if only is not None and base.name not in only:
            continue
        entity = base.at(api_version)
        if not entity.available(api_version):  # that version does not list it (gift cards in 2.0)
            continue
        under = entity.paging.parent if isinstance(entity.paging, reg.ParentPaging) else None
        want = expected_rows(entity, state[entity.name], gone_ids(state, under) if under else None)
        have = table_rows(db, schema, entity, {k for k, v in want.items() if v[1] == GONE})
        # A record removed before it was ever synced is (correctly) simply absent.
        want = {k: v for k, v in want.items() if v[1] != GONE or k in have}
        assert set(have) == set(want), (
            f"{entity.name}: missing {sorted(set(want) - set(have))[:5]}, extra {sorted(set(have) - set(want))[:5]}"
        )
        for rid, (version, deleted, data) in want.items():
            got = have[rid]
            assert got[1] == deleted, (entity.name, rid, "deleted_at", got[1], deleted)
            if data is AS_LAST_LISTED:
                continue
            assert got[0] == version, (entity.name, rid, "version", got[0], version)
            assert not compare_data or _same_json(got[2], data), (entity.name, rid, "data differs")
        listed = {k: w[2] for k, w in want.items() if w[2] is not AS_LAST_LISTED}
        parent_of = {row_key(entity, r): r["_parent"] for r in state[entity.name] if "_parent" in r}
        assert_typed_columns(db, schema, entity, listed, with_shape=compare_data, parents=parent_of)
        if compare_data:
            assert_children(db, schema, entity, state[entity.name])


def assert_children(db: Any, schema: str, entity: reg.Entity, records: list[dict[str, Any]]) -> None:
    """Each child table (a sale's line items and payments, a gift card's transactions) holds
    exactly its parents' arrays, in order, for the parents the listing still holds."""
    parents = {row_key(entity, r): r for r in records if not r.get("_removed")}
    for child in entity.children:
        rows = db.execute(
            f'SELECT {child.parent_key}, position, data FROM "{schema}"."{child.table}"'
            f" ORDER BY {child.parent_key}, position"
        ).fetchall()
        got: dict[str, list[Any]] = {}
        for parent_id, position, data in rows:
            got.setdefault(parent_id, []).append(data)
            assert position == len(got[parent_id]) - 1
        got = {k: v for k, v in got.items() if k in parents}  # a removed parent keeps its last children
        want_children = {pid: r.get(child.member) or [] for pid, r in parents.items()}
        want_children = {k: v for k, v in want_children.items() if v}
        assert set(got) == set(want_children), f"{child.table}: parents with children differ"
        for pid, items in want_children.items():
            assert _same_json(got[pid], items), (child.table, pid)


def _as_stored(type_: str, value: Any) -> Any:
    """The mapping's value of a typed column as PostgreSQL returns it."""
    if value is None:
        return None
    if type_ == "numeric":
        return Decimal(str(value))
    if type_ == "timestamptz":
        return datetime.fromisoformat(value)
    return value


def assert_typed_columns(
    db: Any,
    schema: str,
    entity: reg.Entity,
    records: list[dict[str, Any]] | dict[str, dict[str, Any]],
    *,
    with_shape: bool = True,
    parents: dict[str, str] | None = None,
) -> None:
    """The typed columns (and `data_shape`, with `with_shape`) of the rows of `records` (a list,
    or a dict by row id) are what the reader makes of each record, whatever its shape; `parents`:
    the parent id of each row of an entity read per parent (its `parent_key` column)."""
    if isinstance(records, dict):
        parent_key = entity.paging.parent_key if isinstance(entity.paging, reg.ParentPaging) else None
        keys: list[str | None] = list(records)
        prepared = prepare_page(entity, list(records.values()), keys=keys)
        if parent_key is not None:
            for row in prepared.rows:
                row[parent_key] = (parents or {})[row["id"]]
    else:
        prepared = prepare_page(entity, records)
    if not prepared.rows:
        return
    shape = [("data_shape", "text")] if entity.shapes and with_shape else []
    columns = [(c.name, c.type) for c in entity.columns] + shape
    names = [n for n, _ in columns]
    stored = {
        r[0]: r[1:]
        for r in db.execute(
            f'SELECT id, {", ".join(names)} FROM "{schema}"."{entity.table}" WHERE id = ANY(%s)',
            ([row["id"] for row in prepared.rows],),
        ).fetchall()
    }
    for row in prepared.rows:
        want = tuple(_as_stored(t, row[n]) for n, t in columns)
        got = stored[row["id"]]
        assert got == want, (
            entity.name,
            row["id"],
            {n: (g, w) for n, g, w in zip(names, got, want, strict=True) if g != w},
        )
    for child in entity.children:  # a sale's line items and payments, typed, whatever the sale's shape
        cols = [(c.name, c.type) for c in child.columns]
        parents = [row["id"] for row in prepared.rows]
        stored_children = {
            (r[0], r[1]): r[2:]
            for r in db.execute(
                f'SELECT {child.parent_key}, position, {", ".join(n for n, _ in cols)} FROM "{schema}"."{child.table}"'
                f" WHERE {child.parent_key} = ANY(%s)",
                (parents,),
            ).fetchall()
        }
        wanted = {
            (kid[child.parent_key], kid["position"]): tuple(_as_stored(t, kid.get(n)) for n, t in cols)
            for kid in prepared.children.get(child.name, [])
        }
        assert stored_children == wanted, (child.table, len(stored_children), len(wanted))


def snapshot(db: Any, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, synced_at included (so a rewrite shows)."""
    out = {}
    for table in [e.table for e in reg.ENTITIES] + list(reg.CHILD_TABLES):
        out[table] = db.execute(f'SELECT * FROM "{schema}"."{table}" ORDER BY 1, 2').fetchall()
    return out


def sync_state(db: Any, schema: str) -> dict[str, tuple[Any, ...]]:
    rows = db.execute(f'SELECT entity_type, status, last_version, error_message FROM "{schema}".sync_state')
    return {r[0]: r[1:] for r in rows.fetchall()}


def entity_log(db: Any, schema: str, run_id: str, status: str = "completed") -> dict[str, dict[str, Any]]:
    """Per entity, the metadata of its sync_log row of this run and status (the latest one)."""
    rows = db.execute(
        f"SELECT entity_type, metadata FROM \"{schema}\".sync_log WHERE status = %s AND metadata->>'run_id' = %s"
        " AND action IN ('historical_import', 'incremental_sync') ORDER BY id",
        (status, run_id),
    ).fetchall()
    return dict(rows)


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


def run_killed(entities: list[str], until: Callable[[], bool]) -> None:
    """Run the DAG for `entities` in a worker process of its own and SIGKILL it (its whole
    process group) once `until` holds: a crash mid-entity, the page in flight rolled back."""
    root = Path(__file__).resolve().parents[2]
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.run_dag_proc", json.dumps({"entities": entities})],
        cwd=root, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(until)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


# -- business metric views (daily_transactions_by_outlet, inventory_by_outlet, customer_growth_by_month)
# Computed from the source records as the typed columns hold them: a value that cannot be typed
# is NULL there (None here), the first member present of a column's paths wins.


def _gone(rec: dict[str, Any]) -> bool:
    """Deleted in the store, or removed from its listing (call after a run that reconciled removals)."""
    return bool(rec.get("deleted_at") or rec.get("_removed"))


def _first(rec: dict[str, Any], *paths: str) -> Any:
    for path in paths:
        if path in rec:
            return rec[path]
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        if "_" in value:
            return None
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def _boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        return (
            True if low in {"true", "t", "1", "yes", "y"} else False if low in {"false", "f", "0", "no", "n"} else None
        )
    return None


def _timestamp(value: Any) -> datetime | None:
    try:
        return _ts(value.strip()) if isinstance(value, str) else None
    except ValueError:
        return None


def _known_zone(name: Any) -> str:
    """The outlet's time_zone when it names a zone, else UTC (as the views do)."""
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:
        return "UTC"
    return str(name)


def _status(rec: dict[str, Any], *paths: str) -> str | None:
    value = _first(rec, *paths)
    return value.upper() if isinstance(value, str) else None if value is None else str(value)


def _completed(status: str | None) -> bool:
    return status is not None and (status == "CLOSED" or status.endswith("_CLOSED"))


def expected_daily_transactions(state: dict[str, list[dict[str, Any]]]) -> dict[tuple[Any, Any], dict[str, Any]]:
    """daily_transactions_by_outlet computed from the source records: (local day, outlet_id) -> columns."""
    from zoneinfo import ZoneInfo

    outlets = {o["id"]: o for o in state["outlets"]}  # a deleted outlet keeps its sales, name and zone
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    totals: dict[tuple[Any, Any], list[float]] = {}
    for sale in state["sales"]:
        when = _timestamp(_first(sale, "sale_date", "date"))
        if _gone(sale) or when is None:
            continue
        outlet_id = _first(sale, "outlet_id")
        outlet = outlets.get(outlet_id)
        zone = _known_zone(outlet.get("time_zone")) if outlet else "UTC"
        key = (when.astimezone(ZoneInfo(zone)).date(), outlet_id)
        row = out.setdefault(key, {
            "outlet_name": outlet.get("name") if outlet else None, "time_zone": zone, "sales_count": 0,
            "completed_count": 0, "voided_count": 0, "open_count": 0, "completed_revenue": 0.0,
            "average_sale_value": None, "items_sold": 0.0,
        })  # fmt: skip
        row["sales_count"] += 1
        status = _status(sale, "status", "state")
        if _completed(status):
            row["completed_count"] += 1
            price = _number(_first(sale, "total_price"))
            if price is not None:
                row["completed_revenue"] += price
                totals.setdefault(key, []).append(price)
            for item in sale.get("line_items") or []:
                quantity = _number(item.get("quantity"))
                if quantity is not None and _status(item, "status") != "VOIDED":
                    row["items_sold"] += quantity
        elif status == "VOIDED":
            row["voided_count"] += 1
        else:
            row["open_count"] += 1
    for key, prices in totals.items():
        out[key]["average_sale_value"] = sum(prices) / len(prices)
    return out


def expected_inventory_by_outlet(state: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """inventory_by_outlet computed from the source records: outlet_id -> columns."""
    products = {p["id"]: p for p in state["products"] if not _gone(p)}
    out: dict[str, dict[str, Any]] = {
        o["id"]: {
            "outlet_name": o.get("name"),
            "products_tracked": 0,
            "products_in_stock": 0,
            "units_on_hand": 0.0,
            "stock_value_at_supply_price": 0.0,
            "stock_value_at_retail_price": 0.0,
            "products_low_stock": 0,
        }
        for o in state["outlets"]
        if not _gone(o)
    }
    for inv in state["inventory"]:
        row = out.get(inv.get("outlet_id"))  # type: ignore[arg-type]
        product = products.get(inv.get("product_id"))  # type: ignore[arg-type]
        if _gone(inv) or row is None or product is None:
            continue
        if (
            _boolean(_first(product, "active", "is_active")) is not True
            or _boolean(product.get("has_inventory")) is not True
        ):
            continue
        row["products_tracked"] += 1
        amount = _number(_first(inv, "current_amount", "inventory_level"))
        point = _number(inv.get("reorder_point"))
        if amount is not None and amount > 0:
            row["products_in_stock"] += 1
            row["units_on_hand"] += amount
            for column, price in (("supply", "supply_price"), ("retail", "price_excluding_tax")):
                value = _number(product.get(price))
                if value is not None:
                    row[f"stock_value_at_{column}_price"] += amount * value
        if amount is not None and point is not None and amount <= point:
            row["products_low_stock"] += 1
    return out


def expected_customer_growth(state: dict[str, list[dict[str, Any]]]) -> dict[Any, tuple[int, int, int]]:
    """customer_growth_by_month computed from the source records (UTC months):
    month -> (new_customers, cumulative_customers, first_purchase_customers)."""
    from collections import Counter
    from datetime import date

    def month(when: datetime) -> date:
        when = when.astimezone(UTC)
        return date(when.year, when.month, 1)

    customers = {c["id"]: c for c in state["customers"] if not _gone(c)}
    new = Counter(month(t) for c in customers.values() if (t := _timestamp(c.get("created_at"))) is not None)
    first: dict[str, datetime] = {}
    for sale in state["sales"]:
        when = _timestamp(_first(sale, "sale_date", "date"))
        customer = sale.get("customer_id")
        if _gone(sale) or when is None or customer not in customers or not _completed(_status(sale, "status", "state")):
            continue
        first[customer] = min(first.get(customer, when), when)
    buyers = Counter(month(t) for t in first.values())
    months = sorted({*new, *buyers})
    out: dict[Any, tuple[int, int, int]] = {}
    if not months:
        return out
    current, cumulative = months[0], 0
    while current <= months[-1]:
        cumulative += new[current]
        out[current] = (new[current], cumulative, buyers[current])
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return out


DAILY_TRANSACTION_COLUMNS = (
    "outlet_name", "time_zone", "sales_count", "completed_count", "voided_count", "open_count",
    "completed_revenue", "average_sale_value", "items_sold",
)  # fmt: skip
INVENTORY_COLUMNS = (
    "outlet_name", "products_tracked", "products_in_stock", "units_on_hand", "stock_value_at_supply_price",
    "stock_value_at_retail_price", "products_low_stock",
)  # fmt: skip
_AMOUNTS = frozenset({
    "completed_revenue", "average_sale_value", "items_sold", "units_on_hand", "stock_value_at_supply_price",
    "stock_value_at_retail_price",
})  # fmt: skip


def _same_row(view: str, key: Any, have: dict[str, Any], want: dict[str, Any]) -> None:
    """Counts and names exactly; amounts (NUMERIC in the view, float sums here) to 1e-6."""
    assert have.keys() == want.keys(), (view, key)
    for column, value in want.items():
        got = have[column]
        if column in _AMOUNTS and got is not None and value is not None:
            same = math.isclose(float(got), value, rel_tol=1e-9, abs_tol=1e-6)
        else:
            same = got == value
        assert same, (view, key, column, got, value)


def _view(db: Any, schema: str, view: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> dict[Any, Any]:
    rows = db.execute(f'SELECT {", ".join(keys + columns)} FROM "{schema}"."{view}"').fetchall()
    out = {r[: len(keys)] if len(keys) > 1 else r[0]: dict(zip(columns, r[len(keys) :], strict=True)) for r in rows}
    assert len(out) == len(rows), f"{view}: a key appears twice"
    return out


def assert_business_views_match(db: Any, schema: str, state: dict[str, list[dict[str, Any]]]) -> None:
    """Every row of the three business views equals what the source records give, and the views
    agree with daily_sales_summary and low_stock_products."""
    days = _view(db, schema, "daily_transactions_by_outlet", ("sale_date", "outlet_id"), DAILY_TRANSACTION_COLUMNS)
    want_days = expected_daily_transactions(state)
    assert days.keys() == want_days.keys(), (sorted(days.keys() - want_days.keys())[:5],
                                             sorted(want_days.keys() - days.keys())[:5])  # fmt: skip
    for key, want in want_days.items():
        _same_row("daily_transactions_by_outlet", key, days[key], want)
    summary = db.execute(
        f'SELECT sale_date, outlet_id, transaction_count, total_revenue FROM "{schema}".daily_sales_summary'
    ).fetchall()
    assert {(d, o): (n, r) for d, o, n, r in summary} == {
        k: (v["completed_count"], v["completed_revenue"]) for k, v in days.items() if v["completed_count"]
    }

    stock = _view(db, schema, "inventory_by_outlet", ("outlet_id",), INVENTORY_COLUMNS)
    want_stock = expected_inventory_by_outlet(state)
    assert stock.keys() == want_stock.keys()
    for key, want in want_stock.items():
        _same_row("inventory_by_outlet", key, stock[key], want)
    low = db.execute(f'SELECT outlet_id, count(*) FROM "{schema}".low_stock_products GROUP BY 1').fetchall()
    assert {o: n for o, n in low if o in stock} == {
        o: v["products_low_stock"] for o, v in stock.items() if v["products_low_stock"]
    }

    rows = db.execute(
        "SELECT month, new_customers, cumulative_customers, first_purchase_customers"
        f' FROM "{schema}".customer_growth_by_month'
    ).fetchall()
    growth = {r[0]: tuple(r[1:]) for r in rows}
    assert len(growth) == len(rows), "customer_growth_by_month: a month appears twice"
    assert growth == expected_customer_growth(state)
