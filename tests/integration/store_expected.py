"""The five store views (stock_movements, inventory_value_by_outlet, gift_card_liability,
store_credit_liability, promotion_performance) computed in Python from the simulator's records.

Independent of the database and of the sync's code: the records are read as the API version serves
them (`simulator.state(api_version)`), each value typed by the mapping's documented rule (a value
that cannot be typed is NULL, the first member present of a column's paths wins), then the rules of
each view's header are applied. Decimal arithmetic throughout, so the figures equal PostgreSQL's
NUMERIC ones exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from tests.integration.helpers import _boolean as typed_boolean
from tests.integration.helpers import _gone, _known_zone

Records = dict[str, list[dict[str, Any]]]
Row = dict[str, Any]

_EXACT = Context(prec=2000)  # wide enough that no sum or product here is rounded (NUMERIC is exact)
_MISSING = object()
# The views' reading of an amount kept in `data` (a promotion's amount, a sale line item's cost).
_PLAIN_DECIMAL = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)")
COMPLETED_SUFFIX = "_CLOSED"
INBOUND = frozenset({"received", "transferred_in", "stocktake_gain"})


# -- the mapping's typing rules, restated ----------------------------------------------------------


def member(record: Any, *paths: str) -> Any:
    """The value of the first dotted member path present in `record` (None when none is)."""
    for path in paths:
        value: Any = record
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                value = _MISSING
                break
            value = value[part]
        if value is not _MISSING:
            return value
    return None


def typed_numeric(value: Any) -> Decimal | None:
    """A NUMERIC column's value: a JSON number, or a string Decimal reads (trimmed, no `_`,
    finite, exponent within 100 000); else NULL."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if not isinstance(value, str) or "_" in value:
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number.adjusted()) <= 100_000 else None


def typed_text(value: Any, *, upper: bool = False) -> str | None:
    """A TEXT column's value: a string as it is (upper-cased for `upper` columns), a number or a
    boolean as text; anything else NULL."""
    if isinstance(value, str):
        return value.upper() if upper else value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def typed_time(value: Any) -> datetime | None:
    """A TIMESTAMPTZ column's value: ISO 8601, taken as UTC without a zone; else NULL."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def json_amount(value: Any) -> Decimal | None:
    """An amount the views read from `data`: a JSON number, or a string in plain decimal notation
    of at most 1000 characters; anything else (null, "n/a", "1e3", " 5") is unknown."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return typed_numeric(value)
    if isinstance(value, str) and len(value) <= 1000 and _PLAIN_DECIMAL.fullmatch(value):
        return Decimal(value)
    return None


def _completed(status: str | None) -> bool:
    return status is not None and (status == "CLOSED" or status.endswith(COMPLETED_SUFFIX))


def _zones(state: Records) -> dict[str, str]:
    """Each outlet's zone as the views use it: its time_zone when it names a zone, else UTC (a
    deleted outlet keeps its zone)."""
    out = {}
    for outlet in state["outlets"]:
        if isinstance(outlet.get("id"), str):
            out[outlet["id"]] = _known_zone(typed_text(outlet.get("time_zone")))
    return out


def _local_day(when: datetime, zone: str) -> date:
    return when.astimezone(ZoneInfo(zone)).date()


def _month(when: datetime) -> date:
    when = when.astimezone(UTC)
    return date(when.year, when.month, 1)


def _sales(state: Records) -> Iterable[tuple[dict[str, Any], str, datetime]]:
    """Completed sales not deleted, with a sale date and an outlet: (sale, outlet_id, sale_date),
    from either API version's shape."""
    for sale in state["sales"]:
        if not isinstance(sale, dict) or _gone(sale):
            continue
        status = typed_text(member(sale, "status", "state"), upper=True)
        when = typed_time(member(sale, "sale_date", "date"))
        outlet = typed_text(member(sale, "outlet_id", "source.outlet_id"))
        if _completed(status) and when is not None and outlet is not None:
            yield sale, outlet, when


def _line_items(sale: dict[str, Any]) -> Iterable[tuple[int, dict[str, Any]]]:
    """A sale's line items that are objects and not VOIDED, with their positions."""
    items = sale.get("line_items")
    if not isinstance(items, list):
        return
    for position, item in enumerate(items):
        if isinstance(item, dict) and typed_text(item.get("status"), upper=True) != "VOIDED":
            yield position, item


# -- stock_movements -------------------------------------------------------------------------------


def expected_stock_movements(state: Records) -> dict[tuple[date, str, str, str], Row]:
    """stock_movements: (day, outlet_id, product_id, movement_type) -> the other columns."""
    zones = _zones(state)
    consignments = {c["id"]: c for c in state["consignments"] if not _gone(c)}
    # (outlet, product, when, movement type, quantity, unit cost) per source line
    moves: list[tuple[str | None, str | None, datetime | None, str, Decimal | None, Decimal | None]] = []
    with localcontext(_EXACT):
        for line in state["consignment_products"]:
            parent = consignments.get(line.get("_parent"))
            if parent is None or _gone(line):
                continue
            kind = typed_text(parent.get("type"), upper=True)
            status = typed_text(parent.get("status"), upper=True)
            when = typed_time(parent.get("received_at")) or typed_time(parent.get("consignment_date"))
            outlet, source = typed_text(parent.get("outlet_id")), typed_text(parent.get("source_outlet_id"))
            product = typed_text(line.get("product_id"))
            count, received = typed_numeric(line.get("count")), typed_numeric(line.get("received"))
            cost = typed_numeric(line.get("cost"))
            if kind == "SUPPLIER" and status == "RECEIVED":
                moves.append((outlet, product, when, "received", received, cost))
            elif kind == "OUTLET" and status == "RECEIVED":
                moves.append((outlet, product, when, "transferred_in", received, cost))
                moves.append((source, product, when, "transferred_out", received, cost))
            elif kind == "RETURN" and status in ("SENT", "RECEIVED"):
                moves.append((outlet, product, when, "returned", count, cost))
            elif kind == "STOCKTAKE" and status in ("STOCKTAKE_COMPLETE", "CLOSED") and received is not None:
                diff = received - (count if count is not None else Decimal(0))
                kind_of = "stocktake_gain" if diff > 0 else "stocktake_loss"
                moves.append((outlet, product, when, kind_of, abs(diff), cost))
        for sale, outlet, when in _sales(state):
            for _, item in _line_items(sale):
                product = typed_text(member(item, "product_id", "product.id"))
                cost = json_amount(member(item, "cost", "pricing.cost"))
                moves.append((outlet, product, when, "sold", typed_numeric(item.get("quantity")), cost))

        out: dict[tuple[date, str, str, str], Row] = {}
        for outlet, product, when, kind, quantity, cost in moves:
            if outlet is None or product is None or when is None or quantity is None or quantity == 0:
                continue
            zone = zones.get(outlet, "UTC")
            row = out.setdefault(
                (_local_day(when, zone), outlet, product, kind),
                {"quantity": Decimal(0), "cost": None, "lines": 0, "lines_without_cost": 0, "time_zone": zone},
            )
            row["quantity"] += quantity
            row["lines"] += 1
            if cost is None:
                row["lines_without_cost"] += 1
            else:
                row["cost"] = (row["cost"] or Decimal(0)) + quantity * cost
        for (_, _, _, kind), row in out.items():
            row["stock_change"] = row["quantity"] if kind in INBOUND else -row["quantity"]
    return out


# -- inventory_value_by_outlet ---------------------------------------------------------------------


def expected_inventory_value(state: Records) -> dict[str, Row]:
    """inventory_value_by_outlet: outlet_id -> the other columns (inventory_by_outlet's rows)."""
    products = {p["id"]: p for p in state["products"] if not _gone(p)}
    out: dict[str, Row] = {}
    with localcontext(_EXACT):
        for outlet in state["outlets"]:
            if not _gone(outlet):
                out[outlet["id"]] = {
                    "outlet_name": typed_text(outlet.get("name")),
                    "units_on_hand": Decimal(0),
                    "value_at_average_cost": Decimal(0),
                    "value_at_supply_price": Decimal(0),
                    "units_valued_at_average_cost": Decimal(0),
                    "units_valued_at_supply_price": Decimal(0),
                    "units_without_cost": Decimal(0),
                }
        for inv in state["inventory"]:
            row = out.get(typed_text(inv.get("outlet_id")) or "")
            product = products.get(typed_text(inv.get("product_id")) or "")
            if _gone(inv) or row is None or product is None:
                continue
            if typed_boolean(member(product, "active", "is_active")) is not True:
                continue
            if typed_boolean(product.get("has_inventory")) is not True:
                continue
            units = typed_numeric(member(inv, "current_amount", "inventory_level", "current_inventory_level"))
            if units is None or units <= 0:
                continue
            row["units_on_hand"] += units
            average, supply = typed_numeric(inv.get("average_cost")), typed_numeric(product.get("supply_price"))
            if average is not None:
                row["value_at_average_cost"] += units * average
                row["units_valued_at_average_cost"] += units
                row.setdefault("bases", set()).add("average_cost")
            elif supply is not None:
                row["value_at_supply_price"] += units * supply
                row["units_valued_at_supply_price"] += units
                row.setdefault("bases", set()).add("supply_price")
            else:
                row["units_without_cost"] += units
        for row in out.values():
            bases = row.pop("bases", set())
            row["value"] = row["value_at_average_cost"] + row["value_at_supply_price"]
            row["value_basis"] = "mixed" if len(bases) == 2 else next(iter(bases)) if bases else "none"
    return out


# -- gift_card_liability and store_credit_liability ------------------------------------------------

# Which column a transaction type's absolute amount goes to; other types are taken as signed.
GIFT_CARD_KINDS = {
    "ACTIVATION": "issued", "RELOADING": "issued", "IMPORTING": "issued", "REDEEMING": "redeemed",
    "VOIDING": "voided", "EXPIRING": "expired",
}  # fmt: skip
STORE_CREDIT_KINDS = {"ISSUE": "issued", "REDEMPTION": "redeemed"}
_REDUCING = ("redeemed", "voided", "expired")


def _liability(
    parents: list[dict[str, Any]], transactions: str, kinds: dict[str, str], columns: tuple[str, ...], current: Decimal
) -> dict[date, Row]:
    """The monthly roll-forward of the transactions embedded in `parents` (the live ones)."""
    per_month: dict[date, Row] = {}
    with localcontext(_EXACT):
        for parent in parents:
            items = parent.get(transactions)
            for item in items if isinstance(items, list) else []:
                item = item if isinstance(item, dict) else {}
                when = typed_time(item.get("created_at"))
                if when is None:
                    continue
                row = per_month.setdefault(_month(when), {
                    **{c: Decimal(0) for c in columns}, "other_change": Decimal(0), "transaction_count": 0,
                    "transactions_without_amount": 0,
                })  # fmt: skip
                row["transaction_count"] += 1
                amount = typed_numeric(item.get("amount"))
                if amount is None:
                    row["transactions_without_amount"] += 1
                    continue
                column = kinds.get(typed_text(item.get("type"), upper=True) or "")
                if column is None:
                    row["other_change"] += amount
                else:
                    row[column] += abs(amount)
        out: dict[date, Row] = {}
        if not per_month:
            return out
        month, last, closing = min(per_month), max(per_month), Decimal(0)
        while month <= last:
            row = per_month.get(month) or {
                **{c: Decimal(0) for c in columns}, "other_change": Decimal(0), "transaction_count": 0,
                "transactions_without_amount": 0,
            }  # fmt: skip
            net = sum((-row[c] if c in _REDUCING else row[c] for c in columns), Decimal(0)) + row["other_change"]
            out[month] = {
                **row, "net_change": net, "opening_liability": closing, "closing_liability": closing + net,
                "current_balance_total": current if month == last else None,
            }  # fmt: skip
            closing += net
            month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return out


def expected_gift_card_liability(state: Records) -> dict[date, Row]:
    """gift_card_liability: month -> the other columns, from the live cards' transactions."""
    cards = [c for c in state["gift_cards"] if not _gone(c) and isinstance(c.get("id"), str)]
    with localcontext(_EXACT):
        current = sum(
            (
                balance
                for c in cards
                if typed_text(c.get("status"), upper=True) not in ("VOIDED", "EXPIRED")
                and (balance := typed_numeric(c.get("balance"))) is not None
            ),
            Decimal(0),
        )
    columns = ("issued", "redeemed", "voided", "expired")
    return _liability(cards, "gift_card_transactions", GIFT_CARD_KINDS, columns, current)


def expected_store_credit_liability(state: Records) -> dict[date, Row]:
    """store_credit_liability: month -> the other columns, from the live records' transactions
    (a record is keyed by its customer_id; one without a usable one is never stored)."""
    credits = [c for c in state["store_credits"] if not _gone(c) and typed_text(c.get("customer_id"))]
    with localcontext(_EXACT):
        current = sum(
            (b for c in credits if (b := typed_numeric(c.get("balance"))) is not None),
            Decimal(0),
        )
    return _liability(credits, "store_credit_transactions", STORE_CREDIT_KINDS, ("issued", "redeemed"), current)


# -- promotion_performance -------------------------------------------------------------------------


def expected_promotion_performance(state: Records) -> dict[tuple[date, str, str], Row]:
    """promotion_performance: (day, outlet_id, promotion_id) -> the other columns, from the
    `promotions` arrays of completed sales' line items."""
    zones = _zones(state)
    names = {p["id"]: typed_text(p.get("name")) for p in state["promotions"] if not _gone(p)}
    # (sale, line position, promotion) -> (day, outlet, quantity, known amounts, unknown amounts)
    lines: dict[tuple[str, int, str], list[Any]] = {}
    with localcontext(_EXACT):
        for sale, outlet, when in _sales(state):
            for position, item in _line_items(sale):
                elements = item.get("promotions")
                for element in elements if isinstance(elements, list) else []:
                    if not isinstance(element, dict) or not isinstance(element.get("id"), str) or not element["id"]:
                        continue
                    zone = zones.get(outlet, "UTC")
                    entry = lines.setdefault(
                        (sale["id"], position, element["id"]),
                        [_local_day(when, zone), outlet, typed_numeric(item.get("quantity")), [], 0],
                    )
                    amount = json_amount(element.get("amount"))
                    if amount is None:
                        entry[4] += 1
                    else:
                        entry[3].append(amount)
        out: dict[tuple[date, str, str], Row] = {}
        for (sale_id, _, promotion), (day, outlet, quantity, amounts, unknown) in lines.items():
            row = out.setdefault((day, outlet, promotion), {
                "promotion_name": names.get(promotion), "time_zone": zones.get(outlet, "UTC"), "sales": set(),
                "line_items": 0, "units": Decimal(0), "discount": Decimal(0), "amounts_unknown": 0,
            })  # fmt: skip
            row["sales"].add(sale_id)
            row["line_items"] += 1
            row["units"] += quantity if quantity is not None else Decimal(0)
            row["discount"] += sum(amounts, Decimal(0))
            row["amounts_unknown"] += unknown
        for row in out.values():
            row["sales_count"] = len(row.pop("sales"))
    return out


# -- purchase_order_pipeline -----------------------------------------------------------------------

PO_CLOSED = frozenset({"RECEIVED", "CANCELLED", "CLOSED"})


def expected_purchase_order_pipeline(state: Records, now: datetime) -> dict[str, Row]:
    """purchase_order_pipeline: purchase order id -> the other columns, for the open orders (not
    gone, status not RECEIVED/CANCELLED/CLOSED); per line, outstanding = max(ordered - what its
    RECEIVED deliveries brought, 0), costed at the line's cost_price where it has one."""
    orders = {po["id"]: po for po in state["purchase_orders"] if not _gone(po)}
    deliveries = {
        d["id"]
        for d in state["purchase_order_deliveries"]
        if not _gone(d) and d["_parent"] in orders and typed_text(d.get("status"), upper=True) == "RECEIVED"
    }
    received: dict[str, Decimal] = {}
    with localcontext(_EXACT):
        for dli in state["purchase_order_delivery_line_items"]:
            if _gone(dli) or dli["_parent"] not in deliveries:
                continue
            line = typed_text(dli.get("purchase_order_line_item_id")) or ""
            received[line] = received.get(line, Decimal(0)) + (typed_numeric(dli.get("received_quantity")) or 0)
        suppliers = {s["id"]: s for s in state["suppliers"]}
        outlets = {o["id"]: o for o in state["outlets"]}
        out: dict[str, Row] = {}
        for po in orders.values():
            status = typed_text(po.get("status"), upper=True)
            if status in PO_CLOSED:
                continue
            lines = [li for li in state["purchase_order_line_items"] if li["_parent"] == po["id"] and not _gone(li)]
            ordered = got = outstanding = Decimal(0)
            cost: Decimal | None = None
            without_cost = 0
            for li in lines:
                qty = typed_numeric(li.get("quantity")) or Decimal(0)
                came = received.get(li["id"], Decimal(0))
                left = max(qty - came, Decimal(0))
                ordered, got, outstanding = ordered + qty, got + came, outstanding + left
                price = typed_numeric(li.get("cost_price"))
                if price is not None:
                    cost = (cost or Decimal(0)) + left * price
                elif left > 0:
                    without_cost += 1
            due = typed_time(po.get("due_at"))
            late = due is not None and due < now and outstanding > 0
            supplier = suppliers.get(typed_text(po.get("supplier_id")) or "")
            outlet = outlets.get(typed_text(po.get("delivery_outlet_id")) or "")
            out[po["id"]] = {
                "order_number": typed_text(po.get("order_number")),
                "status": status,
                "supplier_id": typed_text(po.get("supplier_id")),
                "supplier_name": typed_text(supplier.get("name")) if supplier else None,
                "outlet_id": typed_text(po.get("delivery_outlet_id")),
                "outlet_name": typed_text(outlet.get("name")) if outlet else None,
                "due_at": due,
                "overdue": late,
                "days_overdue": (now - due).days if late and due is not None else 0,
                "lines": len(lines),
                "quantity_ordered": ordered,
                "quantity_received": got,
                "quantity_outstanding": outstanding,
                "cost_outstanding": cost,
                "lines_without_cost": without_cost,
            }
    return out
