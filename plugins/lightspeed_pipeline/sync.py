"""Sync one entity: page through the API and write each page in its own transaction.

Plain Python (no Airflow), so the benchmark and tests drive exactly what the DAG runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from lightspeed_pipeline.client import LightspeedAPIError, LightspeedClient, Page, record_version
from lightspeed_pipeline.entities import Entity
from lightspeed_pipeline.mapping import prepare_page, record_id, version_of
from lightspeed_pipeline.metrics import METRIC_KEYS as METRIC_KEYS  # the documented sync_log.metadata keys
from lightspeed_pipeline.metrics import METRICS as METRICS
from lightspeed_pipeline.metrics import progress_line
from lightspeed_pipeline.store import EntityLock, Listed, PageCounts, Store, SyncStart

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
    marked_deleted: int = 0  # live rows a complete listing no longer held
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
        return self.inserted + self.updated + self.marked_deleted

    def as_dict(self) -> dict[str, Any]:
        """The sync_log metadata: every key of `METRIC_KEYS` (documented in `metrics.METRICS`) and more."""
        rate = self.received / self.duration_s if self.duration_s > 0 else 0.0
        out = {
            "entity": self.entity,
            "action": self.action,
            "run_id": self.run_id,
            "try_number": self.try_number,
            "full_refresh": self.full_refresh,
            "start_version": self.start_version,
            "first_version": self.first_version,
            "last_version": self.last_version,
            "pages": self.pages,
            "records": self.received,
            "rows_inserted": self.inserted,
            "rows_updated": self.updated,
            "rows_unchanged": self.unchanged,
            "rows_deleted": self.deleted + self.marked_deleted,
            "rows_vanished": self.marked_deleted,
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
    store: Store,
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
    another store's). Entities without a delete feed are listed in full and reconciled
    (see `Entity.deletions`); a `periodic` one every `reconcile_every_days` (<= 0: only
    on a full refresh). A progress line goes to the log at most every `progress_every_s`
    seconds (see `metrics.progress_line`).
    """
    with store.entity_lock(entity, wait_s=lock_wait_s, skip=skip_if_busy) as lock:
        return _sync_locked(
            entity,
            client,
            store,
            lock,
            full_refresh=full_refresh,
            run_id=run_id,
            try_number=try_number,
            reconcile_every_days=reconcile_every_days,
            check_store=check_store,
            progress_every_s=progress_every_s,
        )


def lists_in_full(entity: Entity, state: SyncStart, *, full_refresh: bool, every_days: float) -> bool:
    """Whether this sync reads the complete listing and marks what it no longer holds deleted."""
    if not entity.reconciled:
        return False
    if not entity.versioned or entity.deletions == "every_run" or full_refresh:
        return True
    if every_days <= 0:
        return False
    last = state.last_reconciled_at
    return last is None or last < datetime.now(UTC) - timedelta(days=every_days)


def _sync_locked(
    entity: Entity,
    client: LightspeedClient,
    store: Store,
    lock: EntityLock,
    *,
    full_refresh: bool,
    run_id: str | None,
    try_number: int | None,
    reconcile_every_days: float,
    check_store: Callable[[], None] | None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> SyncResult:
    started = time.monotonic()
    state = store.start_sync(entity, run_id=run_id)
    resume = state.last_version or 0
    new = not state.last_version and state.status_before != "success"  # listed in full, but not new
    action = HISTORICAL if (full_refresh or new) else INCREMENTAL
    reconcile = lists_in_full(entity, state, full_refresh=full_refresh, every_days=reconcile_every_days)
    after = 0 if (full_refresh or reconcile) else max(0, resume - client.config.version_overlap)
    result = SyncResult(
        entity=entity.name,
        action=action,
        start_version=after if entity.versioned else None,
        run_id=run_id,
        try_number=try_number,
        full_refresh=full_refresh,
    )
    store.log_event(
        entity.name,
        action,
        "started",
        metadata={
            "run_id": run_id,
            "try_number": try_number,
            "after": after if entity.versioned else None,
            "full_refresh": full_refresh,
            "reconcile": reconcile,
        },
    )
    log.info(
        "%s: %s from version %s (page_size=%d)%s",
        entity.name, action, after, client.config.page_size, "; complete listing, reconciled" if reconcile else "",
    )  # fmt: skip
    current: Page | None = None
    # The progress bound: a listing that starts below the stored cursor (a full refresh, a
    # complete listing, an overlap) runs at least up to it. An incremental read has none: the
    # API's `version.max` is the page's own highest version, not the listing's.
    bound = state.last_version if entity.versioned and state.last_version and after < state.last_version else None
    begun_at: int | None = None  # the version just below the listing's first record
    last_progress = started
    pages: Iterator[Page] | None = None
    try:
        if check_store is not None:
            check_store()
        if entity.versioned:
            pages = client.iter_version_pages(
                entity.name, entity.endpoint, after=after, deleted=entity.supports_deleted
            )
        else:
            pages = client.iter_id_pages(entity.name, entity.endpoint)
        if client.config.prefetch:
            pages = prefetched(pages, join_timeout_s=client.config.timeout + client.config.connect_timeout)
        listed_total = 0
        top: int | None = None  # the listing's highest version
        unversioned: list[str] = []  # ids listed without a version (no version range covers them)
        waiting = time.monotonic()
        for current in pages:
            result.wait_s += time.monotonic() - waiting
            lock.check()
            result.fetch_s += current.fetch_s
            t0 = time.monotonic()
            listed = None
            if reconcile:
                listed = _listed(entity, current, unversioned)
                listed_total += len(current.records)
                if current.max_version is not None:
                    top = max(top or 0, current.max_version)
            if current.note:
                result.warnings.append(current.note)
            records, skipped = _newer_only(entity, store, current.records, state.last_version)
            prepared = prepare_page(entity, records)
            t_db = time.monotonic()
            counts = store.write_page(
                entity, prepared, cursor=current.max_version, after=current.after, run_id=run_id, listed=listed
            )
            result.db_write_s += time.monotonic() - t_db
            counts.received += skipped
            counts.unchanged += skipped
            result.marked_deleted += counts.vanished
            write_s = time.monotonic() - t0
            result.write_s += write_s
            result.pages += 1
            result.add(counts)
            result.untyped.update(prepared.untyped)
            if result.first_version is None and prepared.max_version is not None:
                result.first_version = min(
                    (r["version"] for r in prepared.rows if r.get("version") is not None), default=None
                )
            if current.max_version is not None:
                result.last_version = current.max_version
            log.info(
                "%s: page %d after %s: %d records (ins %d, upd %d, same %d, del %d, rej %d), max version %s,"
                " fetch %.3f s, write %.3f s",
                entity.name,
                current.number,
                current.after,
                counts.received,
                counts.inserted,
                counts.updated,
                counts.unchanged,
                counts.deleted,
                counts.rejected,
                current.max_version,
                current.fetch_s,
                write_s,
            )
            if entity.versioned and begun_at is None:
                first = [v for v in map(record_version, current.records) if v is not None]
                if first:
                    begun_at = min(first) - 1
                elif isinstance(current.after, int):
                    begun_at = current.after
            now = time.monotonic()
            if progress_every_s <= 0 or now - last_progress >= progress_every_s:
                last_progress = now
                log.info(
                    "%s",
                    progress_line(
                        entity.name,
                        page=current.number,
                        records=result.received,
                        elapsed_s=now - started,
                        position=current.max_version if entity.versioned else None,
                        start=begun_at,
                        end=bound,
                    ),
                )
            waiting = time.monotonic()
        if reconcile:
            _finish_listing(entity, store, result, listed_total, top, unversioned)
        if result.last_version is None:
            result.last_version = state.last_version
    except Exception as exc:
        # Stop the prefetch thread now: the traceback keeps this frame, and with it the
        # generator, alive until the exception is gone.
        close = getattr(pages, "close", None)
        if close is not None:
            close()
        result.duration_s = time.monotonic() - started
        result.http = client.stats.as_dict()
        permanent = bool(getattr(exc, "permanent", False))
        if isinstance(exc, LightspeedAPIError):
            message = str(exc)  # already "<entity> (page N, after version V): <why>"
            if not message.startswith(entity.name):
                message = f"{entity.name}: {message}"
        elif permanent:
            message = f"{entity.name}: {exc}"
        else:
            cursor_kind = "version" if entity.versioned else "id"
            where = (
                f"page {current.number}, after {cursor_kind} {current.after}" if current else "before the first page"
            )
            message = f"{entity.name} ({where}): {type(exc).__name__}: {exc}"
        _record_failure(store, entity, action, result, message)
        raise EntitySyncError(message, permanent=permanent, result=result) from exc
    result.duration_s = time.monotonic() - started
    result.http = client.stats.as_dict()
    store.finish_sync(entity, warning=result.health_warning, reconciled=result.reconciled)
    _log_outcome(store, entity, action, result, "completed")
    log.info(
        "%s: done: %d records in %d pages, %d requests (%d retries), inserted %d, updated %d, unchanged %d,"
        " deleted %d, rejected %d, version %s -> %s, %.2f s (%.0f rows/s)",
        entity.name,
        result.received,
        result.pages,
        client.stats.requests,
        client.stats.retries,
        result.inserted,
        result.updated,
        result.unchanged,
        result.deleted + result.marked_deleted,
        result.rejected,
        result.start_version,
        result.last_version,
        result.duration_s,
        result.received / result.duration_s if result.duration_s else 0.0,
    )
    if result.untyped:
        log.warning(
            "%s: values that could not be typed (kept in data, column NULL): %s", entity.name, dict(result.untyped)
        )
    return result


def _listed(entity: Entity, page: Page, unversioned: list[str]) -> Listed:
    """The ids a page of a complete listing holds, and the version range it covers."""
    ids: list[str] = []
    for record in page.records:
        rid = record_id(record)
        if rid is None:
            continue
        ids.append(rid)
        if not entity.versioned or version_of(record) is None:
            unversioned.append(rid)
    window = None
    if entity.versioned and page.max_version is not None and isinstance(page.after, int):
        window = (page.after, page.max_version)
    return Listed(window, ids)


def _finish_listing(
    entity: Entity, store: Store, result: SyncResult, listed_total: int, top: int | None, unversioned: list[str]
) -> None:
    """After a complete listing: mark what it no longer holds deleted, unless it was empty.

    An empty listing of a table with live rows is far likelier an outage or a permission
    change than a store that removed everything, so it deletes nothing and says so.
    """
    if listed_total == 0:
        live = store.live_rows(entity)
        if live:
            result.health_warning = (
                f"{entity.name}: the complete listing was empty while the table holds {live} live rows; "
                "nothing was marked deleted (an outage or a lost permission looks like this)"
            )
            result.warnings.append(result.health_warning)
            log.warning("%s", result.health_warning)
            return
    t_db = time.monotonic()
    result.marked_deleted += store.mark_missing_deleted(entity, max_version=top, unversioned_ids=unversioned)
    result.db_write_s += time.monotonic() - t_db
    result.reconciled = True
    if result.marked_deleted:
        log.info("%s: %d rows no longer listed by the API, marked deleted", entity.name, result.marked_deleted)


def _newer_only(entity: Entity, store: Store, records: list[Any], stored_upto: int | None) -> tuple[list[Any], int]:
    """Drop the records whose stored version is already as new (only a page that reaches
    back to or below the stored cursor can hold any: a full refresh, or an overlap).
    Returns the records to write and how many were skipped."""
    if not entity.versioned or stored_upto is None:
        return records, 0
    keyed = []
    for record in records:
        rid = record_id(record)
        keyed.append((record, rid, version_of(record) if rid is not None else None))
    if all(v is not None and v > stored_upto for _, _, v in keyed):
        return records, 0
    candidates = [(rid, v) for _, rid, v in keyed if rid is not None]
    newer = store.newer_ids(entity, [rid for rid, _ in candidates], [v for _, v in candidates])
    kept = [r for r, rid, _ in keyed if rid is None or rid in newer]  # no id: still a reject
    return kept, len(records) - len(kept)


def prefetched(pages: Iterator[Page], *, join_timeout_s: float = 70.0) -> Iterator[Page]:
    """Yield `pages`, fetching page n+1 in a thread while the caller writes page n.

    At most one page ahead: the fetcher starts on the next page only when the caller has
    taken the previous one, so memory holds two pages at most. A fetch error is raised
    to the caller at the point it asks for that page, so the pages before it are written
    (and their cursor committed) first, exactly as without prefetching. The client is
    used by the fetcher thread alone while this runs.
    """
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    go = threading.Semaphore(1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while True:
                go.acquire()
                if stop.is_set():
                    return
                page = next(pages, None)
                ready.put(("page", page) if page is not None else ("end", None))
                if page is None:
                    return
        except BaseException as exc:
            ready.put(("error", exc))

    thread = threading.Thread(target=fetch, name="lightspeed-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            go.release()  # start fetching the next page while the caller writes this one
            yield item
    finally:
        stop.set()
        go.release()
        thread.join(join_timeout_s)  # a fetch in flight ends within the client's timeouts


def _record_failure(store: Store, entity: Entity, action: str, result: SyncResult, message: str) -> None:
    """Best effort: the database itself may be what failed, so a broken connection is replaced once."""
    for attempt in (1, 2):
        try:
            store.ensure_connected()
            store.fail_sync(entity, message)
            _log_outcome(store, entity, action, result, "failed", error=message)
            return
        except Exception as exc:
            if attempt == 2:
                log.error("%s: could not record the failure in sync_state/sync_log: %s", entity.name, exc)


def _log_outcome(
    store: Store, entity: Entity, action: str, result: SyncResult, status: str, error: str | None = None
) -> None:
    """The sync_log row that ends a sync: duration, records and the counts as metadata."""
    store.log_event(
        entity.name,
        action,
        status,
        duration_s=result.duration_s,
        records=result.received,
        error=error,
        metadata=result.as_dict(),
    )
