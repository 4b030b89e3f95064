"""The registry: dependency order, validation of mistakes, table names."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.entities import Entity, RegistryError, order_entities

INTERFACE_ENTITIES = {
    "outlets": "/outlets",
    "registers": "/registers",
    "users": "/users",
    "taxes": "/taxes",
    "payment_types": "/payment_types",
    "brands": "/brands",
    "suppliers": "/suppliers",
    "product_types": "/product_types",
    "product_categories": "/product_categories",
    "customer_groups": "/customer_groups",
    "products": "/products",
    "customers": "/customers",
    "inventory": "/inventory",
    "sales": "/sales",
    "tags": "/tags",  # issue 18: the rest of the store
    "price_books": "/price_books",
    "price_book_products": "/price_book_products",
    "consignments": "/consignments",
    "consignment_products": "/consignments/{id}/products",  # per consignment
    "purchase_orders": "/purchase_orders",  # 2026-04 on
    "purchase_order_line_items": "/purchase_orders/{id}/line_items",
    "purchase_order_deliveries": "/purchase_orders/{id}/deliveries",
    "purchase_order_delivery_line_items": "/purchase_orders/{purchase_order_id}/deliveries/{id}/line_items",
    "promotions": "/promotions",
    "gift_cards": "/gift_cards",  # 2026-07 on
    "store_credits": "/store_credits",  # 2026-07 on
}


def test_registry_has_the_interface_entities_and_endpoints() -> None:
    assert {e.name: e.endpoint for e in reg.ENTITIES} == INTERFACE_ENTITIES
    assert all(e.table == f"lightspeed_{e.name}" for e in reg.ENTITIES)
    assert reg.CHILD_TABLES == (
        "lightspeed_sale_line_items",
        "lightspeed_sale_payments",
        "lightspeed_gift_card_transactions",
        "lightspeed_store_credit_transactions",
    )


def test_order_respects_every_dependency() -> None:
    position = {name: i for i, name in enumerate(reg.NAMES)}
    for e in reg.ENTITIES:
        for dep in e.depends_on:
            assert position[dep] < position[e.name], (dep, e.name)
    assert reg.NAMES[-1] == "store_credits"


def test_only_categories_promotions_gift_cards_and_store_credits_have_no_version() -> None:
    unversioned = {e.name: type(e.paging) for e in reg.ENTITIES if not e.versioned}
    assert unversioned == {
        "product_categories": reg.IdPaging,
        "promotions": reg.WholeList,
        "gift_cards": reg.DescIdPaging,
        "store_credits": reg.WholeList,
    }


def test_dated_only_entities_are_unavailable_in_2_0() -> None:
    orders = ("purchase_orders", "purchase_order_line_items", "purchase_order_deliveries")
    assert reg.unavailable(reg.V2) == {
        **{name: "not listed by API 2.0 (only from API 2026-04 on)" for name in orders},
        "purchase_order_delivery_line_items": "not listed by API 2.0 (only from API 2026-04 on)",
        "gift_cards": "not listed by API 2.0 (only from API 2026-07 on)",
        "store_credits": "not listed by API 2.0 (only from API 2026-07 on)",
    }
    assert set(reg.unavailable("2026-04")) == {"gift_cards", "store_credits"}
    assert reg.unavailable(reg.NEWEST) == {} and reg.unavailable("2027-01") == {}


def test_unknown_dependency_is_a_clear_error() -> None:
    with pytest.raises(RegistryError, match="'b' depends on unknown entities: nope"):
        order_entities((Entity("a", "/a"), Entity("b", "/b", ("a", "nope"))))


def test_cycle_is_a_clear_error() -> None:
    with pytest.raises(RegistryError, match="cycle"):
        order_entities((Entity("a", "/a", ("c",)), Entity("b", "/b", ("a",)), Entity("c", "/c", ("b",))))


def test_duplicate_name_is_an_error() -> None:
    with pytest.raises(RegistryError, match="declared twice"):
        order_entities((Entity("a", "/a"), Entity("a", "/a2")))


def test_get_names_the_known_entities() -> None:
    with pytest.raises(KeyError, match="known: outlets"):
        reg.get("sale")


def test_each_api_version_lists_an_entity_its_own_way() -> None:
    """`Entity.at`: 2026-07 gives four reference lists a delete feed and inventory a POST listing;
    later dated versions keep those changes; 2.0 and the entities that did not change are as declared."""
    for name in ("brands", "suppliers", "product_types", "payment_types"):
        old, new = reg.get(name).at(reg.V2), reg.get(name).at("2026-07")
        assert (old.deletions, old.supports_deleted, old.reconciled) == ("every_run", False, True), name
        assert (new.deletions, new.supports_deleted, new.reconciled) == ("feed", True, False), name
    inventory = reg.get("inventory")
    assert isinstance(inventory.at(reg.V2).paging, reg.VersionPaging)
    posted = inventory.at("2026-07")
    assert posted.paging == reg.PostedVersionPaging(max_size=5000) and posted.deletions == "feed"
    assert inventory.at("2027-01") == posted and inventory.at("2026-04") == inventory
    assert reg.get("sales").at("2026-07") is reg.get("sales")  # reshaped records, same listing
    assert sorted(["2026-07", "2.0", "2026-04"], key=reg.version_key) == ["2.0", "2026-04", "2026-07"]


def test_every_entity_names_the_oauth_scope_its_listing_needs() -> None:
    """From the 2026-07 description's "Requires:" lines (the README lists them)."""
    scopes = {e.name: e.read_scope for e in reg.ENTITIES}
    assert scopes == {
        "outlets": "outlets:read", "registers": "registers:read", "users": "users:read", "taxes": "taxes:read",
        "payment_types": "payment_types:read", "brands": "products:read", "suppliers": "suppliers:read",
        "product_types": "products:read", "product_categories": "products:read",
        "customer_groups": "customers:read", "products": "products:read", "customers": "customers:read",
        "inventory": "inventory:read", "sales": "sales:read", "tags": "products:read",
        "price_books": "products:read:price_books", "price_book_products": "products:read:price_books",
        "consignments": "consignments:read", "consignment_products": "consignments:read",
        "promotions": "promotions:read", "gift_cards": "gift_cards:read", "store_credits": "store_credits:read",
        "purchase_orders": "consignments:read", "purchase_order_line_items": "consignments:read",
        "purchase_order_deliveries": "consignments:read", "purchase_order_delivery_line_items": "consignments:read",
    }  # fmt: skip
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for scope in {*scopes.values(), *reg.RETAILER_SCOPES}:
        assert f"{scope}" in readme, scope


def test_dependants_are_what_is_synced_after_an_entity_or_refers_to_it() -> None:
    orders = ["purchase_orders", "purchase_order_deliveries"]
    assert reg.dependants("outlets") == ["registers", "consignments", "inventory", "sales", *orders]
    assert reg.dependants("brands") == ["products"]
    assert reg.dependants("outlets", exclude={"sales"}) == ["registers", "consignments", "inventory", *orders]
    assert reg.dependants("sales") == ["gift_cards", "store_credits"]
    assert reg.dependants("store_credits") == []
    for entity in reg.ENTITIES:  # every dependency and every reference is seen
        for name in entity.after_all:
            assert entity.name in reg.dependants(name)
