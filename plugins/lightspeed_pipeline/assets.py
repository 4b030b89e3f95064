"""Airflow Assets: one per entity table, updated when a sync changed that table.

Downstream DAGs (dbt, reports, an analytics app) schedule on them:

    from airflow.sdk import DAG
    from lightspeed_pipeline.assets import entity_asset

    with DAG("daily_sales_report", schedule=[entity_asset("sales")], ...):
        ...

Name `lightspeed.<entity>`, URI `lightspeed://<schema>/<table>` (the schema is
`LIGHTSPEED_SCHEMA`, read when the DAG is parsed), group `lightspeed`. A sync task declares
an AssetAlias (`lightspeed.<entity>.changes`) as its outlet and attaches an event for its
Asset only when it inserted, updated or deleted rows: a daily run that changed nothing does
not wake the downstream DAGs. The event's `extra` carries the counts and the cursor.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetAlias

from lightspeed_pipeline import entities as registry
from lightspeed_pipeline.settings import target_schema

GROUP = "lightspeed"


def entity_asset(entity: str, schema: str | None = None) -> Asset:
    """The Asset of one entity's table."""
    table = registry.get(entity).table
    return Asset(
        name=f"lightspeed.{entity}",
        uri=f"lightspeed://{schema or target_schema()}/{table}",
        group=GROUP,
    )


def entity_alias(entity: str) -> AssetAlias:
    """The alias a sync task emits through (only when it changed rows)."""
    registry.get(entity)
    return AssetAlias(name=f"lightspeed.{entity}.changes", group=GROUP)


def changed_rows(result: dict[str, Any]) -> int:
    """Rows a sync inserted, updated or marked deleted (the sale children follow their sale)."""
    return sum(int(result.get(k) or 0) for k in ("rows_inserted", "rows_updated", "rows_deleted"))


def emit_if_changed(context: Any, entity: str, result: dict[str, Any]) -> bool:
    """Attach an event for the entity's Asset to the task's alias outlet when rows changed."""
    changed = changed_rows(result)
    if not changed:
        return False
    extra = {
        "rows_changed": changed,
        "rows_inserted": int(result.get("rows_inserted") or 0),
        "rows_updated": int(result.get("rows_updated") or 0),
        "rows_deleted": int(result.get("rows_deleted") or 0),
        "last_version": result.get("last_version"),
        "run_id": context.get("run_id"),
    }
    context["outlet_events"][entity_alias(entity)].add(entity_asset(entity), extra=extra)
    return True
