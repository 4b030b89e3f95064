"""The store views (stock_movements, inventory_value_by_outlet, gift_card_liability,
store_credit_liability, promotion_performance, purchase_order_pipeline) against the figures computed in Python from the
simulator's records (tests/integration/store_expected.py), through real DAG runs over HTTP: every
row of every view, before and after the store changes and odd records arrive."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from lightspeed_pipeline.entities import V2

from devtools.simproc import SimulatorProcess
from tests.conftest import TOKEN
from tests.integration.helpers import run_dag
from tests.integration.store_expected import (
    Records,
    Row,
    expected_gift_card_liability,
    expected_inventory_value,
    expected_promotion_performance,
    expected_purchase_order_pipeline,
    expected_stock_movements,
    expected_store_credit_liability,
    member,
    typed_text,
)

# Each view and the columns that make a row's key.
STORE_VIEWS: dict[str, tuple[str, ...]] = {
    "stock_movements": ("day", "outlet_id", "product_id", "movement_type"),
    "inventory_value_by_outlet": ("outlet_id",),
    "gift_card_liability": ("month",),
    "store_credit_liability": ("month",),
    "promotion_performance": ("day", "outlet_id", "promotion_id"),
    "purchase_order_pipeline": ("purchase_order_id",),
}
MOVEMENT_TYPES = {
    "received", "transferred_in", "transferred_out", "returned", "stocktake_gain", "stocktake_loss", "sold",
}  # fmt: skip
# Three outlets (Sydney, New York, London: local days differ from UTC days both ways) and enough
# consignments that every kind and status occurs, with lines without a count among them.
SCALE = (
    "outlets=3,registers=6,customers=120,sales=300,consignments=40,consignment_products=240,"
    "gift_cards=40,store_credits=20,promotions=5,purchase_orders=30"
)


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(token=TOKEN, scale=SCALE)
    yield sim
    sim.stop()


# -- reading and comparing the views ---------------------------------------------------------------


def read_view(db: Any, schema: str, view: str) -> dict[Any, Row]:
    """Every row of `view` by its key (a tuple, or the one key column's value)."""
    cur = db.execute(f'SELECT * FROM "{schema}"."{view}"')
    names = [d.name for d in cur.description]
    out: dict[Any, Row] = {}
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        key = tuple(row.pop(k) for k in STORE_VIEWS[view])
        key = key if len(key) > 1 else key[0]
        assert key not in out, f"{view}: the key {key} appears twice"
        out[key] = row
    return out


def expected_views(state: Records, api_version: str) -> dict[str, dict[Any, Row]]:
    """What each view must hold for the records as `api_version` serves them. Gift cards and store
    credit exist only from 2026-07 on: a 2.0 sync never reads them, so their views stay empty."""
    dated = api_version != V2
    return {
        "stock_movements": expected_stock_movements(state),
        "inventory_value_by_outlet": expected_inventory_value(state),
        "gift_card_liability": expected_gift_card_liability(state) if dated else {},
        "store_credit_liability": expected_store_credit_liability(state) if dated else {},
        "promotion_performance": expected_promotion_performance(state),
        # Purchase orders exist from 2026-04 on; `now` as the view reads it (a day boundary
        # passing between the two is the one race, and a day is long).
        "purchase_order_pipeline": expected_purchase_order_pipeline(state, datetime.now(UTC)) if dated else {},
    }


def assert_store_views_match(db: Any, schema: str, state: Records, api_version: str) -> dict[str, dict[Any, Row]]:
    """Every row of the five views equals the computed one, column for column (NUMERIC exactly);
    returns the expected rows."""
    wants = expected_views(state, api_version)
    for view, want in wants.items():
        have = read_view(db, schema, view)
        assert have.keys() == want.keys(), (
            view,
            f"missing {sorted(want.keys() - have.keys(), key=str)[:5]}",
            f"extra {sorted(have.keys() - want.keys(), key=str)[:5]}",
        )
        for key, row in want.items():
            got = have[key]
            assert got == row, (
                view,
                key,
                {c: (got.get(c), row.get(c)) for c in {*got, *row} if got.get(c) != row.get(c)},
            )
    units = dict(db.execute(f'SELECT outlet_id, units_on_hand FROM "{schema}".inventory_by_outlet').fetchall())
    assert {o: r["units_on_hand"] for o, r in wants["inventory_value_by_outlet"].items()} == units
    return wants


# -- records for the store to serve ----------------------------------------------------------------


def _live(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if not r.get("_removed") and not r.get("deleted_at")]


def _top_version(state: Records) -> int:
    """The highest version of any record (a 2026-07 sale keeps its version in `_metadata`)."""
    versions = [member(r, "version", "_metadata.version") for records in state.values() for r in records]
    return max(v for v in versions if isinstance(v, int))


def _sale(base: dict[str, Any], sale_id: str, items: list[Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` (a sale in either version's shape) with its own id, invoice and items."""
    sale = copy.deepcopy(base)
    sale.update(id=sale_id, invoice_number=f"INV-{sale_id}", line_items=items, **changes)
    return sale


def _item(base: dict[str, Any], api_version: str, **changes: Any) -> dict[str, Any]:
    """A copy of line item `base`; `product` and `cost` go where the version keeps them."""
    item = copy.deepcopy(base)
    if "product" in changes:
        product = changes.pop("product")
        item.update({"product_id": product} if api_version == V2 else {"product": {"id": product}})
    if "cost" in changes:
        cost = changes.pop("cost")
        item.update({"cost": cost} if api_version == V2 else {"pricing": {**item.get("pricing", {}), "cost": cost}})
    item.update(changes)
    return item


def _completed_bases(sales: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed sales with two line items or more, in both shapes, one per outlet first."""
    closed = sorted(
        (s for s in _live(sales) if typed_text(member(s, "status", "state"), upper=True) == "CLOSED"),
        key=lambda s: s["id"],
    )
    closed = [s for s in closed if len(s["line_items"]) >= 2]
    by_outlet = {member(s, "outlet_id", "source.outlet_id"): s for s in reversed(closed)}
    return list(by_outlet.values()) + closed


def promotion(element_of: dict[str, Any], amount: Any, **extra: Any) -> dict[str, Any]:
    """A `LineItemPromotion` of the 2026-07 description: {id, name, amount, promo_code, promo_code_id}."""
    return {"id": element_of["id"], "name": element_of.get("name"), "amount": amount, **extra}


def promotion_sales_first(state: Records) -> list[dict[str, Any]]:
    """2026-07 sales whose line items carry promotions, for the first import: two outlets, one
    promotion on several items, two on one item, a voided item and a parked sale (neither counts)."""
    bases = _completed_bases(state["sales"])
    first, second, third = bases[0], bases[1], bases[2]
    a, b = sorted(_live(state["promotions"]), key=lambda p: p["id"])[:2]
    v = "2026-07"
    voided = _item(second["line_items"][1], v, status="VOIDED", promotions=[promotion(a, 100)])
    return [
        _sale(first, "promo-sale-1", [
            _item(first["line_items"][0], v, promotions=[promotion(a, 2.5)]),
            _item(first["line_items"][1], v, promotions=[promotion(a, "1.25"), promotion(b, 3)]),
        ]),
        _sale(second, "promo-sale-2", [_item(second["line_items"][0], v, promotions=[promotion(a, 4)]), voided]),
        _sale(third, "promo-sale-3", [_item(third["line_items"][0], v, promotions=[promotion(b, 9)])],
              state="parked", attributes=[]),
    ]  # fmt: skip


def promotion_sales_later(state: Records) -> list[dict[str, Any]]:
    """Odd promotion elements: an amount as a decimal string, null, not a number; an element that
    is not an object, one without an id, an empty id, a promotion nobody lists, the same promotion
    twice on an item, a returned item, a quantity that cannot be typed; and every promotion of the
    store (a removed one's name is then unknown)."""
    bases = _completed_bases(state["sales"])
    first, second = bases[0], bases[1]
    promotions = sorted(state["promotions"], key=lambda p: p["id"])
    a, b = promotions[0], promotions[1]
    v = "2026-07"
    li = first["line_items"]
    odd = [
        promotion(a, "3.50", promo_code="SAVE10", promo_code_id="code-1"), promotion(b, None), "SPRING",
        {"name": "no id", "amount": 1}, {"id": "", "amount": 1}, promotion({"id": "promo-not-listed"}, "n/a"),
    ]  # fmt: skip
    return [
        _sale(first, "promo-sale-4", [
            _item(li[0], v, promotions=odd),
            _item(li[1], v, promotions=[promotion(a, 1), promotion(a, "0.75")]),
            _item(li[0], v, id="promo-return", quantity=-1, promotions=[promotion(a, -2.5)]),
            _item(li[1], v, id="promo-two", quantity="two", promotions=[promotion(b, 6)]),
        ]),
        _sale(second, "promo-sale-5", [
            _item(second["line_items"][0], v, promotions=[promotion(p, 1) for p in promotions]),
        ]),
    ]  # fmt: skip


def odd_sales(state: Records, api_version: str) -> list[dict[str, Any]]:
    """Sales with values the typed columns cannot hold or that are left out: a decimal-string
    quantity, a cost that is not a number, an item without a product, an item that is not an
    object, a lower-case status, a returned item with a string cost, a sale without a usable date;
    the first one at the outlet whose time zone PostgreSQL does not know (`odd_stock`: days in UTC)."""
    base = _completed_bases(state["sales"])[3]
    li = base["line_items"]
    items = [
        _item(li[0], api_version, quantity="2.5", cost="n/a"),
        _item(li[1], api_version, product=None),
        "junk",
        _item(li[0], api_version, id="odd-return", quantity=-1, cost="12.25"),
    ]
    if api_version == V2:
        return [
            _sale(base, "odd-sale-1", items, status="closed", outlet_id="odd-outlet-1"),
            _sale(base, "odd-sale-2", items, status="LAYBY_CLOSED", sale_date="soon"),
        ]
    source = {**base["source"], "outlet_id": "odd-outlet-1"}
    return [
        _sale(base, "odd-sale-1", items, state="CLOSED", source=source),
        _sale(base, "odd-sale-2", items, date="soon"),
    ]


def odd_consignment_lines(state: Records) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Consignment product lines with odd values, each replacing a line of a done consignment (same
    `_key`: the simulator lists it in its place; its own `id` makes it a record `inject` takes),
    and their consignments (re-sent, so their new versions make the sync read the lines again)."""
    consignments = {c["id"]: c for c in _live(state["consignments"])}
    lines = sorted(_live(state["consignment_products"]), key=lambda line: line["_key"])

    def lines_of(kind: str, status: str) -> list[dict[str, Any]]:
        return [
            line
            for line in lines
            if consignments.get(line["_parent"], {}).get("type") == kind
            and consignments[line["_parent"]]["status"] == status
        ]

    stocktake = lines_of("STOCKTAKE", "STOCKTAKE_COMPLETE")
    received = lines_of("SUPPLIER", "RECEIVED")
    returned = lines_of("RETURN", "SENT")
    odd = [
        {**stocktake[0], "id": "odd-line-1", "count": "abc"},  # no count: counts as 0
        {**stocktake[1], "id": "odd-line-2", "count": "-4.00000", "received": " 2.5 "},  # below zero; spaces
        {**received[0], "id": "odd-line-3", "received": "3.50000", "cost": "n/a"},  # no cost
        {**received[1], "id": "odd-line-4", "received": None},  # no quantity: left out
        {**returned[0], "id": "odd-line-5", "count": "7", "cost": None},
    ]
    parents = [consignments[p] for p in dict.fromkeys(line["_parent"] for line in odd)]
    return odd, parents


def odd_stock(state: Records) -> dict[str, list[dict[str, Any]]]:
    """Stock the views value one way only: an outlet (in a zone nobody knows) whose stock has no
    average cost (supply price), one whose product has no usable cost at all; stock below zero and
    at zero; an average cost of 0 (a cost) as a string, in an outlet of the store."""
    products = sorted(
        (p for p in _live(state["products"]) if p["active"] and p["has_inventory"]), key=lambda p: p["id"]
    )
    shop = sorted(_live(state["outlets"]), key=lambda o: o["id"])[0]
    outlets = [
        {**shop, "id": "odd-outlet-1", "name": "Pop-up ☂", "time_zone": "Mars/Olympus"},
        {**shop, "id": "odd-outlet-2", "name": "Warehouse"},
    ]
    product = {**products[0], "id": "odd-product", "sku": "ODD-SKU", "supply_price": "unknown"}
    inventory = [
        {"id": "odd-inv-1", "product_id": products[0]["id"], "outlet_id": "odd-outlet-1", "inventory_level": 4},
        {"id": "odd-inv-2", "product_id": "odd-product", "outlet_id": "odd-outlet-1", "inventory_level": "-3"},
        {"id": "odd-inv-3", "product_id": "odd-product", "outlet_id": "odd-outlet-2", "inventory_level": "2.5"},
        {"id": "odd-inv-4", "product_id": products[1]["id"], "outlet_id": "odd-outlet-2", "inventory_level": 0,
         "average_cost": 3},
        {"id": "odd-inv-5", "product_id": products[2]["id"], "outlet_id": shop["id"], "inventory_level": 3,
         "average_cost": "0"},
    ]  # fmt: skip
    return {"outlets": outlets, "products": [product], "inventory": inventory}


def odd_store_credits(state: Records) -> list[dict[str, Any]]:
    """Store credit records the simulator would not make: a decimal-string amount, a lower-case
    type, a redemption sent positive, a reversal, amounts that are null or not a number, a
    transaction without a usable date or type, one that is not an object, a balance that is not a
    number, and transactions that are not a list."""
    holders = {c["customer_id"] for c in state["store_credits"]}
    free = sorted(c["id"] for c in _live(state["customers"]) if c["id"] not in holders)
    transactions = [
        {"id": "sc-1", "type": "issue", "amount": "30.00", "created_at": "2024-03-05T10:00:00Z"},
        {"id": "sc-2", "type": "REDEMPTION", "amount": 12.5, "created_at": "2024-03-06T10:00:00+10:00"},
        {"id": "sc-3", "type": "REVERSE", "amount": -2, "created_at": "2024-04-01T00:30:00+02:00"},  # March in UTC
        {"id": "sc-4", "type": "ISSUE", "amount": "abc", "created_at": "2024-04-02T00:00:00Z"},
        {"id": "sc-5", "type": "ISSUE", "amount": None, "created_at": "2024-04-02T00:00:00Z"},
        {"id": "sc-6", "type": "ISSUE", "amount": 5, "created_at": "not a date"},
        {"id": "sc-7", "amount": 1.5, "created_at": "2023-12-31T23:59:59-01:00"},  # January in UTC
        "junk",
    ]
    return [
        {"customer_id": free[0], "balance": 17.5, "total_credit_issued": 30, "total_credit_redeemed": 12.5,
         "created_at": "2024-03-05T10:00:00Z", "store_credit_transactions": transactions},
        {"id": "odd-credit", "customer_id": free[1], "balance": "n/a", "total_credit_issued": 0,
         "total_credit_redeemed": 0, "created_at": "2024-03-05T10:00:00Z", "store_credit_transactions": "none"},
    ]  # fmt: skip


def odd_gift_cards() -> list[dict[str, Any]]:
    """Gift cards the simulator would not make: amounts that are numbers, null or not a number, a
    lower-case type, a reversal and an expiry, a voided card with a balance left (the view leaves it
    out of the current total), a balance that is not a number."""
    transactions = [
        {"id": "gt-1", "type": "activation", "amount": "50.00", "created_at": "2024-02-01T10:00:00Z"},
        {"id": "gt-2", "type": "REDEEMING", "amount": 20, "created_at": "2024-02-03T10:00:00Z"},  # sent positive
        {"id": "gt-3", "type": "REVERSING", "amount": "-1.25", "created_at": "2024-02-04T10:00:00Z"},
        {"id": "gt-4", "type": "REDEEMING", "amount": "twenty", "created_at": "2024-02-05T10:00:00Z"},
        {"id": "gt-5", "type": "RELOADING", "amount": None, "created_at": "2024-02-06T10:00:00Z"},
        {"id": "gt-6", "type": "EXPIRING", "amount": "-3.00", "created_at": "2024-05-06T10:00:00Z"},
    ]
    return [
        {"id": "odd-card-1", "number": "9999", "status": "ACTIVE", "balance": "25.75", "total_sold": "50.00",
         "total_redeemed": "20.00", "expires_at": None, "sale_id": None, "sale_source": "api",
         "created_at": "2024-02-01T10:00:00Z", "gift_card_transactions": transactions},
        {"id": "odd-card-2", "number": "9998", "status": "VOIDED", "balance": "5.00", "total_sold": "5.00",
         "total_redeemed": "0.00", "expires_at": None, "sale_id": None, "sale_source": "api",
         "created_at": "2024-02-01T10:00:00Z", "gift_card_transactions": [
             {"id": "gt-7", "type": "ACTIVATION", "amount": "5.00", "created_at": "2024-02-01T10:00:00Z"}]},
        {"id": "odd-card-3", "number": "9997", "status": "ACTIVE", "balance": "lots", "total_sold": None,
         "total_redeemed": None, "expires_at": "never", "sale_id": None, "sale_source": "api",
         "created_at": "2024-02-01T10:00:00Z", "gift_card_transactions": "none"},
    ]  # fmt: skip


def publish_sales(
    simulator: SimulatorProcess, kept: list[dict[str, Any]], new: list[dict[str, Any]], versions_from: int
) -> None:
    """Serve the store's 2026-07 sales plus `kept` (as they are) and `new` (given versions from
    `versions_from` on, in `_metadata`) as the sales listing: `inject` would reshape them and empty
    their promotions."""
    simulator.publish("sales", None)
    sales = [{k: v for k, v in s.items() if k != "_removed"} for s in simulator.state("2026-07")["sales"]]
    for i, sale in enumerate(new):
        sale["_metadata"] = {**sale.get("_metadata", {}), "version": versions_from + i}
    records = sales + kept + new
    versions = [s["_metadata"]["version"] for s in records]
    simulator.publish("sales", {"data": records, "version": {"min": min(versions), "max": max(versions)}})


# -- the tests -------------------------------------------------------------------------------------


def test_store_views_equal_the_source_before_and_after_changes(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, api_version: str
) -> None:
    """In each API version the five views equal the source, first import and incremental run."""
    dated = api_version != V2
    # Money moves over several months, so the liability views roll forward through gaps.
    simulator.mutate(seed=3, update={"gift_cards": 6, "store_credits": 4})
    state = simulator.state(api_version)
    first_promotions: list[dict[str, Any]] = []
    if dated:  # below the highest version, so the store's next writes come after them
        first_promotions = promotion_sales_first(state)
        publish_sales(simulator, [], first_promotions, versions_from=_top_version(state) - len(first_promotions))

    assert run_dag().state == "success"
    state = simulator.state(api_version)
    want = assert_store_views_match(db, schema, state, api_version)
    # The source exercises every rule: all movement types, stocktake lines without a count and
    # counts below zero, outlets valued both ways, money in several months.
    assert {k[3] for k in want["stock_movements"]} == MOVEMENT_TYPES
    assert {k[1] for k in want["stock_movements"]} == {o["id"] for o in state["outlets"]}
    stocktaken = {c["id"] for c in state["consignments"] if c["status"] == "STOCKTAKE_COMPLETE"}
    counts = [line["count"] for line in state["consignment_products"] if line["_parent"] in stocktaken]
    assert None in counts and any(c is not None and float(c) < 0 for c in counts)
    assert {r["value_basis"] for r in want["inventory_value_by_outlet"].values()} == {"mixed"}
    if dated:
        for view in ("gift_card_liability", "store_credit_liability"):
            months = want[view]
            last = months[max(months)]
            assert len(months) > 2 and any(r["transaction_count"] == 0 for r in months.values()), view
            assert last["closing_liability"] == last["current_balance_total"] > 0, view  # the source is consistent
        assert len(want["promotion_performance"]) >= 3
        pipeline = want["purchase_order_pipeline"]
        assert {r["status"] for r in pipeline.values()} >= {"OPEN", "SENT", "PARTIALLY_RECEIVED"}
        assert any(r["overdue"] for r in pipeline.values()) and any(r["lines_without_cost"] for r in pipeline.values())
        assert any(0 < r["quantity_received"] < r["quantity_ordered"] for r in pipeline.values())
    else:
        assert state["gift_cards"] and state["store_credits"]  # in the store, but not listed by 2.0

    # Changes: received orders, new consignments and counts, lines gone, sales new, voided and
    # edited, stock levels, deletions (an outlet, products), gift card and credit transactions,
    # a card, a credit and a promotion no longer listed; then odd records.
    if dated:
        simulator.publish("sales", None)  # back to the store's own sales while it changes
    simulator.mutate(
        seed=11,
        update={
            "gift_cards": 3, "store_credits": 2, "consignment_products": 4, "inventory": 12,
            "purchase_order_line_items": 3,
        },
        receive_purchase_orders=2,
        new={"consignments": 3, "sales": 10, "gift_cards": 2, "store_credits": 1},
        receive_consignments=2,
        void_sales=2,
        edit_sales=2,
        delete={"products": 3, "outlets": 1},
        remove={
            "consignment_products": 2, "gift_cards": 1, "store_credits": 1, "promotions": 1,
            "purchase_order_line_items": 1,
            **({"inventory": 2} if dated else {}),  # 2.0 has no delete feed for stock rows
        },
    )  # fmt: skip
    state = simulator.state(api_version)
    lines, consignments = odd_consignment_lines(state)
    simulator.inject("consignment_products", lines)
    simulator.inject("consignments", consignments)
    for resource, records in odd_stock(state).items():
        simulator.inject(resource, records)
    if dated:
        state = simulator.state(api_version)
        voided = {**first_promotions[0], "state": "voided", "line_items": [
            _item(li, api_version, status="VOIDED") for li in first_promotions[0]["line_items"]
        ]}  # fmt: skip
        later = [voided, *promotion_sales_later(state), *odd_sales(state, api_version)]
        # the first ones keep their versions (unchanged, so not read again); the rest are new
        publish_sales(simulator, first_promotions[1:], later, versions_from=_top_version(state) + 1)
        credits = [c for c in simulator.state(api_version)["store_credits"] if not c.get("_removed")]
        simulator.publish("store_credits", credits + odd_store_credits(state))
        simulator.inject("gift_cards", odd_gift_cards())
    else:
        simulator.inject("sales", odd_sales(state, api_version))

    assert run_dag().state == "success"
    state = simulator.state(api_version)
    want = assert_store_views_match(db, schema, state, api_version)
    # The odd records reached the views.
    odd_rows = [r for r in want["stock_movements"].values() if r["lines_without_cost"]]
    assert odd_rows and any(r["cost"] is None for r in odd_rows) and any(r["cost"] is not None for r in odd_rows)
    assert any(k[3] == "sold" and r["quantity"] % 1 for k, r in want["stock_movements"].items())  # 2.5 units
    values = want["inventory_value_by_outlet"]
    assert {r["value_basis"] for r in values.values()} == {"mixed", "supply_price", "none"}
    assert values["odd-outlet-2"]["units_without_cost"] > 0
    assert any(k[1] == "odd-outlet-1" and r["time_zone"] == "UTC" for k, r in want["stock_movements"].items())
    assert sum(1 for o in state["outlets"] if o.get("deleted_at")) == 1
    if dated:
        credit = want["store_credit_liability"]
        last = credit[max(credit)]
        assert any(r["transactions_without_amount"] for r in credit.values())
        assert last["closing_liability"] != last["current_balance_total"]  # the odd records disagree
        promos = want["promotion_performance"]
        assert any(r["amounts_unknown"] for r in promos.values())
        assert any(k[2] == "promo-not-listed" and r["promotion_name"] is None for k, r in promos.items())
        removed = {p["id"] for p in state["promotions"] if p.get("_removed")}
        assert removed and any(k[2] in removed and r["promotion_name"] is None for k, r in promos.items())
        cards = want["gift_card_liability"]
        assert any(r["transactions_without_amount"] for r in cards.values())
        assert any(r["expired"] for r in cards.values()) and any(r["other_change"] for r in cards.values())
        assert cards[max(cards)]["closing_liability"] != cards[max(cards)]["current_balance_total"]  # odd cards


def test_the_store_views_are_empty_on_an_empty_store(migrated: Any, schema: str) -> None:
    """No rows at all when nothing was synced (the liability views too: no month without a transaction)."""
    for view in STORE_VIEWS:
        assert migrated.execute(f'SELECT count(*) FROM "{schema}"."{view}"').fetchone()[0] == 0, view
