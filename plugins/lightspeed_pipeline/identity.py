"""Store identity: a database mirrors one Lightspeed store, and never silently a second.

`sync_store` remembers the store (`GET /retailer`: its id and domain prefix). The first
run adopts the store its connection reaches, so a database that already held data from
before this check adopts its store too. Afterwards:
* `migrate` asks the API which store it reaches, once per run, and refuses another one
  before any entity task writes anything;
* an entity task trusts the API root that was last verified and asks again only when its
  connection now points elsewhere (a task cleared after someone edited the connection), so
  a run still makes one request per entity on unchanged data;
* switching stores happens only on purpose: a new `LIGHTSPEED_SCHEMA` (a separate copy), or
  the `switch_store` param naming the new store, which empties the tables and starts over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from lightspeed_pipeline.db import advisory_key, begin
from lightspeed_pipeline.entities import CHILD_TABLES, ENTITIES

if TYPE_CHECKING:
    from lightspeed_pipeline.client import LightspeedClient
    from lightspeed_pipeline.store import Store

log = logging.getLogger(__name__)


class StoreMismatchError(RuntimeError):
    """The connection reaches another store than the one this database mirrors."""

    permanent = True  # no retry can fix it: someone must decide


@dataclass(frozen=True)
class Retailer:
    id: str
    domain_prefix: str | None = None
    name: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Retailer:
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
    retailer: Retailer
    api_url: str
    adopted_at: Any


_SELECT_STORED = "SELECT retailer_id, domain_prefix, name, api_url, adopted_at FROM sync_store"


def _stored(row: Any) -> StoredIdentity | None:
    return StoredIdentity(Retailer(row[0], row[1], row[2]), row[3], row[4]) if row else None


def stored_identity(store: Store) -> StoredIdentity | None:
    with store.conn.transaction():
        begin(store.conn, store.settings)
        return _stored(store.conn.execute(_SELECT_STORED).fetchone())


def mismatch_message(mine: StoredIdentity, theirs: Retailer, api_url: str, switch_to: str | None = None) -> str:
    adopted = mine.adopted_at.strftime("%Y-%m-%d") if hasattr(mine.adopted_at, "strftime") else mine.adopted_at
    prefix = theirs.domain_prefix or theirs.id
    head = (
        f"store mismatch: this database mirrors {mine.retailer.label} (since {adopted}), but the "
        f"`lightspeed_api` connection ({api_url}) now reaches {theirs.label}. Nothing was written."
    )
    if switch_to:
        head += f" The switch_store param {switch_to!r} names neither its domain prefix nor its retailer id."
    return (
        f"{head} To keep both copies, give the other store its own LIGHTSPEED_SCHEMA; to replace this copy "
        f'with it, trigger the DAG with params {{"switch_store": "{prefix}"}} (empties every lightspeed_* '
        "table and imports the new store from scratch)."
    )


def verify_store(store: Store, client: LightspeedClient, *, switch_to: str | None = None) -> str:
    """Adopt, confirm or (on purpose) switch the store; raise `StoreMismatchError` otherwise.

    Returns what happened: "adopted", "verified" or "switched". The API is asked before the
    transaction opens, so no lock is held across the HTTP request.
    """
    theirs = Retailer.from_api(client.retailer())
    api_url = client.config.api_root
    with store.conn.transaction():
        begin(store.conn, store.settings)
        mine = _stored(store.conn.execute(_SELECT_STORED + " FOR UPDATE").fetchone())
        if mine is None:
            outcome = "adopted"
        elif mine.retailer.id == theirs.id:
            outcome = "verified"
        elif switch_to and theirs.matches(switch_to):
            _empty_the_copy(store)
            outcome = "switched"
        else:
            raise StoreMismatchError(mismatch_message(mine, theirs, api_url, switch_to))
        unchanged = mine is not None and outcome == "verified" and (mine.api_url, mine.retailer) == (api_url, theirs)
        if not unchanged:
            store.conn.execute(
                "INSERT INTO sync_store (retailer_id, domain_prefix, name, api_url) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (singleton) DO UPDATE SET retailer_id = excluded.retailer_id,"
                " domain_prefix = excluded.domain_prefix, name = excluded.name, api_url = excluded.api_url,"
                " verified_at = now(),"
                " adopted_at = CASE WHEN sync_store.retailer_id = excluded.retailer_id THEN sync_store.adopted_at"
                " ELSE now() END",
                (theirs.id, theirs.domain_prefix, theirs.name, api_url),
            )
    if outcome != "verified":
        previous = mine.retailer.label if mine else None
        store.log_event(
            "all",
            "store_identity",
            "completed",
            metadata={"outcome": outcome, "store": theirs.label, "previous": previous, "api_url": api_url},
        )
    log.info("store identity %s: %s at %s", outcome, theirs.label, api_url)
    return outcome


def ensure_same_store(store: Store, client: LightspeedClient) -> None:
    """Before an entity task reads records: no request when its API root is the verified one."""
    mine = stored_identity(store)
    if mine is not None and mine.api_url == client.config.api_root:
        return
    verify_store(store, client)


def _empty_the_copy(store: Store) -> None:
    """The deliberate switch: every lightspeed_* table emptied, every cursor reset, in the
    caller's transaction, holding every entity's lock (no sync of the old store is running)."""
    for entity in ENTITIES:
        store.conn.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key("entity", store.schema, entity.name),))
    tables = [e.table for e in ENTITIES] + list(CHILD_TABLES)
    store.conn.execute(
        sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(sql.Identifier(store.schema, t) for t in tables))
    )
    store.conn.execute(
        "UPDATE sync_state SET last_version = NULL, status = 'never_synced', last_sync_time = NULL,"
        " error_message = NULL, warning_message = NULL, last_reconciled_at = NULL, updated_at = now()"
    )
