"""Assets: one per entity table, an event only when a sync changed rows."""

from __future__ import annotations

import pytest
from airflow.sdk.execution_time.context import OutletEventAccessors
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.assets import changed_rows, emit_if_changed, entity_alias, entity_asset


def test_names_and_uris_follow_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTSPEED_SCHEMA", "store_a")
    asset = entity_asset("sales")
    assert (asset.name, asset.group) == ("lightspeed.sales", "lightspeed")
    assert asset.uri == "lightspeed://store_a/lightspeed_sales"
    assert len({entity_asset(e.name).uri for e in reg.ENTITIES}) == len(reg.ENTITIES)
    with pytest.raises(KeyError):
        entity_alias("sale")


def test_an_event_only_when_rows_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTSPEED_SCHEMA", "public")
    events = OutletEventAccessors()
    context = {"outlet_events": events, "run_id": "manual__1"}
    unchanged = {"rows_inserted": 0, "rows_updated": 0, "rows_deleted": 0, "rows_unchanged": 50}
    assert changed_rows(unchanged) == 0
    assert not emit_if_changed(context, "products", unchanged)
    assert events[entity_alias("products")].asset_alias_events == []

    changed = {"rows_inserted": 2, "rows_updated": 1, "rows_deleted": 1, "last_version": 42}
    assert emit_if_changed(context, "products", changed)
    (event,) = events[entity_alias("products")].asset_alias_events
    assert event.dest_asset_key.name == "lightspeed.products"
    assert event.extra == {
        "rows_changed": 4,
        "rows_inserted": 2,
        "rows_updated": 1,
        "rows_deleted": 1,
        "last_version": 42,
        "run_id": "manual__1",
    }
