"""Reconciliation: finding the rows a complete listing no longer holds (vanished rows).

Entities without a delete feed are listed in full now and then (`Entity.deletions`). Each
page of such a listing proves absent the live rows whose version lies in the page's range
(after, page max] but whose id the page does not hold (`ReconcileWindow`, marked in the
page's own transaction); after the last page, every live row above the listing's highest
version and every unversioned row it did not name has vanished too (`mark_vanished`).
A vanished row keeps its data and gets `deleted_at`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from lightspeed_pipeline.entities import BY_NAME, Entity, ParentPaging, path_fields
from lightspeed_pipeline.records import ParentRef
from lightspeed_pipeline.warehouse.connection import Warehouse


@dataclass(frozen=True)
class ReconcileWindow:
    """What one page of a complete listing proves absent: live rows with a version in
    `versions` (after, page max] whose id is not among `ids` (every id the page listed); or,
    with `parent` (column, parent id), the live rows of that parent not among `ids` (the end
    of one parent's complete listing, `ParentPaging`)."""

    versions: tuple[int, int] | None
    ids: list[str]
    parent: tuple[str, str] | None = None


def mark_vanished_in_window(conn: Any, table: sql.Identifier, window: ReconcileWindow) -> int:
    """Inside the page's transaction: mark the window's vanished rows deleted; returns how many."""
    if window.parent is not None:
        column, parent_id = window.parent
        cur = conn.execute(
            sql.SQL(
                "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE deleted_at IS NULL"
                " AND {column} = %(parent)s AND NOT (id = ANY(%(ids)s))"
            ).format(t=table, column=sql.Identifier(column)),
            {"parent": parent_id, "ids": window.ids},
        )
        return max(cur.rowcount, 0)
    if window.versions is None:
        return 0
    cur = conn.execute(
        sql.SQL(
            "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE deleted_at IS NULL"
            " AND version > %(low)s AND version <= %(high)s AND NOT (id = ANY(%(ids)s))"
        ).format(t=table),
        {"low": window.versions[0], "high": window.versions[1], "ids": window.ids},
    )
    return max(cur.rowcount, 0)


def mark_vanished(warehouse: Warehouse, entity: Entity, *, max_version: int | None, unversioned_ids: list[str]) -> int:
    """After a complete listing: the live rows it did not reach have vanished.

    The pages already marked what vanished inside their version ranges; what is left is every
    row above the listing's highest version, and every row without a version (product
    categories; the vendor's unversioned examples) that the listing did not name.
    """
    with warehouse.transaction() as conn:
        cur = conn.execute(
            sql.SQL(
                "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE deleted_at IS NULL"
                " AND NOT (id = ANY(%(ids)s)) AND (version IS NULL OR %(max)s::bigint IS NULL OR version > %(max)s)"
            ).format(t=warehouse.table(entity.table)),
            {"ids": unversioned_ids, "max": max_version},
        )
        return max(cur.rowcount, 0)


def live_rows(warehouse: Warehouse, entity: Entity) -> int:
    """Rows of the entity's table not marked deleted (an empty listing of a table with live
    rows is an outage, not a store that removed everything)."""
    with warehouse.transaction() as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {t} WHERE deleted_at IS NULL").format(t=warehouse.table(entity.table))
        ).fetchone()
    return int(row[0]) if row else 0


def parents_after(warehouse: Warehouse, entity: Entity, *, after: int) -> list[ParentRef]:
    """The live parents of an entity read per parent whose version is above `after`, in version
    order, with the columns its path names (`ParentPaging.path`)."""
    paging = entity.paging
    assert isinstance(paging, ParentPaging)
    fields = path_fields(paging.path)
    with warehouse.transaction() as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT id, version{fields} FROM {t} WHERE deleted_at IS NULL AND version > %s ORDER BY version, id"
            ).format(
                fields=sql.SQL("").join(sql.SQL(", {}").format(sql.Identifier(f)) for f in fields),
                t=warehouse.table(BY_NAME[paging.parent].table),
            ),
            (after,),
        ).fetchall()
    return [ParentRef(r[0], r[1], dict(zip(fields, r[2:], strict=True))) for r in rows]


def mark_children_of_deleted_parents(warehouse: Warehouse, entity: Entity) -> int:
    """The live rows of an entity read per parent whose parent is deleted (or gone from its
    listing) are deleted too; returns how many were marked."""
    paging = entity.paging
    assert isinstance(paging, ParentPaging)
    with warehouse.transaction() as conn:
        cur = conn.execute(
            sql.SQL(
                "UPDATE {t} c SET deleted_at = now(), synced_at = now() FROM {p} p"
                " WHERE c.deleted_at IS NULL AND p.id = c.{key} AND p.deleted_at IS NOT NULL"
            ).format(
                t=warehouse.table(entity.table),
                p=warehouse.table(BY_NAME[paging.parent].table),
                key=sql.Identifier(paging.parent_key),
            )
        )
        return max(cur.rowcount, 0)
