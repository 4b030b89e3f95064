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


def test_pg_json_escapes_only_what_postgres_cannot_hold() -> None:
    text, fixed = to_pg_json([{"a": "plain ☕ שלום"}])
    assert fixed == 0 and json.loads(text) == [{"a": "plain ☕ שלום"}]
    text, fixed = to_pg_json([{"a": "nul\x00here", "b\x00": "lone \ud800", "c": float("nan")}])
    assert fixed == 4
    assert json.loads(text) == [{"a": "nul\\u0000here", "b\\u0000": "lone \\ud800", "c": "nan"}]
    text.encode("utf-8")  # no lone surrogate left
