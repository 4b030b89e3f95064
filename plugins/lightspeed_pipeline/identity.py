"""Store identity: a database mirrors one Lightspeed store, and never silently a second.

`sync_store` remembers the retail store (`GET /retailer`: its id and domain prefix). The
first run adopts the store its connection reaches, so a database that already held data from
before this check adopts its store too. Afterwards:
* `migrate` asks the API which store it reaches, once per run, and refuses another one
  before any entity task writes anything;
* an entity task trusts the API root that was last verified and asks again only when its
  connection now points elsewhere (a task cleared after someone edited the connection), so
  a run still makes one request per entity on unchanged data;
* switching stores happens only on purpose: a new `LIGHTSPEED_SCHEMA` (a separate copy), or
  the `switch_store` param naming the new store, which empties the tables and starts over.

The API version the database is filled with is recorded beside its store (`sync_store.api_version`)
and kept until LIGHTSPEED_API_VERSION names another one (`database_api_version` is the fallback
`connections.client_config_from_connection` takes when neither that variable nor a configured base
path names one). Switching needs
no full refresh: a record's version is the same number whichever API version serves it, so each
entity continues from its cursor; an entity with record shapes that differ between versions
(`Entity.shapes`: sales, inventory, tags, price books) is read once from 0 and its rows restated
in the new shape (`sync.plan_sync`'s `restate`), so its new columns fill and `data` is what the
new version sends.
"""

from __future__ import annotations

import logging

from lightspeed_pipeline.api.client import LightspeedClient
from lightspeed_pipeline.api.errors import LightspeedAuthError
from lightspeed_pipeline.entities import NEWEST, RETAILER_SCOPES
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.identity import (
    ADOPTED,
    SWITCHED,
    VERIFIED,
    RetailStore,
    StoredIdentity,
    remember_store,
    stored_identity,
)
from lightspeed_pipeline.warehouse.ledger import SyncLedger

log = logging.getLogger(__name__)


class StoreMismatchError(RuntimeError):
    """The connection reaches another store than the one this database mirrors."""

    permanent = True  # no retry can fix it: someone must decide


def mismatch_message(mine: StoredIdentity, theirs: RetailStore, api_url: str, switch_to: str | None = None) -> str:
    adopted = mine.adopted_at.strftime("%Y-%m-%d") if hasattr(mine.adopted_at, "strftime") else mine.adopted_at
    prefix = theirs.domain_prefix or theirs.id
    head = (
        f"store mismatch: this database mirrors {mine.store.label} (since {adopted}), but the "
        f"`lightspeed_api` connection ({api_url}) now reaches {theirs.label}. Nothing was written."
    )
    if switch_to:
        head += f" The switch_store param {switch_to!r} names neither its domain prefix nor its retailer id."
    return (
        f"{head} To keep both copies, give the other store its own LIGHTSPEED_SCHEMA; to replace this copy "
        f'with it, trigger the DAG with params {{"switch_store": "{prefix}"}} (empties every lightspeed_* '
        "table and imports the new store from scratch)."
    )


def database_api_version(warehouse: Warehouse) -> str:
    """The API version the database is filled with, or (a new database) the newest the tests prove."""
    mine = stored_identity(warehouse)
    return mine.api_version if mine is not None and mine.api_version else NEWEST


def verify_store(warehouse: Warehouse, client: LightspeedClient, *, switch_to: str | None = None) -> str:
    """Adopt, confirm or (on purpose) switch the store; raise `StoreMismatchError` otherwise.
    Records the API version the client speaks as the one the database is filled with.

    Returns what happened: "adopted", "verified" or "switched". The API is asked before the
    transaction opens, so no lock is held across the HTTP request.
    """
    try:
        theirs = RetailStore.from_api(client.retailer())
    except LightspeedAuthError as exc:
        if exc.status != 403:
            raise
        scopes = " and ".join(f"`{s}`" for s in RETAILER_SCOPES)
        raise LightspeedAuthError(f"{exc} The store check needs the {scopes} scopes.", status=403) from None
    api_url = client.config.api_root

    def decide(mine: StoredIdentity | None) -> str:
        if mine is None:
            return ADOPTED
        if mine.store.id == theirs.id:
            return VERIFIED
        if switch_to and theirs.matches(switch_to):
            return SWITCHED
        raise StoreMismatchError(mismatch_message(mine, theirs, api_url, switch_to))

    version = client.config.api_version
    outcome, mine = remember_store(warehouse, theirs, api_url, decide, api_version=version)
    if mine is not None and outcome == VERIFIED and mine.api_version != version:
        log.warning("API version switched: %s -> %s (no full refresh needed)", mine.api_version, version)
        SyncLedger(warehouse).log_event(
            "all", "api_version", "completed", metadata={"from": mine.api_version, "to": version}
        )
    if outcome != VERIFIED:
        SyncLedger(warehouse).log_event(
            "all",
            "store_identity",
            "completed",
            metadata={
                "outcome": outcome,
                "store": theirs.label,
                "previous": mine.store.label if mine else None,
                "api_url": api_url,
            },
        )
    log.info("store identity %s: %s at %s", outcome, theirs.label, api_url)
    return outcome


def ensure_same_store(warehouse: Warehouse, client: LightspeedClient) -> None:
    """Before an entity task reads records: no request when its API root is the verified one."""
    mine = stored_identity(warehouse)
    if mine is not None and (mine.api_url, mine.api_version) == (client.config.api_root, client.config.api_version):
        return
    verify_store(warehouse, client)
