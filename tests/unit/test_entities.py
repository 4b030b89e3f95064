"""The registry: dependency order, validation of mistakes, table names."""

from __future__ import annotations

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
}


def test_registry_has_the_interface_entities_and_endpoints() -> None:
    assert {e.name: e.endpoint for e in reg.ENTITIES} == INTERFACE_ENTITIES
    assert all(e.table == f"lightspeed_{e.name}" for e in reg.ENTITIES)
    assert reg.CHILD_TABLES == ("lightspeed_sale_line_items", "lightspeed_sale_payments")


def test_order_respects_every_dependency() -> None:
    position = {name: i for i, name in enumerate(reg.NAMES)}
    for e in reg.ENTITIES:
        for dep in e.depends_on:
            assert position[dep] < position[e.name], (dep, e.name)
    assert reg.NAMES[-1] == "sales"


def test_only_categories_page_by_id() -> None:
    assert [e.name for e in reg.ENTITIES if not e.versioned] == ["product_categories"]


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
