"""Which retail store the warehouse mirrors: the `sync_store` row (see `identity.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from lightspeed_pipeline.entities import CHILD_TABLES, ENTITIES
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.locks import entity_lock_key

ADOPTED, VERIFIED, SWITCHED = "adopted", "verified", "switched"


@dataclass(frozen=True)
class RetailStore:
    """A Lightspeed store, as `GET /retailer` names it."""

    id: str
    domain_prefix: str | None = None
    name: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> RetailStore:
        prefix = data.get("domain_prefix")
        name = data.get("name")
        return cls(str(data["id"]), str(prefix) if prefix else None, str(name) if name else None)

    @property
    def label(self) -> str:
        return f"store '{self.domain_prefix or '?'}' (retailer id {self.id})"

    def matches(self, wanted: str) -> bool:
        wanted = wanted.strip().lower()
        return wanted in (self.id.lower(), (self.domain_prefix or "").lower())


@dataclass(frozen=True)
class StoredIdentity:
    """The store the warehouse mirrors, the API root it was last verified at, since when, and the
    API version it is filled with."""

    store: RetailStore
    api_url: str
    adopted_at: Any
    api_version: str | None = None


def _identity(row: Any) -> StoredIdentity | None:
    return StoredIdentity(RetailStore(row[0], row[1], row[2]), row[3], row[4], row[5]) if row else None


def _select(warehouse: Warehouse) -> sql.Composed:
    return sql.SQL("SELECT retailer_id, domain_prefix, name, api_url, adopted_at, api_version FROM {}").format(
        warehouse.table("sync_store")
    )


def stored_identity(warehouse: Warehouse) -> StoredIdentity | None:
    with warehouse.transaction() as conn:
        return _identity(conn.execute(_select(warehouse)).fetchone())


def remember_store(
    warehouse: Warehouse,
    theirs: RetailStore,
    api_url: str,
    decide: Callable[[StoredIdentity | None], str],
    api_version: str | None = None,
) -> tuple[str, StoredIdentity | None]:
    """In one transaction holding the `sync_store` row: `decide(mine)` says what the API's store
    is to this warehouse (ADOPTED, VERIFIED or SWITCHED, or raises), then the row is written
    (a switch first empties the copy) with the API version the warehouse is filled with from now
    on. Returns (the outcome, what was stored before)."""
    with warehouse.transaction() as conn:
        mine = _identity(conn.execute(_select(warehouse) + sql.SQL(" FOR UPDATE")).fetchone())
        outcome = decide(mine)
        if outcome == SWITCHED:
            _empty_the_copy(warehouse, conn)
        unchanged = (
            mine is not None
            and outcome == VERIFIED
            and (mine.api_url, mine.store, mine.api_version) == (api_url, theirs, api_version)
        )
        if not unchanged:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {t} AS s (retailer_id, domain_prefix, name, api_url, api_version)"
                    " VALUES (%s, %s, %s, %s, %s)"
                    " ON CONFLICT (singleton) DO UPDATE SET retailer_id = excluded.retailer_id,"
                    " domain_prefix = excluded.domain_prefix, name = excluded.name, api_url = excluded.api_url,"
                    " api_version = excluded.api_version, verified_at = now(),"
                    " adopted_at = CASE WHEN s.retailer_id = excluded.retailer_id THEN s.adopted_at ELSE now() END"
                ).format(t=warehouse.table("sync_store")),
                (theirs.id, theirs.domain_prefix, theirs.name, api_url, api_version),
            )
    return outcome, mine


def _empty_the_copy(warehouse: Warehouse, conn: Any) -> None:
    """The deliberate switch: every lightspeed_* table emptied, every cursor reset, in the
    caller's transaction, holding every entity's lock (no sync of the old store is running)."""
    for entity in ENTITIES:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (entity_lock_key(warehouse.schema, entity.name),))
    tables = [e.table for e in ENTITIES] + list(CHILD_TABLES)
    conn.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(warehouse.table(t) for t in tables)))
    conn.execute(
        sql.SQL(
            "UPDATE {} SET last_version = NULL, status = 'never_synced', last_sync_time = NULL,"
            " error_message = NULL, warning_message = NULL, last_reconciled_at = NULL, updated_at = now()"
        ).format(warehouse.table("sync_state"))
    )
