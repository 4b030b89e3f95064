"""The dated API version 2026-07 (shapes from the vendor's OpenAPI description, see
`shared/vendor/api-2026-07-notes.md` in the workspace): the simulator stores 2.0-shaped records
and reshapes them as it serves a 2026-07 request.

What 2026-07 changes, for the entities the sync reads:
* sales: `status` -> `state` (parked|pending|voided|closed) + `attributes`; `outlet_id`,
  `register_id`, `user_id` -> `source.{outlet_id,register_id,author.id}`; totals -> `totals.*`
  (+ `price_incl_tax`, `surcharge`); `sale_date` -> `date`; `return_for` -> `return.*`; the
  version -> `_metadata.version`. Line items: `product.id`, `pricing.*`, `tax.{amount,total,id}`,
  `_metadata.sequence`. Payments: `type.{config_id,id,name}`, `date`, `source.*`;
* inventory: listed by `POST /inventory` with a JSON body (`after`, `before`, `size` up to 5000,
  `sort_direction` default "desc", `include_deleted`), answered with a bare array;
  `inventory_level` -> `current_inventory_level`, plus `reorder_target`, `reorder_method`;
* brands, suppliers, product types and payment types honour `deleted=true`;
* tags carry their `version` (2.0's do not);
* price book products come as `{data}` alone (no version envelope);
* consignments come as `{data, version}` (2.0: a bare array);
* gift cards (newest first, paged by `before=<id>`), store credits (a bare array, no cursor) and
  purchase orders with their line items, deliveries and delivery line items exist only here;
* promotions gain three members, and their promo code summary becomes an object;
* price books honour `deleted=true` and list their customer groups and outlets
  (`customer_group_ids`, `customer_groups`, `outlets`) instead of naming one of each;
* an empty page's envelope is `{"min": null, "max": null}`; the retailer's `timezone` is a
  string and its `version` a string.
"""

from __future__ import annotations

from typing import Any

from simulator.data import SUPPORTS_DELETED, SUPPORTS_DELETED_DATED

V2 = "2.0"
DATED = "2026-07"
API_VERSIONS = (V2, DATED)
INVENTORY_MAX_SIZE = 5000
EMPTY_VERSION = {"min": None, "max": None}
# Lists 2026-07 answers with `{data}` alone, no version envelope (the cursor: the records' own versions).
NO_ENVELOPE = frozenset({"price_book_products"})
# Lists 2.0 answers with a bare array (the cursor: the records' own versions); 2026-07 with `{data, version}`.
BARE_V2 = frozenset({"consignments"})
# Resources only dated versions list (2.0 answers 404).
DATED_ONLY = frozenset({
    "gift_cards", "store_credits", "purchase_orders", "purchase_order_line_items", "purchase_order_deliveries",
    "purchase_order_delivery_line_items",
})  # fmt: skip
GIFT_CARD_MAX_SIZE = 1000
# Listings under a parent record: `<parent resource>/<id>/<member>` -> the resource they list.
PER_PARENT_ROUTES = {
    ("consignments", "products"): "consignment_products",
    ("purchase_orders", "line_items"): "purchase_order_line_items",
    ("purchase_orders", "deliveries"): "purchase_order_deliveries",
    ("purchase_orders", "deliveries", "line_items"): "purchase_order_delivery_line_items",
}


def posted(resource: str, api_version: str) -> bool:
    """Whether `api_version` lists `resource` by POST with a JSON body (2026-07's inventory)."""
    return api_version == DATED and resource == "inventory"


def supports_deleted(api_version: str) -> frozenset[str]:
    """The resources whose listing honours `deleted=true` in `api_version`."""
    return SUPPORTS_DELETED_DATED if api_version == DATED else SUPPORTS_DELETED


_STATES = {
    "CLOSED": ("closed", []),
    "LAYBY_CLOSED": ("closed", ["layby"]),
    "ONACCOUNT_CLOSED": ("closed", ["onaccount"]),
    "VOIDED": ("voided", []),
    "SAVED": ("parked", []),
    "LAYBY": ("pending", ["layby"]),
    "ONACCOUNT": ("pending", ["onaccount"]),
}


def state_of(status: Any) -> tuple[Any, list[str]]:
    """A 2.0 status as 2026-07's state and attributes (an unknown status passes lower-cased)."""
    if isinstance(status, str) and status.upper() in _STATES:
        state, attributes = _STATES[status.upper()]
        return state, list(attributes)
    return (status.lower() if isinstance(status, str) else status), []


def _line_item(item: dict[str, Any], sale: dict[str, Any]) -> dict[str, Any]:
    qty = item.get("quantity")
    loyalty = item.get("loyalty_value")
    out: dict[str, Any] = {
        "id": item.get("id"),
        "product": {"id": item.get("product_id")},
        "quantity": qty,
        "pricing": {
            "price": item.get("price"),
            "total": item.get("price_total"),
            "cost": item.get("cost"),
            "cost_total": item.get("cost_total"),
            "discount": item.get("discount"),
            "discount_total": item.get("discount_total"),
            "loyalty_amount": loyalty,
            "loyalty_amount_total": loyalty * qty
            if isinstance(loyalty, int | float) and isinstance(qty, int)
            else None,
        },
        "tax": {"amount": item.get("tax"), "total": item.get("tax_total"), "id": item.get("tax_id")},
        "_metadata": {
            "sequence": item.get("sequence"),
            "is_price_override": False,
            "tax_components": item.get("tax_components", []),
        },
        "status": item.get("status"),
        "return": {"is_return": False, "reason": None},
        "source": {"register_id": sale.get("register_id")},
        "promotions": [],
    }
    if "note" in item:
        out["note"] = item["note"]
    return out


def _payment(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": payment.get("id"),
        "type": {
            "config_id": payment.get("retailer_payment_type_id"),
            "id": payment.get("payment_type_id"),
            "name": payment.get("name"),
        },
        "amount": payment.get("amount"),
        "date": payment.get("payment_date"),
        "source": {"register_id": payment.get("register_id"), "outlet_id": payment.get("outlet_id"), "id": None},
        "deleted_at": None,
        "_metadata": {"register_open_sequence_id": None},
    }


def sale(record: dict[str, Any]) -> dict[str, Any]:
    """A 2.0 sale as 2026-07's `Sale` schema has it."""
    state, attributes = state_of(record.get("status"))
    price, tax = record.get("total_price"), record.get("total_tax")
    incl = round(price + tax, 2) if isinstance(price, int | float) and isinstance(tax, int | float) else None
    original = record.get("return_for")
    out: dict[str, Any] = {
        "id": record.get("id"),
        "customer_id": record.get("customer_id"),
        "invoice_number": record.get("invoice_number"),
        "receipt_number": record.get("receipt_number"),
        "short_code": record.get("short_code"),
        "note": record.get("note"),
        "state": state,
        "attributes": attributes,
        "date": record.get("sale_date"),
        "source": {
            "outlet_id": record.get("outlet_id"),
            "register_id": record.get("register_id"),
            "author": {"id": record.get("user_id")},
            "id": None,
            "type": record.get("source"),
        },
        "totals": {
            "price": price,
            "price_incl_tax": incl,
            "tax": tax,
            "loyalty": record.get("total_loyalty"),
            "surcharge": 0,
        },
        "return": {"is_return": original is not None, "original_sale_id": original, "return_sale_ids": []},
        "taxes": [
            {"id": t.get("id"), "tax": t.get("amount")} for t in record.get("taxes") or [] if isinstance(t, dict)
        ],
        # an item that is not an object (a hostile record's) is sent as it is, as 2.0 sends it
        "line_items": [_line_item(i, record) if isinstance(i, dict) else i for i in record.get("line_items") or []],
        "payments": [_payment(p) if isinstance(p, dict) else p for p in record.get("payments") or []],
        "created_at": record.get("created_at"),
        "updated_at": record.get("updated_at"),
        "deleted_at": record.get("deleted_at"),
        "_metadata": {
            "version": record.get("version"),
            "complete_open_sequence_id": None,
            "has_unsynced_on_account_payments": False,
            "xero_reference": None,
        },
    }
    return out


def inventory(record: dict[str, Any]) -> dict[str, Any]:
    """A 2.0 inventory record as 2026-07's `Inventory` schema has it."""
    out = {k: v for k, v in record.items() if k not in ("inventory_level", "current_amount")}
    out["current_inventory_level"] = record.get("inventory_level")
    out.setdefault("average_cost", None)
    out["reorder_target"] = None if record.get("reorder_amount") is None else record["reorder_amount"] * 2
    out["reorder_method"] = "MIN_MAX" if record.get("reorder_point") is not None else None
    out.setdefault("deleted_at", None)
    return out


def price_book(record: dict[str, Any]) -> dict[str, Any]:
    """A 2.0 price book as 2026-07 has it: one customer group and outlet become lists."""
    out = {k: v for k, v in record.items() if k not in ("customer_group_id", "customer_group", "outlet_id", "outlet")}
    group = record.get("customer_group_id")
    out["customer_group_ids"] = [group] if group else []
    out["customer_groups"] = [record["customer_group"]] if record.get("customer_group") else []
    out["outlets"] = [record["outlet"]] if record.get("outlet") else []
    return out


def promotion(record: dict[str, Any]) -> dict[str, Any]:
    """A 2.0 promotion as 2026-07's `PromotionResponse`: three new members, and the promo code
    summary an object (or null) instead of a list."""
    out = {k: v for k, v in record.items() if k != "promo_code_summary"}
    summary = record.get("promo_code_summary")
    out["promo_code_summary"] = {"count": len(summary)} if summary else None
    out.update(combinable_with_coupon=False, online_channel_ids=[], show_potential=True)
    return out


def retailer(record: dict[str, Any]) -> dict[str, Any]:
    """GET /retailer's `data` in 2026-07: `timezone` a string, `version` a string."""
    return {**record, "timezone": str(record.get("timezone")), "version": "1"}


def reshape(resource: str, record: Any, api_version: str) -> Any:
    """`record` (stored 2.0-shaped) as `api_version` serves it; raw injected items pass as they are.
    2.0's tags carry no version of their own (the vendor's `Tag`; the page's envelope does)."""
    if not isinstance(record, dict):
        return record
    if api_version == V2:
        return {k: v for k, v in record.items() if k != "version"} if resource == "tags" else record
    if resource == "sales":
        return sale(record)
    if resource == "inventory":
        return inventory(record)
    if resource == "price_books":
        return price_book(record)
    if resource == "promotions":
        return promotion(record)
    return record
