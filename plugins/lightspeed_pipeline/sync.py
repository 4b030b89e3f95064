"""Sync one entity: page through the API and write each page in its own transaction.

Plain Python (no Airflow), so the benchmark and tests drive exactly what the DAG runs.
`sync_entity` takes the entity lock and runs an `EntitySync`, whose steps are each a unit:
the plan (`plan_sync`: from which version, historical or incremental, reconciled or not),
the page source (`page_source`: the registry's paginator, one page fetched ahead), each
page's write and its accounting (`EntitySync._write`), progress lines (`Progress`),
reconciliation (`Reconciliation`), the failure message (`failure_message`) and the
ledger rows that open and close the sync.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lightspeed_pipeline.api.client import LightspeedClient
from lightspeed_pipeline.api.errors import LightspeedAPIError
from lightspeed_pipeline.api.paginators import Page, paginator_for, prefetched
from lightspeed_pipeline.entities import COSTS_SCOPE, Entity, ParentPaging
from lightspeed_pipeline.mapping import prepare_page, shape_of
from lightspeed_pipeline.metrics import METRIC_KEYS as METRIC_KEYS  # the documented sync_log.metadata keys
from lightspeed_pipeline.metrics import METRICS as METRICS
from lightspeed_pipeline.metrics import progress_line
from lightspeed_pipeline.records import record_id, version_of
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.ledger import SyncLedger, SyncStart
from lightspeed_pipeline.warehouse.locks import EntityLock, entity_lock
from lightspeed_pipeline.warehouse.pages import PageCounts, PageWriter
from lightspeed_pipeline.warehouse.reads import ReadModel
from lightspeed_pipeline.warehouse.reconciliation import (
    ReconcileWindow,
    live_rows,
    mark_children_of_deleted_parents,
    mark_vanished,
    parents_after,
)

log = logging.getLogger(__name__)

HISTORICAL = "historical_import"
INCREMENTAL = "incremental_sync"
PROGRESS_EVERY_S = 10.0  # a progress line in the task log at most this often (0: after every page)


class EntitySyncError(RuntimeError):
    """An entity's sync failed; the message names the entity, the page and the cause.

    `permanent`: retrying the task cannot help (see `LightspeedAPIError.permanent`).
    `result`: what the sync had done when it failed (its metrics, as in the `failed` sync_log row).
    """

    def __init__(self, message: str, *, permanent: bool = False, result: SyncResult | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.result = result


@dataclass
class SyncResult:
    """Counts and versions of one entity sync (this is what goes to XCom)."""

    entity: str
    action: str
    start_version: int | None
    run_id: str | None = None
    try_number: int | None = None  # the Airflow try (the health page links the failure to its log)
    full_refresh: bool = False
    api_version: str | None = None  # the Lightspeed API version the sync read with
    last_version: int | None = None
    first_version: int | None = None
    pages: int = 0
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    child_rows: int = 0
    rejected: int = 0
    escaped: int = 0
    vanished: int = 0  # live rows a complete listing no longer held, marked deleted
    reconciled: bool = False  # a complete listing was compared with the table
    warnings: list[str] = field(default_factory=list)  # notes for sync_log (the run still succeeds)
    health_warning: str | None = None  # a finding that makes sync_health say WARNING until a clean sync
    untyped: Counter[str] = field(default_factory=Counter)
    duration_s: float = 0.0
    fetch_s: float = 0.0
    write_s: float = 0.0  # per page: mapping and writing (db_write_s is the database's part)
    db_write_s: float = 0.0
    wait_s: float = 0.0  # time the writer waited for the next page (fetch_s minus the overlap)
    http: dict[str, Any] = field(default_factory=dict)

    def add(self, counts: PageCounts) -> None:
        for name in ("received", "inserted", "updated", "unchanged", "deleted", "child_rows", "rejected", "escaped"):
            setattr(self, name, getattr(self, name) + getattr(counts, name))

    @property
    def written(self) -> int:
        return self.inserted + self.updated + self.vanished

    def as_dict(self) -> dict[str, Any]:
        """The sync_log metadata: every key of `METRIC_KEYS` (documented in `metrics.METRICS`) and more."""
        rate = self.received / self.duration_s if self.duration_s > 0 else 0.0
        out = {
            "entity": self.entity,
            "action": self.action,
            "run_id": self.run_id,
            "try_number": self.try_number,
            "full_refresh": self.full_refresh,
            "api_version": self.api_version,
            "start_version": self.start_version,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "pages": self.pages,
            "records": self.received,
            "rows_inserted": self.inserted,
            "rows_updated": self.updated,
            "rows_unchanged": self.unchanged,
            "rows_deleted": self.deleted + self.vanished,
            "rows_vanished": self.vanished,
            "reconciled": self.reconciled,
            "warnings": self.warnings,
            "child_rows": self.child_rows,
            "rejected": self.rejected,
            "escaped_strings": self.escaped,
            "untyped_values": dict(self.untyped),
            "duration_s": round(self.duration_s, 3),
            "fetch_s": round(self.fetch_s, 3),
            "write_s": round(self.write_s, 3),
            "db_write_s": round(self.db_write_s, 3),
            "wait_s": round(self.wait_s, 3),
            "rows_per_s": round(rate, 1),
            **self.http,
        }
        for key in METRIC_KEYS:  # the client's keys, before any request was made
            out.setdefault(key, 0)
        return out


def sync_entity(
    entity: Entity,
    client: LightspeedClient,
    warehouse: Warehouse,
    *,
    full_refresh: bool = False,
    run_id: str | None = None,
    try_number: int | None = None,
    lock_wait_s: float = 3600.0,
    skip_if_busy: bool = False,
    reconcile_every_days: float = 7.0,
    check_store: Callable[[], None] | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> SyncResult:
    """Bring `entity`'s table up to date with the API; raise `EntitySyncError` on failure.

    Runs under the entity's advisory lock, so two syncs of one entity (a manual run
    next to the scheduled one, a cleared task next to a running one) never interleave:
    the second waits (or raises `EntityBusyError` at once with `skip_if_busy`) and then
    resumes from the cursor the first one committed. Marks sync_state running ->
    success/failed and writes `started` and `completed`/`failed` rows to sync_log.
    `check_store` runs before the first request for records (it raises when the API is
    another store's). Entities without a delete feed are reconciled (see `Entity.deletions`):
    a `periodic` one every `reconcile_every_days` (<= 0: only on a full refresh). A progress
    line goes to the log at most every `progress_every_s` seconds (see `metrics.progress_line`).
    """
    with entity_lock(warehouse, entity, wait_s=lock_wait_s, skip=skip_if_busy) as lock:
        sync = EntitySync(entity, client, warehouse, lock, run_id=run_id, try_number=try_number)
        return sync.run(
            full_refresh=full_refresh,
            reconcile_every_days=reconcile_every_days,
            check_store=check_store,
            progress_every_s=progress_every_s,
        )


def reconciles(entity: Entity, state: SyncStart, *, full_refresh: bool, every_days: float) -> bool:
    """Whether this sync reads the complete listing and marks the rows it no longer holds vanished."""
    if not entity.reconciled:
        return False
    if not entity.versioned or entity.deletions == "every_run" or full_refresh:
        return True
    if every_days <= 0:
        return False
    last = state.last_reconciled_at
    return last is None or last < datetime.now(UTC) - timedelta(days=every_days)


@dataclass(frozen=True)
class SyncPlan:
    """What one sync will read."""

    action: str  # HISTORICAL or INCREMENTAL
    after: int  # the version the listing starts above (0 for id paging)
    reconcile: bool  # a complete listing, reconciled with the table
    stored_upto: int | None  # the committed cursor: records at or below it may already be stored
    # The progress bound: a listing that starts below the stored cursor (a full refresh, a
    # reconciliation, an overlap) runs at least up to it. An incremental read has none: the
    # API's `version.max` is the page's own highest version, not the listing's.
    bound: int | None
    # The API version changed since the entity's last successful sync and it has published
    # record shapes: it is read from 0 once, and every row still in another shape is restated
    # (same version, new shape: its new columns filled); the other entities go on from their cursor.
    restate: bool = False


def plan_sync(
    entity: Entity,
    state: SyncStart,
    *,
    full_refresh: bool,
    overlap: int,
    reconcile_every_days: float,
    api_version: str | None = None,
) -> SyncPlan:
    new = not state.last_version and state.status_before != "success"  # listed in full, but not new
    reconcile = reconciles(entity, state, full_refresh=full_refresh, every_days=reconcile_every_days)
    restate = bool(entity.shapes) and None not in (state.api_version, api_version) and state.api_version != api_version
    after = 0 if (full_refresh or reconcile or restate) else max(0, (state.last_version or 0) - overlap)
    bound = state.last_version if entity.versioned and state.last_version and after < state.last_version else None
    return SyncPlan(
        action=HISTORICAL if (full_refresh or new) else INCREMENTAL,
        after=after,
        reconcile=reconcile,
        stored_upto=state.last_version,
        bound=bound,
        restate=restate,
    )


def page_source(entity: Entity, client: LightspeedClient, plan: SyncPlan, warehouse: Warehouse) -> Iterator[Page]:
    """The listing's pages from the registry's paginator, one page fetched ahead (when on); an
    entity read per parent lists the children of the parents whose version is above the cursor."""
    parents = parents_after(warehouse, entity, after=plan.after) if isinstance(entity.paging, ParentPaging) else None
    if parents is not None:
        log.info("%s: %d %s changed since version %s", entity.name, len(parents), entity.paging.parent, plan.after)
    pages = paginator_for(entity, client, after=plan.after, parents=parents).pages()
    if client.config.prefetch:
        pages = prefetched(pages, join_timeout_s=client.config.timeout + client.config.connect_timeout)
    return pages


class Reconciliation:
    """A complete listing, page by page: what each page proves vanished, and the final sweep."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity
        self.listed = 0
        self.top: int | None = None  # the listing's highest version
        self.unversioned: list[str] = []  # ids listed without a version (no version range covers them)
        self.complete = True  # False when a page says the listing may be cut short

    def window(self, page: Page) -> ReconcileWindow:
        """The ids a page holds, and the version range it covers."""
        self.listed += len(page.records)
        self.complete = self.complete and page.complete
        if page.max_version is not None:
            self.top = max(self.top or 0, page.max_version)
        ids: list[str] = []
        for record in page.records:
            rid = record_id(record, self.entity.id_member)
            if rid is None:
                continue
            ids.append(rid)
            if not self.entity.versioned or version_of(record) is None:
                self.unversioned.append(rid)
        versions = None
        if self.entity.versioned and page.max_version is not None and isinstance(page.after, int):
            versions = (page.after, page.max_version)
        return ReconcileWindow(versions, ids)

    def finish(self, warehouse: Warehouse, result: SyncResult) -> None:
        """After the last page: mark what the listing no longer holds vanished, unless it was empty.

        An empty listing of a table with live rows is far likelier an outage or a permission
        change than a store that removed everything, so it marks nothing and says so.
        """
        name = self.entity.name
        if not self.complete:
            return  # its page said why (a note in sync_log)
        if self.listed == 0:
            live = live_rows(warehouse, self.entity)
            if live:
                result.health_warning = (
                    f"{name}: the complete listing was empty while the table holds {live} live rows; "
                    "nothing was marked deleted (an outage or a lost permission looks like this)"
                )
                result.warnings.append(result.health_warning)
                log.warning("%s", result.health_warning)
                return
        t_db = time.monotonic()
        result.vanished += mark_vanished(warehouse, self.entity, max_version=self.top, unversioned_ids=self.unversioned)
        result.db_write_s += time.monotonic() - t_db
        result.reconciled = True
        if result.vanished:
            log.info("%s: %d rows no longer listed by the API, marked deleted", name, result.vanished)


class Progress:
    """Progress lines in the task log, at most every `every_s` seconds (0: after every page)."""

    def __init__(self, entity: Entity, *, started: float, bound: int | None, every_s: float) -> None:
        self.entity = entity
        self.started = started
        self.bound = bound
        self.every_s = every_s
        self.last = started
        self.begun_at: int | None = None  # the version just below the listing's first record

    def page(self, page: Page, records: int) -> None:
        if self.entity.versioned and self.begun_at is None:
            first = [v for v in map(version_of, page.records) if v is not None]
            if first:
                self.begun_at = min(first) - 1
            elif isinstance(page.after, int):
                self.begun_at = page.after
        now = time.monotonic()
        if self.every_s > 0 and now - self.last < self.every_s:
            return
        self.last = now
        line = progress_line(
            self.entity.name,
            page=page.number,
            records=records,
            elapsed_s=now - self.started,
            position=page.max_version if self.entity.versioned else None,
            start=self.begun_at,
            end=self.bound,
        )
        log.info("%s", line)


def failure_message(entity: Entity, exc: BaseException, page: Page | None) -> str:
    """One line naming the entity, the page (its cursor) and the cause (for a 403: the scope)."""
    if isinstance(exc, LightspeedAPIError):
        message = str(exc)  # already "<entity> (page N, after version V): <why>"
        if exc.status == 403:
            message += (
                f" The {entity.name} listing needs the `{entity.read_scope}` scope; if the store does not grant"
                f" it, add {entity.name} to LIGHTSPEED_ENTITIES_DISABLED."
            )
        return message if message.startswith(entity.name) else f"{entity.name}: {message}"
    if getattr(exc, "permanent", False):
        return f"{entity.name}: {exc}"
    cursor_kind = "version" if entity.versioned else "id"
    where = f"page {page.number}, after {cursor_kind} {page.after}" if page else "before the first page"
    return f"{entity.name} ({where}): {type(exc).__name__}: {exc}"


class EntitySync:
    """One sync of one entity, under its lock (see `sync_entity`)."""

    def __init__(
        self,
        entity: Entity,
        client: LightspeedClient,
        warehouse: Warehouse,
        lock: EntityLock,
        *,
        run_id: str | None,
        try_number: int | None,
    ) -> None:
        self.entity = entity
        self.client = client
        self.warehouse = warehouse
        self.lock = lock
        self.run_id = run_id
        self.try_number = try_number
        self.ledger = SyncLedger(warehouse)
        self.writer = PageWriter(warehouse)

    def run(
        self,
        *,
        full_refresh: bool,
        reconcile_every_days: float,
        check_store: Callable[[], None] | None,
        progress_every_s: float = PROGRESS_EVERY_S,
    ) -> SyncResult:
        entity = self.entity
        started = time.monotonic()
        state = self.ledger.start(entity, run_id=self.run_id)
        plan = plan_sync(
            entity,
            state,
            full_refresh=full_refresh,
            overlap=self.client.config.version_overlap,
            reconcile_every_days=reconcile_every_days,
            api_version=self.client.config.api_version,
        )
        result = SyncResult(
            entity=entity.name,
            action=plan.action,
            start_version=plan.after if entity.versioned else None,
            run_id=self.run_id,
            try_number=self.try_number,
            full_refresh=full_refresh,
            api_version=self.client.config.api_version,
        )
        self._log_start(plan, full_refresh)
        progress = Progress(entity, started=started, bound=plan.bound, every_s=progress_every_s)
        reconciliation = Reconciliation(entity) if plan.reconcile else None
        current: Page | None = None
        pages: Iterator[Page] | None = None
        try:
            if check_store is not None:
                check_store()
            pages = page_source(entity, self.client, plan, self.warehouse)
            waiting = time.monotonic()
            for current in pages:
                result.wait_s += time.monotonic() - waiting
                self.lock.check()
                self._write(current, plan, result, reconciliation)
                progress.page(current, result.received)
                waiting = time.monotonic()
            if reconciliation is not None:
                reconciliation.finish(self.warehouse, result)
            if entity.cost_members:
                self._check_costs(result)
            if isinstance(entity.paging, ParentPaging):
                gone = mark_children_of_deleted_parents(self.warehouse, entity)
                result.vanished += gone
                if gone:
                    log.info("%s: %d rows of deleted %s marked deleted", entity.name, gone, entity.paging.parent)
            if result.last_version is None:
                result.last_version = state.last_version
        except Exception as exc:
            # Stop the prefetch thread now: the traceback keeps this frame, and with it the
            # generator, alive until the exception is gone.
            close = getattr(pages, "close", None)
            if close is not None:
                close()
            message = failure_message(entity, exc, current)
            self._record_failure(result, started, message)
            raise EntitySyncError(message, permanent=bool(getattr(exc, "permanent", False)), result=result) from exc
        self._record_success(result, started)
        return result

    def _check_costs(self, result: SyncResult) -> None:
        """Cost members come empty when the token lacks `products:read:costs`: the rows are kept
        with their cost columns empty, and sync_health says why (WARNING) until costs arrive."""
        rows, costless = ReadModel(self.warehouse).without_costs(self.entity)
        if rows and costless == rows:
            result.health_warning = (
                f"{self.entity.name}: none of the {rows} rows has a cost ({', '.join(self.entity.cost_members)});"
                f" the API sends costs only with the `{COSTS_SCOPE}` scope: grant it, then run a full refresh"
                f" of {self.entity.name} to fill them (the rows are kept, their cost columns empty)"
            )
            result.warnings.append(result.health_warning)
            log.warning("%s", result.health_warning)

    def _log_start(self, plan: SyncPlan, full_refresh: bool) -> None:
        versioned = self.entity.versioned
        self.ledger.log_event(
            self.entity.name,
            plan.action,
            "started",
            metadata={
                "run_id": self.run_id,
                "try_number": self.try_number,
                "after": plan.after if versioned else None,
                "full_refresh": full_refresh,
                "reconcile": plan.reconcile,
                "restate": plan.restate,
            },
        )
        log.info(
            "%s: %s from version %s (page_size=%d, API %s)%s%s",
            self.entity.name, plan.action, plan.after, self.client.config.page_size, self.client.config.api_version,
            "; complete listing, reconciled" if plan.reconcile else "",
            "; the API version changed: restating rows in its record shape" if plan.restate else "",
        )  # fmt: skip

    def _write(self, page: Page, plan: SyncPlan, result: SyncResult, reconciliation: Reconciliation | None) -> None:
        """Write one page (its cursor in the same transaction) and add what it did to `result`."""
        entity = self.entity
        result.fetch_s += page.fetch_s
        t0 = time.monotonic()
        window = reconciliation.window(page) if reconciliation is not None else None
        if page.listed is not None and isinstance(entity.paging, ParentPaging):  # a parent's listing ends
            window = ReconcileWindow(None, page.listed, parent=(entity.paging.parent_key, page.parent or ""))
        if page.note:
            result.warnings.append(page.note)
        records, keys, skipped = self._newer_only(page.records, plan.stored_upto, page.keys)
        prepared = prepare_page(entity, records, page.parent, keys)
        t_db = time.monotonic()
        counts = self.writer.write(
            entity, prepared, cursor=page.max_version, after=page.after, run_id=self.run_id, window=window
        )
        result.db_write_s += time.monotonic() - t_db
        counts.received += skipped
        counts.unchanged += skipped
        result.vanished += counts.vanished
        write_s = time.monotonic() - t0
        result.write_s += write_s
        result.pages += 1 if page.listed is None else 0  # a parent's closing page was no request
        result.add(counts)
        result.untyped.update(prepared.untyped)
        if result.first_version is None and prepared.max_version is not None:
            result.first_version = min(
                (r["version"] for r in prepared.rows if r.get("version") is not None), default=None
            )
        if page.max_version is not None:
            result.last_version = page.max_version
        log.info(
            "%s: page %d after %s: %d records (ins %d, upd %d, same %d, del %d, rej %d), max version %s,"
            " fetch %.3f s, write %.3f s",
            entity.name, page.number, page.after, counts.received, counts.inserted, counts.updated,
            counts.unchanged, counts.deleted, counts.rejected, page.max_version, page.fetch_s, write_s,
        )  # fmt: skip

    def _newer_only(
        self, records: list[Any], stored_upto: int | None, keys: list[str | None] | None = None
    ) -> tuple[list[Any], list[str | None] | None, int]:
        """Drop the records whose stored version is already as new (only a page that reaches
        back to or below the stored cursor can hold any: a full refresh, or an overlap; and a
        parent's listing, which always starts at 0: `keys` are then its records' row ids).
        Returns the records to write, their row ids (with `keys`) and how many were skipped."""
        under = keys is not None  # the cursor is the parents' version, not these records': always ask
        if not self.entity.versioned or not records or (stored_upto is None and not under):
            return records, keys, 0
        ids = keys if keys is not None else [record_id(r) for r in records]
        keyed = [(r, rid, version_of(r) if rid is not None else None) for r, rid in zip(records, ids, strict=True)]
        if not under and all(v is not None and v > (stored_upto or 0) for _, _, v in keyed):
            return records, keys, 0
        candidates = [(record, rid, v) for record, rid, v in keyed if rid is not None]
        shapes = [shape_of(self.entity, r) if isinstance(r, dict) else None for r, _, _ in candidates]
        costed = [  # records that carry a cost (a row stored without one takes them: `pages._costed`)
            rid for r, rid, _ in candidates if any(r.get(m) is not None for m in self.entity.cost_members)
        ]
        newer = self.writer.newer_ids(
            self.entity, [rid for _, rid, _ in candidates], [v for _, _, v in candidates], shapes, costed
        )
        kept = [(r, rid) for r, rid, _ in keyed if rid is None or rid in newer]  # no id: still a reject
        return [r for r, _ in kept], ([rid for _, rid in kept] if under else None), len(records) - len(kept)

    def _record_success(self, result: SyncResult, started: float) -> None:
        entity = self.entity
        result.duration_s = time.monotonic() - started
        result.http = self.client.stats.as_dict()
        self.ledger.finish(
            entity,
            warning=result.health_warning,
            reconciled=result.reconciled,
            api_version=self.client.config.api_version,
        )
        self._log_outcome(result, "completed")
        stats = self.client.stats
        log.info(
            "%s: done: %d records in %d pages, %d requests (%d retries), inserted %d, updated %d, unchanged %d,"
            " deleted %d, rejected %d, version %s -> %s, %.2f s (%.0f rows/s)",
            entity.name, result.received, result.pages, stats.requests, stats.retries, result.inserted,
            result.updated, result.unchanged, result.deleted + result.vanished, result.rejected,
            result.start_version, result.last_version, result.duration_s,
            result.received / result.duration_s if result.duration_s else 0.0,
        )  # fmt: skip
        if result.untyped:
            log.warning(
                "%s: values that could not be typed (kept in data, column NULL): %s", entity.name, dict(result.untyped)
            )

    def _record_failure(self, result: SyncResult, started: float, message: str) -> None:
        """Best effort: the database itself may be what failed, so a broken connection is replaced once."""
        result.duration_s = time.monotonic() - started
        result.http = self.client.stats.as_dict()
        for attempt in (1, 2):
            try:
                self.warehouse.ensure_connected()
                self.ledger.fail(self.entity, message)
                self._log_outcome(result, "failed", error=message)
                return
            except Exception as exc:
                if attempt == 2:
                    log.error("%s: could not record the failure in sync_state/sync_log: %s", self.entity.name, exc)

    def _log_outcome(self, result: SyncResult, status: str, error: str | None = None) -> None:
        """The sync_log row that ends a sync: duration, records and the counts as metadata."""
        self.ledger.log_event(
            self.entity.name,
            result.action,
            status,
            duration_s=result.duration_s,
            records=result.received,
            error=error,
            metadata=result.as_dict(),
        )
