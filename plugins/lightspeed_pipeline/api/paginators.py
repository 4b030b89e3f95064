"""Paginators: one class per paging style of the API, chosen by the entity registry.

A paginator yields `Page`s of one listing. Each style keeps in one place what it sends,
where the records are in the answer, when the listing ends (the stop rule) and how the
cursor moves (the cursor rule):

* `VersionPaging` -> `VersionPaginator`: sends `after=<version>&page_size=N` (plus
  `deleted=true` where supported); stops only on an empty page (a short or full page proves
  nothing); the cursor moves to the page's highest version (records' versions and
  `version.max`), and must advance.
* `IdPaging` -> `IdPaginator`: sends `page_size=N[&after=<id>]`; stops on an empty page or
  `page_info.has_next` false; the cursor moves to `page_info.last_seen`, else the last
  record's id, and must advance.
* `PostedVersionPaging` -> `PostedPaginator` (2026-07 inventory): POSTs a JSON body `{after,
  size, sort_direction: "asc", include_deleted}` (ascending said explicitly: the endpoint's
  default is newest first, which a cursor would skip through); the answer is a bare array;
  stops only on an empty one; the cursor moves to the highest record version, and must advance.

* `ParentPaging` -> `ParentPaginator` (a consignment's products): per parent the caller names
  (those whose version moved), a `VersionPaginator` over the parent's own path, then a closing
  page that lists the ids the parent's listing held and moves the cursor to the parent's version.
* `DescIdPaging` -> `DescIdPaginator` (gift cards): sends `page_size=N[&before=<id>]`, newest
  first; stops only on an empty page; the cursor moves to the last record's id, and must change.
* `WholeList` -> `WholeListPaginator` (store credits, promotions): one request, no cursor; an
  answer of `max_size` records or more may be cut short, so its page says it is not complete.

A new style (offset paging, say) is one more spec in `entities.py` and one more class here,
registered in `PAGINATORS`.
`prefetched` fetches the next page in a thread while the caller writes the current one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lightspeed_pipeline.api.client import LightspeedClient
from lightspeed_pipeline.api.errors import LightspeedAPIError, excerpt
from lightspeed_pipeline.entities import (
    DescIdPaging,
    Entity,
    IdPaging,
    Paging,
    ParentPaging,
    PostedVersionPaging,
    VersionPaging,
    WholeList,
)
from lightspeed_pipeline.records import ParentRef, as_bigint, keys_under, record_id, version_of

log = logging.getLogger(__name__)


@dataclass
class Page:
    """One page of records and the cursor values around it."""

    records: list[Any]
    after: int | str | None  # the cursor this page was requested with
    max_version: int | None  # highest version in the page (None for id paging)
    number: int
    fetch_s: float = 0.0
    note: str | None = None  # why the listing ended here without an empty page (goes to sync_log)
    parent: str | None = None  # the parent record it was listed under (`ParentPaging`)
    # On the page that closes a parent's listing (no records of its own): every row id it held.
    listed: list[str] | None = None
    complete: bool = True  # False: the listing may be cut short (not reconciled)
    keys: list[str | None] | None = None  # the records' row ids, when not their own `id` (`keys_under`)


class Paginator(ABC):
    """The pages of one listing of `endpoint`, for the entity called `name`."""

    cursor_kind = "cursor"  # how error messages name the cursor ("after version 42")

    def __init__(self, client: LightspeedClient, name: str, endpoint: str, *, under: str = "") -> None:
        self.client = client
        self.name = name
        self.endpoint = endpoint
        self.page_size = client.config.page_size
        self.under = under  # the parent a listing is under, for messages ("consignments 5f2c, ")

    def what(self, number: int, cursor: Any) -> str:
        """How errors name a request: "sales (page 3, after version 42)"."""
        return f"{self.name} ({self.under}page {number}, after {self.cursor_kind} {cursor})"

    @abstractmethod
    def pages(self) -> Iterator[Page]:
        """The listing's pages, in order, until its stop rule says it ended."""


class VersionPaginator(Paginator):
    """Records with version > `after`, by the version cursor (`VersionPaging`)."""

    cursor_kind = "version"

    def __init__(
        self, client: LightspeedClient, name: str, endpoint: str, *, after: int, deleted: bool = False, under: str = ""
    ) -> None:
        super().__init__(client, name, endpoint, under=under)
        self.after = after
        self.deleted = deleted

    def pages(self) -> Iterator[Page]:
        cursor = self.after
        number = 0
        while True:
            params: dict[str, Any] = {"after": cursor, "page_size": self.page_size}
            if self.deleted:
                params["deleted"] = "true"
            started = time.monotonic()
            what = self.what(number + 1, cursor)
            records, envelope_max = self._envelope(self.client.get_json(self.endpoint, params, what=what), what)
            if not records:
                return  # the stop rule: only an empty page ends the listing
            versions = [v for v in map(version_of, records) if v is not None]
            candidates = versions + ([envelope_max] if envelope_max is not None else [])
            number += 1
            if not candidates:
                # The vendor's own examples (brands, suppliers, product types) carry no version
                # at all. A short page is then the whole listing; a full one cannot be continued.
                if len(records) < self.page_size:
                    note = (
                        f"page {number} after version {cursor}: {len(records)} records without any version "
                        f"(no version.max, no record versions); fewer than page_size={self.page_size}, "
                        "so taken as the end of the listing"
                    )
                    log.warning("%s: %s", self.name, note)
                    yield Page(records, cursor, None, number, time.monotonic() - started, note=note)
                    return
                raise LightspeedAPIError(
                    f"{what}: a full page of {len(records)} records carries no version (no version.max and no "
                    "record versions), so the listing cannot be continued",
                    permanent=True,
                )
            page_max = max(candidates)  # the cursor rule: the page's highest version, which must advance
            advancing(what, cursor, page_max)
            yield Page(records, cursor, page_max, number, time.monotonic() - started)
            cursor = page_max

    @staticmethod
    def _envelope(payload: Any, what: str) -> tuple[list[Any], int | None]:
        """(records, version.max) from `{"data": [...], "version": {...}}` or a bare array."""
        records = _records(payload, what)
        version = payload.get("version") if isinstance(payload, dict) else None
        return records, as_bigint(version.get("max")) if isinstance(version, dict) else None


class IdPaginator(Paginator):
    """Every record, by the id cursor and `page_info` (`IdPaging`); `records` is the dotted path
    of the list in the answer (a bare list where an object was expected is taken as the list)."""

    cursor_kind = "id"

    def __init__(self, client: LightspeedClient, name: str, endpoint: str, *, records: str = "data") -> None:
        super().__init__(client, name, endpoint)
        self.records = records

    def pages(self) -> Iterator[Page]:
        cursor: str | None = None
        number = 0
        while True:
            params: dict[str, Any] = {"page_size": self.page_size}
            if cursor is not None:
                params["after"] = cursor
            started = time.monotonic()
            what = self.what(number + 1, cursor)
            records, has_next, last_seen = self._envelope(self.client.get_json(self.endpoint, params, what=what), what)
            number += 1
            if records:
                yield Page(records, cursor, None, number, time.monotonic() - started)
            if not records or not has_next:
                return  # the stop rule: an empty page, or the API says there is no next one
            if last_seen is None:  # the cursor rule: page_info.last_seen, else the last record's id
                last_seen = record_id(records[-1])
            if last_seen is None or last_seen == cursor:
                raise LightspeedAPIError(f"{what}: has_next is true but the id cursor did not advance", permanent=True)
            cursor = last_seen

    def _envelope(self, payload: Any, what: str) -> tuple[list[Any], bool, str | None]:
        """(records, has_next, last_seen) from `{"data": {"categories": [...]}, "page_info": {...}}`."""
        if not isinstance(payload, dict):
            raise LightspeedAPIError(f"{what}: unexpected response shape: {excerpt(repr(payload), 200)}")
        found: Any = payload
        walked = []
        for part in self.records.split("."):
            if isinstance(found, list):
                break  # a bare list where the object holding it was expected
            if found is None:
                break
            if not isinstance(found, dict):
                shown = ".".join(walked) or "the body"
                raise LightspeedAPIError(f"{what}: `{shown}` is a {type(found).__name__}, expected an object")
            walked.append(part)
            found = found.get(part)
        records = found if found is not None else []
        if not isinstance(records, list):
            raise LightspeedAPIError(f"{what}: `{self.records}` is not a list")
        info = payload.get("page_info") or {}
        has_next = bool(info.get("has_next")) if isinstance(info, dict) else False
        last = info.get("last_seen") if isinstance(info, dict) else None
        return records, has_next, (str(last) if last is not None else None)


class PostedPaginator(Paginator):
    """Records with version > `after` through a POST with the cursor in a JSON body (`PostedVersionPaging`)."""

    cursor_kind = "version"

    def __init__(
        self,
        client: LightspeedClient,
        name: str,
        endpoint: str,
        *,
        after: int,
        include_deleted: bool = False,
        size: int = 5000,
    ) -> None:
        super().__init__(client, name, endpoint)
        self.after = after
        self.include_deleted = include_deleted
        self.page_size = size

    def pages(self) -> Iterator[Page]:
        cursor = self.after
        number = 0
        while True:
            body = {
                "after": cursor,
                "size": self.page_size,
                "sort_direction": "asc",
                "include_deleted": self.include_deleted,
            }
            started = time.monotonic()
            what = self.what(number + 1, cursor)
            records = self.client.post_json(self.endpoint, body, what=what)
            if not isinstance(records, list):
                raise LightspeedAPIError(f"{what}: expected a JSON array, got {excerpt(repr(records), 200)}")
            if not records:
                return  # the stop rule: only an empty answer ends the listing
            number += 1
            versions = [v for v in map(version_of, records) if v is not None]
            if not versions:
                raise LightspeedAPIError(f"{what}: a page of {len(records)} records carries no version", permanent=True)
            page_max = max(versions)  # the cursor rule: the highest record version, which must advance
            advancing(what, cursor, page_max)
            yield Page(records, cursor, page_max, number, time.monotonic() - started)
            cursor = page_max


class ParentPaginator(Paginator):
    """The children of each parent in `parents` (in version order), by `ParentPaging`."""

    cursor_kind = "version"

    def __init__(
        self,
        client: LightspeedClient,
        name: str,
        *,
        parent: str,
        path: str,
        parents: list[ParentRef],
        key: str | None = None,
    ) -> None:
        super().__init__(client, name, path)
        self.parent = parent
        self.parents = parents
        self.key = key

    def pages(self) -> Iterator[Page]:
        number = 0
        for ref in self.parents:
            endpoint = self.endpoint.format(**{**ref.values, "id": ref.id})
            under = f"{self.parent} {ref.id}, "
            listing = VersionPaginator(self.client, self.name, endpoint, after=0, under=under)
            listed: list[str] = []
            seen: dict[str, int] = {}
            started = time.monotonic()
            try:
                for page in listing.pages():
                    number += 1
                    keys = keys_under(ref.id, self.key, page.records, seen)
                    listed.extend(k for k in keys if k is not None)
                    yield Page(
                        page.records, page.after, None, number, page.fetch_s, note=page.note, parent=ref.id, keys=keys
                    )
            except LightspeedAPIError as exc:
                if exc.status != 404:
                    raise
                # The parent is gone from the store since we read it: so are its children.
                log.warning("%s: %s (%s) answers 404: taken as gone, with its rows", self.name, endpoint, ref.id)
                listed = []
            number += 1
            yield Page([], None, ref.version, number, time.monotonic() - started, parent=ref.id, listed=listed)


class DescIdPaginator(Paginator):
    """Every record, newest first, by `before=<id>` (`DescIdPaging`); the first page holds
    `first_size` records, then the page size follows the records' weight (up to `size`) so that
    a page embeds about `max_nested` list items at most."""

    cursor_kind = "id"

    def __init__(
        self,
        client: LightspeedClient,
        name: str,
        endpoint: str,
        *,
        size: int,
        max_nested: int | None = None,
        first_size: int | None = None,
    ) -> None:
        super().__init__(client, name, endpoint)
        self.max_size = size
        self.page_size = first_size or size  # a small first page while the records' weight is unknown
        self.max_nested = max_nested

    def _resize(self, records: list[Any]) -> None:
        """The next page's size: as many records as `max_nested` embedded items allow at this
        page's items per record (at least 10, at most `max_size`)."""
        if self.max_nested is None:
            return
        nested = sum(len(v) for r in records if isinstance(r, dict) for v in r.values() if isinstance(v, list))
        per_record = max(1.0, nested / len(records))
        self.page_size = max(10, min(self.max_size, int(self.max_nested / per_record)))

    def pages(self) -> Iterator[Page]:
        cursor: str | None = None
        number = 0
        while True:
            params: dict[str, Any] = {"page_size": self.page_size}
            if cursor is not None:
                params["before"] = cursor
            started = time.monotonic()
            what = self.what(number + 1, cursor)
            records = _records(self.client.get_json(self.endpoint, params, what=what), what)
            if not records:
                return  # the stop rule: only an empty page ends the listing
            number += 1
            self._resize(records)
            yield Page(records, cursor, None, number, time.monotonic() - started)
            last = record_id(records[-1])  # the cursor rule: the oldest record read, which must change
            if last is None or last == cursor:
                raise LightspeedAPIError(f"{what}: the id cursor did not move (last id {last!r})", permanent=True)
            cursor = last


class WholeListPaginator(Paginator):
    """The whole list in one answer (`WholeList`)."""

    cursor_kind = "id"

    def __init__(self, client: LightspeedClient, name: str, endpoint: str, *, size: int) -> None:
        super().__init__(client, name, endpoint)
        self.page_size = size

    def pages(self) -> Iterator[Page]:
        started = time.monotonic()
        what = self.what(1, None)
        records = _records(self.client.get_json(self.endpoint, {"page_size": self.page_size}, what=what), what)
        if not records:
            return
        page = Page(records, None, None, 1, time.monotonic() - started)
        if len(records) >= self.page_size:
            page.complete = False
            page.note = (
                f"{len(records)} records in one answer, which has no cursor and a page_size of {self.page_size}:"
                " the list may be cut short, so nothing was marked deleted"
            )
            log.warning("%s: %s", self.name, page.note)
        yield page


def _records(payload: Any, what: str) -> list[Any]:
    """The records of `{"data": [...]}` or of a bare array."""
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, dict) or "data" not in payload:
        raise LightspeedAPIError(f"{what}: unexpected response shape: {excerpt(repr(payload), 200)}")
    data = payload["data"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise LightspeedAPIError(f"{what}: `data` is a {type(data).__name__}, expected a list")
    return data


def advancing(what: str, cursor: int, page_max: int) -> None:
    """The version cursor rule's guard: a page must move the cursor up, or the listing would
    re-read the same page forever."""
    if page_max <= cursor:
        raise LightspeedAPIError(
            f"{what}: the cursor did not advance (page max version {page_max} <= after {cursor}); "
            "stopping instead of re-reading the same page forever",
            permanent=True,
        )


def paginator_for(
    entity: Entity, client: LightspeedClient, *, after: int = 0, parents: list[ParentRef] | None = None
) -> Paginator:
    """The paginator of the entity's paging style; `after` is the version cursor to start above;
    `parents` the parents to list the children of (`ParentPaging`: the caller reads them)."""
    if isinstance(entity.paging, ParentPaging):
        paging = entity.paging
        return ParentPaginator(
            client, entity.name, parent=paging.parent, path=paging.path, parents=parents or [], key=paging.key
        )
    build = PAGINATORS.get(type(entity.paging))
    if build is None:
        raise TypeError(f"{entity.name}: no paginator for paging style {type(entity.paging).__name__}")
    return build(entity, entity.paging, client, after)


def _by_version(entity: Entity, paging: Paging, client: LightspeedClient, after: int) -> Paginator:
    return VersionPaginator(client, entity.name, entity.endpoint, after=after, deleted=entity.supports_deleted)


def _by_id(entity: Entity, paging: Paging, client: LightspeedClient, after: int) -> Paginator:
    assert isinstance(paging, IdPaging)
    return IdPaginator(client, entity.name, entity.endpoint, records=paging.records)


def _posted(entity: Entity, paging: Paging, client: LightspeedClient, after: int) -> Paginator:
    assert isinstance(paging, PostedVersionPaging)
    return PostedPaginator(
        client, entity.name, entity.endpoint, after=after, include_deleted=entity.supports_deleted, size=paging.max_size
    )


def _newest_first(entity: Entity, paging: Paging, client: LightspeedClient, after: int) -> Paginator:
    assert isinstance(paging, DescIdPaging)
    return DescIdPaginator(
        client,
        entity.name,
        entity.endpoint,
        size=paging.max_size,
        max_nested=paging.max_nested,
        first_size=paging.first_size,
    )


def _whole(entity: Entity, paging: Paging, client: LightspeedClient, after: int) -> Paginator:
    assert isinstance(paging, WholeList)
    return WholeListPaginator(client, entity.name, entity.endpoint, size=paging.max_size)


PAGINATORS = {
    VersionPaging: _by_version,
    IdPaging: _by_id,
    PostedVersionPaging: _posted,
    DescIdPaging: _newest_first,
    WholeList: _whole,
}


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
