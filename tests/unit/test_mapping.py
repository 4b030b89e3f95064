"""Record -> row mapping and JSON that PostgreSQL accepts."""

from __future__ import annotations

import json

import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.mapping import (
    Untypable,
    prepare_page,
    to_bigint,
    to_boolean,
    to_numeric,
    to_pg_json,
    to_timestamptz,
)


def test_numeric_accepts_numbers_and_numeric_strings() -> None:
    assert to_numeric(12) == 12
    assert to_numeric(12.5) == 12.5
    assert to_numeric(" 12.50 ") == "12.50"
    assert to_numeric("1e3") == "1e3"
    for bad in ("12,50", "NaN", "inf", "1_000", True, [], float("nan")):
        with pytest.raises(Untypable):
            to_numeric(bad)


def test_bigint_and_boolean() -> None:
    assert to_bigint("3300000001") == 3300000001
    assert to_bigint(7.0) == 7
    with pytest.raises(Untypable):
        to_bigint(2**64)
    with pytest.raises(Untypable):
        to_bigint(True)
    assert to_boolean("TRUE") is True and to_boolean(0) is False
    with pytest.raises(Untypable):
        to_boolean("maybe")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00+02:00"),
        ("2024-05-01 10:00:00", "2024-05-01T10:00:00+00:00"),
    ],
)
def test_timestamps_with_and_without_zone(value: str, expected: str) -> None:
    assert to_timestamptz(value) == expected


def test_bad_values_are_counted_not_fatal() -> None:
    page = prepare_page(
        reg.get("products"),
        [
            {"id": "p1", "version": 5, "sku": "A", "price_including_tax": "12.50", "active": "yes"},
            {"id": "p2", "version": "6", "price_including_tax": "twelve", "created_at": "yesterday"},
        ],
    )
    rows = {r["id"]: r for r in page.rows}
    assert rows["p1"]["price_including_tax"] == "12.50" and rows["p1"]["active"] is True
    assert rows["p2"]["version"] == 6 and rows["p2"]["price_including_tax"] is None
    assert rows["p2"]["data"]["price_including_tax"] == "twelve"  # the record is kept whole
    assert page.untyped == {"price_including_tax": 1, "created_at": 1}
    assert page.max_version == 6


def test_unstorable_records_are_rejected_with_reason() -> None:
    page = prepare_page(reg.get("brands"), [{"id": "b1", "version": 1}, "junk", {"name": "no id"}, {"id": None}])
    assert [r["id"] for r in page.rows] == ["b1"]
    assert [r.reason for r in page.rejects] == ["not a JSON object", "missing or unusable id", "missing or unusable id"]


def test_duplicate_ids_in_a_page_keep_the_highest_version() -> None:
    page = prepare_page(
        reg.get("sales"),
        [
            {"id": "s1", "version": 9, "line_items": [{"id": "l1"}, {"id": "l2"}]},
            {"id": "s1", "version": 7, "line_items": [{"id": "old"}]},
        ],
    )
    assert [r["version"] for r in page.rows] == [9]
    assert [c["id"] for c in page.children["line_items"]] == ["l1", "l2"]


def test_sale_children_and_dated_api_paths() -> None:
    sale = {
        "id": "s1",
        "version": 3,
        "state": "closed",
        "source": {"outlet_id": "o1", "register_id": "r1"},
        "totals": {"price": "10.00", "tax": 1.5},
        "date": "2026-07-01T00:00:00Z",
        "line_items": [{"id": "l1", "product": {"id": "p1"}, "pricing": {"price": 10}, "quantity": 1}],
        "payments": [{"id": "pay1", "retailer_payment_type_id": "pt1", "payment_type_id": "1", "amount": 11.5}],
    }
    page = prepare_page(reg.get("sales"), [sale])
    row = page.rows[0]
    assert (row["status"], row["outlet_id"], row["register_id"], row["total_price"]) == ("CLOSED", "o1", "r1", "10.00")
    li = page.children["line_items"][0]
    assert (li["sale_id"], li["position"], li["product_id"], li["price"]) == ("s1", 0, "p1", 10)
    assert page.children["payments"][0]["payment_type_id"] == "1"


def test_inventory_current_amount_falls_back_to_inventory_level() -> None:
    page = prepare_page(reg.get("inventory"), [{"id": "i1", "version": 1, "inventory_level": 4}])
    assert page.rows[0]["current_amount"] == 4 and page.rows[0]["inventory_level"] == 4


# The same sale as API 2.0 sends it (flat) and as 2026-07 does (the `Sale` schema: source, totals,
# _metadata; line items' pricing and tax objects; payments' type and source objects).
SALE_2_0 = {
    "id": "s1",
    "version": 41,
    "invoice_number": "INV-1",
    "status": "CLOSED",
    "sale_date": "2026-07-01T10:00:00Z",
    "outlet_id": "o1",
    "register_id": "r1",
    "user_id": "u1",
    "customer_id": "c1",
    "total_price": 20.0,
    "total_tax": 3.0,
    "total_loyalty": 0.5,
    "return_for": "s0",
    "line_items": [
        {
            "id": "l1",
            "product_id": "p1",
            "quantity": 2,
            "price": 10.0,
            "price_total": 20.0,
            "tax": 1.5,
            "tax_total": 3.0,
            "tax_id": "t1",
            "discount": 0,
            "discount_total": 0,
            "status": "CONFIRMED",
        }
    ],
    "payments": [
        {
            "id": "pay1",
            "retailer_payment_type_id": "rpt1",
            "payment_type_id": "3",
            "name": "Credit Card",
            "amount": 23.0,
            "payment_date": "2026-07-01T10:01:00Z",
            "register_id": "r1",
            "outlet_id": "o1",
        }
    ],
}
SALE_2026_07 = {
    "id": "s1",
    "_metadata": {"version": 41, "complete_open_sequence_id": "x"},
    "invoice_number": "INV-1",
    "state": "closed",
    "attributes": [],
    "date": "2026-07-01T10:00:00Z",
    "source": {"outlet_id": "o1", "register_id": "r1", "author": {"id": "u1"}, "id": "src", "type": "USER"},
    "customer_id": "c1",
    "totals": {"price": 20.0, "price_incl_tax": 23.0, "tax": 3.0, "loyalty": 0.5, "surcharge": 0},
    "return": {"is_return": True, "original_sale_id": "s0", "return_sale_ids": []},
    "line_items": [
        {
            "id": "l1",
            "product": {"id": "p1"},
            "quantity": 2,
            "pricing": {"price": 10.0, "total": 20.0, "discount": 0, "discount_total": 0},
            "tax": {"amount": 1.5, "total": 3.0, "id": "t1"},
            "_metadata": {"sequence": 0},
            "status": "confirmed",
            "promotions": [],
        }
    ],
    "payments": [
        {
            "id": "pay1",
            "type": {"config_id": "rpt1", "id": "3", "name": "Credit Card"},
            "amount": 23.0,
            "date": "2026-07-01T10:01:00Z",
            "source": {"register_id": "r1", "outlet_id": "o1", "id": "src"},
            "deleted_at": None,
        }
    ],
}


ONLY_2026_07 = ("total_price_incl_tax",)  # a column 2.0 has no member for


def typed(page: object) -> tuple[dict[str, object], dict[str, list[dict[str, object]]]]:
    """A prepared page's one row without `data`, `data_shape` and the 2026-07-only columns, and its children."""
    (row,) = page.rows  # type: ignore[attr-defined]
    skip = ("data", "data_shape", *ONLY_2026_07)
    return {k: v for k, v in row.items() if k not in skip}, page.children  # type: ignore[attr-defined]


def test_a_sale_fills_the_same_columns_in_both_published_shapes() -> None:
    sales = reg.get("sales")
    flat, nested = prepare_page(sales, [SALE_2_0]), prepare_page(sales, [SALE_2026_07])
    assert typed(flat) == typed(nested)
    row, children = typed(nested)
    assert row["version"] == 41 and nested.max_version == 41  # from _metadata.version
    assert (row["status"], row["outlet_id"], row["user_id"], row["total_loyalty"]) == ("CLOSED", "o1", "u1", 0.5)
    assert (row["sale_date"], row["total_price"], row["return_for"]) == ("2026-07-01T10:00:00+00:00", 20.0, "s0")
    assert children["line_items"][0]["tax"] == 1.5 and children["line_items"][0]["status"] == "CONFIRMED"
    assert children["payments"][0]["retailer_payment_type_id"] == "rpt1"
    assert (flat.rows[0]["total_price_incl_tax"], nested.rows[0]["total_price_incl_tax"]) == (None, 23.0)
    assert (flat.rows[0]["data_shape"], nested.rows[0]["data_shape"]) == ("2.0", "2026-07")
    assert flat.rows[0]["data"] is SALE_2_0 and nested.rows[0]["data"] is SALE_2026_07  # kept as sent
    assert not flat.untyped and not nested.untyped


def test_inventory_in_both_published_shapes() -> None:
    inventory = reg.get("inventory")
    old = prepare_page(
        inventory, [{"id": "i1", "version": 5, "product_id": "p1", "outlet_id": "o1", "inventory_level": 4}]
    )
    new = prepare_page(
        inventory,
        [{"id": "i1", "version": 5, "product_id": "p1", "outlet_id": "o1", "current_inventory_level": 4,
          "reorder_target": 10, "average_cost": 2.5, "deleted_at": None}],
    )  # fmt: skip
    assert (new.rows[0]["inventory_level"], new.rows[0]["current_amount"]) == (4, 4)
    assert (old.rows[0]["inventory_level"], old.rows[0]["current_amount"]) == (4, 4)
    assert (new.rows[0]["reorder_target"], new.rows[0]["average_cost"]) == (10, 2.5)
    assert (old.rows[0]["data_shape"], new.rows[0]["data_shape"]) == ("2.0", "2026-07")


def test_a_record_in_no_known_shape_is_kept_and_counted() -> None:
    odd = {"id": "s9", "meta": {"v": 1}, "lines": []}
    page = prepare_page(reg.get("sales"), [odd])
    (row,) = page.rows
    assert row["data"] is odd and row["data_shape"] == "unknown" and row["status"] is None
    assert page.untyped["data_shape: unknown"] == 1 and not page.rejects
    assert "data_shape" not in prepare_page(reg.get("customers"), [{"id": "c1", "version": 1}]).rows[0]


def test_pg_json_escapes_only_what_postgres_cannot_hold() -> None:
    text, fixed = to_pg_json([{"a": "plain ☕ שלום"}])
    assert fixed == 0 and json.loads(text) == [{"a": "plain ☕ שלום"}]
    text, fixed = to_pg_json([{"a": "nul\x00here", "b\x00": "lone \ud800", "c": float("nan")}])
    assert fixed == 4
    assert json.loads(text) == [{"a": "nul\\u0000here", "b\\u0000": "lone \\ud800", "c": "nan"}]
    text.encode("utf-8")  # no lone surrogate left
