"""Cheap post-sync checks: row counts, orphans and duplicates, recorded in sync_validation.

Orphans (a reference to an id the referenced table does not hold) and duplicates
(a key the registry says should be unique among live rows) are recorded and logged,
not raised: the source itself can hold them, and the copy must match the source.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from lightspeed_pipeline.db import begin
from lightspeed_pipeline.entities import BY_NAME, Entity
from lightspeed_pipeline.store import Store

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    entity: str
    row_count: int = 0
    deleted_count: int = 0
    orphans: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)

    @property
    def orphan_count(self) -> int:
        return sum(self.orphans.values())

    @property
    def duplicate_count(self) -> int:
        return sum(self.duplicates.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "row_count": self.row_count,
            "deleted_count": self.deleted_count,
            "orphan_count": self.orphan_count,
            "duplicate_count": self.duplicate_count,
            "orphans": self.orphans,
            "duplicates": self.duplicates,
            "children": self.children,
        }


def _orphans(schema: str, table: str, column: str, ref_table: str) -> sql.Composed:
    return sql.SQL(
        "SELECT count(*) FROM {t} x WHERE x.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {r} r WHERE r.id = x.{c})"
    ).format(t=sql.Identifier(schema, table), c=sql.Identifier(column), r=sql.Identifier(schema, ref_table))


def _duplicates(schema: str, table: str, column: str, live_only: bool) -> sql.Composed:
    where = sql.SQL("deleted_at IS NULL AND ") if live_only else sql.SQL("")
    return sql.SQL(
        "SELECT COALESCE(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {t} WHERE {w}{c} IS NOT NULL"
        " GROUP BY {c} HAVING count(*) > 1) d"
    ).format(t=sql.Identifier(schema, table), w=where, c=sql.Identifier(column))


def validate_entity(entity: Entity, store: Store, *, run_id: str | None = None) -> ValidationResult:
    """Count rows, orphans and duplicates for `entity` and its children; store the result."""
    schema = store.schema
    conn = store.conn
    result = ValidationResult(entity=entity.name)
    with conn.transaction():
        begin(conn, store.settings)
        row = conn.execute(
            sql.SQL("SELECT count(*), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM {t}").format(
                t=sql.Identifier(schema, entity.table)
            )
        ).fetchone()
        assert row is not None
        result.row_count, result.deleted_count = int(row[0]), int(row[1])
        for col in entity.columns:
            if col.references:
                n = conn.execute(_orphans(schema, entity.table, col.name, BY_NAME[col.references].table)).fetchone()
                result.orphans[f"{col.name}->{col.references}"] = int(n[0]) if n else 0
        for key in entity.unique_keys:
            n = conn.execute(_duplicates(schema, entity.table, key, live_only=True)).fetchone()
            result.duplicates[key] = int(n[0]) if n else 0
        for child in entity.children:
            n = conn.execute(
                sql.SQL("SELECT count(*) FROM {t}").format(t=sql.Identifier(schema, child.table))
            ).fetchone()
            result.children[child.name] = int(n[0]) if n else 0
            n = conn.execute(_orphans(schema, child.table, child.parent_key, entity.table)).fetchone()
            result.orphans[f"{child.name}.{child.parent_key}->{entity.name}"] = int(n[0]) if n else 0
            for col in child.columns:
                if col.references:
                    n = conn.execute(_orphans(schema, child.table, col.name, BY_NAME[col.references].table)).fetchone()
                    result.orphans[f"{child.name}.{col.name}->{col.references}"] = int(n[0]) if n else 0
            n = conn.execute(_duplicates(schema, child.table, "id", live_only=False)).fetchone()
            result.duplicates[f"{child.name}.id"] = int(n[0]) if n else 0
        conn.execute(
            sql.SQL(
                "INSERT INTO {v} (entity_type, run_id, row_count, deleted_count, orphan_count, duplicate_count,"
                " details)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
            ).format(v=sql.Identifier(schema, "sync_validation")),
            (
                entity.name,
                run_id,
                result.row_count,
                result.deleted_count,
                result.orphan_count,
                result.duplicate_count,
                json.dumps({"orphans": result.orphans, "duplicates": result.duplicates, "children": result.children}),
            ),
        )
    level = logging.WARNING if (result.orphan_count or result.duplicate_count) else logging.INFO
    log.log(
        level,
        "%s: %d rows (%d deleted); orphans %s; duplicates %s; children %s",
        entity.name,
        result.row_count,
        result.deleted_count,
        result.orphans,
        result.duplicates,
        result.children,
    )
    return result
