"""Cheap post-sync checks: row counts, orphans and duplicates, recorded in sync_validation.

Orphans (a reference to an id the referenced table does not hold) and duplicates
(a key the registry says should be unique among live rows) are recorded and logged,
not raised: the source itself can hold them, and the copy must match the source.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from lightspeed_pipeline.entities import Entity
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.ledger import SyncLedger
from lightspeed_pipeline.warehouse.reads import ReadModel

log = logging.getLogger(__name__)


@dataclass
class ValidationResult:
    entity: str
    row_count: int = 0
    deleted_count: int = 0
    orphans: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)
    unknown_shape_count: int = 0  # rows whose data has no published shape's members (typed columns NULL)

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
            "unknown_shape_count": self.unknown_shape_count,
        }


def validate_entity(
    entity: Entity, warehouse: Warehouse, *, run_id: str | None = None, disabled: Collection[str] = ()
) -> ValidationResult:
    """Count rows, orphans and duplicates for `entity` and its children; record the result.
    References to `disabled` entities are not checked (their tables are not filled)."""
    counts = ReadModel(warehouse).validation_counts(entity, unchecked=disabled)
    result = ValidationResult(
        entity=entity.name,
        row_count=counts["row_count"],
        deleted_count=counts["deleted_count"],
        orphans=counts["orphans"],
        duplicates=counts["duplicates"],
        children=counts["children"],
        unknown_shape_count=counts["unknown_shapes"],
    )
    SyncLedger(warehouse).record_validation(entity.name, run_id, result.as_dict())
    level = (
        logging.WARNING
        if (result.orphan_count or result.duplicate_count or result.unknown_shape_count)
        else logging.INFO
    )
    log.log(
        level,
        "%s: %d rows (%d deleted); orphans %s; duplicates %s; children %s%s",
        entity.name,
        result.row_count,
        result.deleted_count,
        result.orphans,
        result.duplicates,
        result.children,
        f"; {result.unknown_shape_count} rows in no known record shape" if result.unknown_shape_count else "",
    )
    return result
