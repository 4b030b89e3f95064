"""The simulator's HTTP server: the Lightspeed list endpoints, GET /retailer, and /__sim control endpoints.

Two API versions at once: `base_path` (default /api/2.0) answers in the 2.0 shapes and /api/2026-07
in the dated ones (simulator/dated.py: reshaped sales and inventory, `POST /inventory` with a JSON
body answering a bare array, `deleted=true` on four more resources, null `version` bounds on an
empty page). With `fallback` the 2.0 path answers in the dated shapes too, as the vendor serves a
request to a version past its end of life with the oldest supported one. Every request is logged
with its `api_version` and `method` (and `body` for a POST).

Faults (POST /__sim/faults {"script": [...], "rates": {kind: p}, "resources": {name: kind},
"delay": {name: seconds}, "fault_seed", "retry_after", "retry_after_seconds", "timeout_s"}),
where a kind is an HTTP status (429, 500, 503, 400, ...) or one of:
  429-date | 429-seconds | 429-past | 429-none   a 429 with that kind of Retry-After
  reset     the connection is closed with no answer
  timeout   the answer comes after `timeout_s` seconds (past the client's read timeout)
  cut       the headers promise the whole body; half of it arrives; the connection closes
  truncate  a well-formed 200 whose JSON body stops half way
  html      a 200 with an HTML error page
  nomax     a normal page whose `version` object has no `max`
  empty     a 200 with an empty listing in the resource's own envelope ({"data": [], "version": null}, or
            an empty categories page with has_next false); /retailer answers {"data": {}}
The script is consumed one request at a time (by /retailer too), then `resources`, then `rates`.
POST /__sim/grants {"costs": false} answers as to a token without `products:read:costs` (cost members null).
POST /__sim/parents {"resource", "after"} names the parents a per-parent resource lists under whose
version is above `after`, with how many records each lists (what a sync of it must read).
GET /__sim/stats lists every API request served: resource, query, status (or reset/cut) and `bytes`,
the body bytes written (a timeout's body is counted though the client may have given up on it).
Publishing (POST /__sim/publish {"resource", "body"}; a null body unpublishes) serves that body, exactly,
to a request without `after` (or after=0), and its records with an integer version above `after` otherwise.
OAuth (POST /__sim/oauth {client_id, client_secret, refresh_token, access_token, delay_s}):
POST /api/1.0/token refreshes with rotation; POST /__sim/oauth/expire revokes the access token.
"""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from collections import Counter, deque
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator import dated
from simulator.data import COST_MEMBERS, LISTED, UNVERSIONED, SimData
from simulator.data import _version_of as version_of

HTML_ERROR = "<html><head><title>{code} Error</title></head><body><h1>{code}</h1><p>upstream error</p></body></html>"
NO_VERSIONS: dict[str, Any] = {"data": [], "version": None}
NO_CATEGORIES: dict[str, Any] = {"data": {"categories": []}, "page_info": {"has_next": False, "last_seen": None}}


def empty_listing(resource: str, api_version: str = dated.V2) -> dict[str, Any]:
    """An empty answer in the envelope the resource's listing uses (2026-07: null version bounds)."""
    if resource == "retailer":
        return {"data": {}}
    if resource == "product_categories":
        return NO_CATEGORIES
    if api_version == dated.DATED:
        return {"data": []} if resource in dated.NO_ENVELOPE else {"data": [], "version": dict(dated.EMPTY_VERSION)}
    return [] if resource in dated.BARE_V2 else NO_VERSIONS


def route(path: str) -> tuple[str, str | None]:
    """The resource a request path lists, and the parent id for a listing under a parent record
    (`consignments/<id>/products` -> ("consignment_products", "<id>"))."""
    parts = path.split("/")
    if len(parts) in (3, 5) and (resource := dated.PER_PARENT_ROUTES.get(tuple(parts[0::2]))) is not None:
        return resource, parts[-2]  # the nearest parent (a delivery's line items: the delivery)
    return path, None


def served(record: Any) -> Any:
    """A record as the API sends it: without the simulator's own bookkeeping members."""
    if isinstance(record, dict) and ("_parent" in record or "_key" in record):
        return {k: v for k, v in record.items() if k not in ("_parent", "_key")}
    return record


def retailer_record(store: str) -> dict[str, Any]:
    """GET /retailer's `data` for a store: its id is derived from the prefix, so two stores never share one."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"lightspeed-simulator:{store}")),
        "domain_prefix": store,
        "name": f"{store} (simulator)",
        "store_url": f"https://{store}.retail.lightspeed.app",
        "timezone": "Pacific/Auckland",
        "currency": "NZD",
        "country": "NZ",
        "created_at": "2024-01-01T00:00:00+00:00",
    }


class Simulator:
    """Data + fault/rate-limit state + an HTTP server in a daemon thread."""

    def __init__(
        self,
        scale: str | dict[str, int] = "test",
        seed: int = 42,
        token: str = "test-token",
        max_page_size: int = 200,
        base_path: str = "/api/2.0",
        rate_limit: int | None = None,
        rate_window: float = 300.0,
        store: str = "simulator",
        fallback: bool = False,
    ) -> None:
        self.scale, self.seed, self.token, self.store = scale, seed, token, store
        self.fallback = fallback  # the 2.0 path answers in the dated shapes
        self.max_page_size = max_page_size
        self.base_path = "/" + base_path.strip("/")
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.lock = threading.Lock()
        self.data = SimData(scale, seed)
        self.faults: dict[str, Any] = {}
        self.delays: dict[str, float] = {}
        self.oauth: dict[str, Any] = {}
        self._fault_rng = random.Random(0)
        self._hits: deque[float] = deque()
        self._served = 0
        self.requests: list[dict[str, Any]] = []
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle --------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        sim = self

        class Handler(_Handler):
            simulator = sim

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    # -- API --------------------------------------------------------------------------

    def set_faults(self, config: dict[str, Any]) -> None:
        """Replace the fault configuration (see the module docstring for the kinds)."""
        with self.lock:
            self.faults = {
                "script": list(config.get("script") or []),
                "rates": {str(k): float(v) for k, v in (config.get("rates") or {}).items()},
                "resources": {str(k): v for k, v in (config.get("resources") or {}).items()},
                "retry_after": config.get("retry_after", "date"),
                "retry_after_seconds": float(config.get("retry_after_seconds", 1)),
                "timeout_s": float(config.get("timeout_s", 3)),
            }
            self.delays = {str(k): float(v) for k, v in (config.get("delay") or {}).items()}
            self._fault_rng = random.Random(config.get("fault_seed", 0))

    def _choose_fault(self, resource: str) -> str | None:
        """The fault kind to apply to this request, if any (caller holds the lock)."""
        f = self.faults
        if not f:
            return None
        if f["script"]:
            kind = str(f["script"].pop(0))
            return None if kind in ("200", "ok") else kind
        if resource in f["resources"]:
            return str(f["resources"][resource])
        for kind, p in f["rates"].items():
            if self._fault_rng.random() < p:
                return kind
        return None

    def _rate_headers(self) -> tuple[dict[str, str], float | None]:
        """Headers for a request; the wait (s) if the sliding window is full (lock held)."""
        now = time.monotonic()
        if self.rate_limit is None:
            self._served += 1
            return {
                "X-RateLimit-Limit": "1000000",
                "X-RateLimit-Remaining": str(max(0, 1_000_000 - self._served)),
            }, None
        while self._hits and self._hits[0] <= now - self.rate_window:
            self._hits.popleft()
        limit = self.rate_limit
        if len(self._hits) >= limit:
            wait = self._hits[0] + self.rate_window - now
            return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(round(wait, 3))}, wait  # fmt: skip
        self._hits.append(now)
        return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - len(self._hits)),
                "X-RateLimit-Window": str(self.rate_window)}, None  # fmt: skip

    def handle_api(
        self,
        resource: str,
        query: dict[str, str],
        auth: str | None,
        *,
        api_version: str = dated.V2,
        method: str = "GET",
        body: Any = None,
    ) -> Reply:
        resource, parent = route(resource)
        with self.lock:
            entry: dict[str, Any] = {"resource": resource, "query": query, "api_version": api_version, "method": method}
            if parent is not None:
                entry["parent"] = parent
            if method == "POST":  # its paging fields are logged as the query too, as text
                entry["body"] = body
                if isinstance(body, dict):
                    entry["query"] = {**query, **{k: str(v).lower() if isinstance(v, bool) else str(v)
                                                  for k, v in body.items()}}  # fmt: skip
            self.requests.append(entry)
            reply = self._api(resource, query, auth, api_version, method, body, parent)
            entry["status"] = reply.status if reply.action not in ("reset", "cut") else reply.action
            entry["bytes"] = reply.body_bytes_sent
            delay = self.delays.get(resource, 0.0)
        if delay:
            time.sleep(delay)
        return reply

    def _authorised(self, auth: str | None) -> bool:
        valid = self.oauth["access_token"] if self.oauth else self.token
        return bool(valid) and auth is not None and auth.strip() == f"Bearer {valid}"

    def _api(
        self,
        resource: str,
        query: dict[str, str],
        auth: str | None,
        api_version: str,
        method: str,
        body: Any,
        parent: str | None = None,
    ) -> Reply:
        if not self._authorised(auth):
            return _json(401, {"error": "Unauthorized", "message": "missing or invalid access token"})
        if (
            (resource not in LISTED and resource != "retailer" and parent is None)
            or (parent is not None and not self.data.parent_exists(resource, parent))
            or (resource in dated.DATED_ONLY and api_version != dated.DATED)
        ):
            return _json(404, {"error": "Not Found", "message": f"unknown resource {resource!r}"})
        posted = dated.posted(resource, api_version)
        if method != ("POST" if posted else "GET"):
            return _json(405, {"error": "Method Not Allowed", "message": f"{method} /{resource} ({api_version})"})
        if posted:
            if not isinstance(body, dict):
                return _json(400, {"error": "Bad Request", "message": "POST /inventory takes a JSON object"})
            query = {k: body[k] for k in ("after", "before", "size", "sort_direction", "include_deleted") if k in body}
        headers, wait = self._rate_headers()
        if wait is not None:
            return self._fault_reply("429-date", retry_after_s=max(1.0, wait)).with_headers(headers)
        fault = self._choose_fault(resource)
        if fault == "empty":
            return _json(200, [] if posted else empty_listing(resource, api_version)).with_headers(headers)
        if fault is not None and fault not in ("nomax", "timeout"):
            if fault in ("truncate", "cut", "html"):
                ok = self._list_reply(resource, query, api_version=api_version, parent=parent)
                return self._fault_reply(fault, body=ok.body).with_headers(headers)
            return self._fault_reply(fault).with_headers(headers)
        reply = self._list_reply(resource, query, drop_max=fault == "nomax", api_version=api_version, parent=parent)
        reply.with_headers(headers)
        if fault == "timeout":
            reply.action = "sleep"
            reply.sleep_s = self.faults["timeout_s"]
        return reply

    def _list_reply(
        self,
        resource: str,
        query: dict[str, Any],
        drop_max: bool = False,
        api_version: str = dated.V2,
        parent: str | None = None,
    ) -> Reply:
        if resource == "retailer":
            record = retailer_record(self.store)
            return _json(200, {"data": dated.retailer(record) if api_version == dated.DATED else record})
        try:
            posted = dated.posted(resource, api_version)
            if resource in self.data.published:
                return self._published(resource, query, drop_max, posted=posted)
            if posted:
                return self._inventory_post(query)
            return self._list(resource, query, drop_max, api_version, parent)
        except ValueError as exc:
            return _json(400, {"error": "Bad Request", "message": str(exc)})

    def _inventory_post(self, body: dict[str, Any]) -> Reply:
        """2026-07's `POST /inventory`: a bare array, highest versions first unless asked otherwise."""
        try:
            after = int(body.get("after") or 0)
            before = int(body["before"]) if body.get("before") is not None else None
            size = int(body.get("size") or 1000)
        except (TypeError, ValueError):
            raise ValueError("after, before and size must be integers") from None
        if not 1 <= size <= dated.INVENTORY_MAX_SIZE:
            raise ValueError(f"size must be between 1 and {dated.INVENTORY_MAX_SIZE}")
        direction = str(body.get("sort_direction") or "desc").lower()
        if direction not in ("asc", "desc"):
            raise ValueError("sort_direction must be asc or desc")
        records, _ = self.data.page_with_max(
            "inventory",
            after=after,
            before=before,
            size=min(size, self.max_page_size * 25),
            deleted=bool(body.get("include_deleted")),
            supports_deleted=frozenset({"inventory"}),
            descending=direction == "desc",
        )
        return _json(200, [dated.reshape("inventory", r, dated.DATED) for r in records])

    def _fault_reply(self, kind: str, retry_after_s: float | None = None, body: bytes = b"") -> Reply:
        if kind == "reset":
            return Reply(0, {}, b"", action="reset")
        if kind == "cut":  # headers promise the whole body, half arrives, the connection closes
            return Reply(200, {"Content-Type": "application/json"}, body, action="cut")
        if kind == "truncate":  # well-formed HTTP, but the JSON stops half way
            return Reply(200, {"Content-Type": "application/json"}, body[: max(1, len(body) // 2)])
        if kind == "html":
            return Reply(200, {"Content-Type": "text/html"}, HTML_ERROR.format(code=200).encode())
        if kind.startswith("429"):
            mode = kind.partition("-")[2] or self.faults.get("retry_after", "date")
            secs = retry_after_s if retry_after_s is not None else self.faults.get("retry_after_seconds", 1.0)
            headers: dict[str, str] = {}
            if mode == "date":
                headers["Retry-After"] = formatdate(time.time() + secs, usegmt=True)
            elif mode == "past":
                headers["Retry-After"] = formatdate(time.time() - 3600, usegmt=True)
            elif mode == "seconds":
                headers["Retry-After"] = str(round(secs))
            return _json(429, {"error": "Too Many Requests", "message": "Rate limiting enforced"}).with_headers(headers)
        status = int(kind)
        if status >= 500:
            return Reply(status, {"Content-Type": "text/html"}, HTML_ERROR.format(code=status).encode())
        return _json(status, {"error": "Simulated error", "message": f"HTTP {status} injected by the simulator"})

    def _published(self, resource: str, query: dict[str, Any], drop_max: bool, posted: bool = False) -> Reply:
        """A published body, as published, for a first request; after that, its records past `after`
        (a bare array for a POSTed listing)."""
        after_text = str(query.get("after") or "0")
        if resource == "product_categories":
            return _json(200, self.data.published[resource] if after_text == "0" else NO_CATEGORIES)
        try:
            after = int(after_text)
            before = int(query["before"]) if query.get("before") else None
        except ValueError:
            raise ValueError("after and before must be integers") from None
        if after <= 0:
            return _json(200, self.data.published[resource])
        records = self.data.published_page(resource, after=after, before=before)
        if posted:
            return _json(200, records)
        if not records:
            return _json(200, NO_VERSIONS)
        versions = [v for v in map(version_of, records) if v is not None]
        envelope: dict[str, Any] = {"min": min(versions)}
        if not drop_max:
            envelope["max"] = max(versions)
        return _json(200, {"data": records, "version": envelope})

    def _list(
        self,
        resource: str,
        query: dict[str, str],
        drop_max: bool = False,
        api_version: str = dated.V2,
        parent: str | None = None,
    ) -> Reply:
        size_text = query.get("page_size")
        try:
            size = int(size_text) if size_text is not None else (1000 if resource == "product_categories" else 100)
        except ValueError:
            raise ValueError(f"page_size must be an integer, got {size_text!r}") from None
        if size < 1:
            raise ValueError("page_size must be at least 1")
        if resource in UNVERSIONED:
            return self._unversioned(resource, query, size, api_version)
        if resource == "product_categories":
            size = min(size, max(1000, self.max_page_size))
            cats, has_next = self.data.category_page(after=query.get("after") or None, size=size)
            return _json(
                200,
                {
                    "data": {"categories": cats},
                    "page_info": {"has_next": has_next, "last_seen": cats[-1]["id"] if cats else None},
                },
            )
        size = min(size, self.max_page_size)
        try:
            after = int(query.get("after") or 0)
            before = int(query["before"]) if query.get("before") else None
        except ValueError:
            raise ValueError("after and before must be integers") from None
        deleted = query.get("deleted", "").lower() in ("true", "1")
        if parent is not None:
            records = self.data.parent_page(resource, parent, after=after, before=before, size=size)
            top = max((r["version"] for r in records), default=None)
        else:
            records, top = self.data.page_with_max(
                resource,
                after=after,
                before=before,
                size=size,
                deleted=deleted,
                supports_deleted=dated.supports_deleted(api_version),
            )
        if not records:
            return _json(200, empty_listing(resource, api_version))
        versions = [r["version"] for r in records if isinstance(r, dict) and isinstance(r.get("version"), int)]
        envelope: dict[str, Any] = {"min": min(versions, default=None)}
        if not drop_max:
            envelope["max"] = top
        listed = [served(dated.reshape(resource, r, api_version)) for r in records]
        if not self.data.costs_granted and resource in COST_MEMBERS:  # no products:read:costs
            listed = [{**r, **dict.fromkeys(COST_MEMBERS[resource])} if isinstance(r, dict) else r for r in listed]
        if api_version == dated.DATED and resource in dated.NO_ENVELOPE:
            return _json(200, {"data": listed})
        if api_version == dated.V2 and resource in dated.BARE_V2:
            return _json(200, listed)
        return _json(200, {"data": listed, "version": envelope})

    def _unversioned(self, resource: str, query: dict[str, str], size: int, api_version: str) -> Reply:
        """Gift cards newest first from `before=<id>`; store credits a bare array and promotions
        `{data}`, whole (up to `page_size`: neither has a cursor)."""
        records = [served(dated.reshape(resource, r, api_version)) for r in self.data.live(resource)]
        if resource == "gift_cards":
            if size > dated.GIFT_CARD_MAX_SIZE:
                raise ValueError(f"page_size cannot exceed {dated.GIFT_CARD_MAX_SIZE}")
            records.sort(key=lambda c: (c["created_at"], c["id"]), reverse=True)
            if before := query.get("before"):
                ids = [c["id"] for c in records]
                records = records[ids.index(before) + 1 :] if before in ids else []
            return _json(200, {"data": records[: min(size, self.max_page_size)]})
        records.sort(key=lambda r: SimData.key_of(resource, r))
        if "page_size" in query:
            records = records[:size]
        return _json(200, records if resource == "store_credits" else {"data": records})

    # -- OAuth (the token endpoint is /api/1.0/token, outside the base path) ---------------

    def setup_oauth(self, config: dict[str, Any]) -> dict[str, Any]:
        """Switch to OAuth: only the current access token works; refresh tokens rotate."""
        with self.lock:
            if not config:
                self.oauth = {}
                return {"oauth": False}
            self.oauth = {
                "client_id": config["client_id"],
                "client_secret": config["client_secret"],
                "refresh_token": config["refresh_token"],
                "access_token": config.get("access_token", self.token),
                "refreshes": 0,
                "rejected_refreshes": 0,
                "delay_s": float(config.get("delay_s", 0)),
            }
            return {"oauth": True}

    def oauth_state(self) -> dict[str, Any]:
        with self.lock:
            return dict(self.oauth)

    def expire_access_token(self) -> None:
        with self.lock:
            if self.oauth:
                self.oauth["access_token"] = None

    def token_endpoint(self, form: dict[str, str]) -> Reply:
        delay = float(self.oauth.get("delay_s", 0)) if self.oauth else 0.0
        if delay:  # a slow token endpoint (before anything rotates, as if the request were still in flight)
            time.sleep(delay)
        with self.lock:
            o = self.oauth
            if not o:
                return _json(404, {"error": "Not Found"})
            if form.get("client_id") != o["client_id"] or form.get("client_secret") != o["client_secret"]:
                o["rejected_refreshes"] += 1
                return _json(401, {"error": "invalid_client"})
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != o["refresh_token"]:
                o["rejected_refreshes"] += 1
                return _json(400, {"error": "invalid_grant", "error_description": "refresh token is not valid"})
            o["refreshes"] += 1
            n = o["refreshes"]
            # Rotation: the old refresh token and the old access token stop working now.
            o["access_token"] = f"lsxs_at_{self.seed}_{n}_{random.Random(n).getrandbits(64):016x}"
            o["refresh_token"] = f"lsxs_rt_{self.seed}_{n}_{random.Random(-n).getrandbits(64):016x}"
            return _json(200, {
                "access_token": o["access_token"], "token_type": "Bearer", "expires": int(time.time()) + 86400,
                "expires_in": 86400, "refresh_token": o["refresh_token"], "domain_prefix": self.store,
            })  # fmt: skip

    # -- control ----------------------------------------------------------------------

    def handle_control(self, method: str, path: str, body: dict[str, Any]) -> Reply:
        if method == "POST" and path == "faults":
            self.set_faults(body)
            return _json(200, {"ok": True})
        if method == "POST" and path == "oauth":
            return _json(200, self.setup_oauth(body))
        if method == "POST" and path == "oauth/expire":
            self.expire_access_token()
            return _json(200, {"ok": True})
        if method == "GET" and path == "oauth":
            return _json(200, self.oauth_state())
        with self.lock:
            if method == "GET" and path in ("state", *(f"state/{v}" for v in dated.API_VERSIONS)):
                version = path.partition("/")[2] or dated.V2  # as a client of that version reads them
                dump = self.data.dump()
                dump["resources"] = {  # a published body is served as published
                    r: records if r in self.data.published else [dated.reshape(r, rec, version) for rec in records]
                    for r, records in dump["resources"].items()
                }
                return _json(200, dump)
            if method == "GET" and path == "stats":
                return _json(200, {
                    "requests": self.requests,
                    "by_resource": dict(Counter(r["resource"] for r in self.requests)),
                    "by_status": {str(k): v for k, v in Counter(r["status"] for r in self.requests).items()},
                })  # fmt: skip
            if method == "POST" and path == "count":
                # {"sales": {"after": 0, "deleted": false}, ...} -> {"sales": 50000, ...}
                return _json(200, {r: self.data.count(
                    r, after=int(q.get("after") or 0), deleted=bool(q.get("deleted")),
                    supports_deleted=dated.supports_deleted(q.get("api_version") or dated.V2),
                ) for r, q in body.items()})  # fmt: skip
            if method == "POST" and path == "grants":  # {"costs": false}: as a token without products:read:costs
                self.data.costs_granted = bool(body.get("costs", True))
                return _json(200, {"costs": self.data.costs_granted})
            if method == "POST" and path == "parents":
                # {"resource": "consignment_products", "after": V} -> {parent id: records listed under it}
                return _json(200, self.data.parents_after(body["resource"], int(body.get("after") or 0)))
            if method == "POST" and path == "stats/reset":
                self.requests = []
                return _json(200, {"ok": True})
            if method == "POST" and path == "mutate":
                try:
                    return _json(200, self.data.mutate(body))
                except ValueError as exc:
                    return _json(400, {"error": str(exc)})
            if method == "POST" and path == "inject":
                try:
                    return _json(200, self.data.inject(body["resource"], body["records"]))
                except (KeyError, ValueError) as exc:
                    return _json(400, {"error": str(exc)})
            if method == "POST" and path == "publish":
                try:
                    return _json(200, self.data.publish(body["resource"], body["body"]))
                except (KeyError, TypeError, ValueError) as exc:
                    return _json(400, {"error": str(exc)})
            if method == "POST" and path == "reset":
                self.data = SimData(self.scale, self.seed)
                return _json(200, {"ok": True})
        return _json(404, {"error": "Not Found"})


class Reply:
    """An HTTP answer, plus what the handler must do that is not a normal answer."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes, action: str | None = None) -> None:
        self.status, self.headers, self.body, self.action = status, headers, body, action
        self.sleep_s = 0.0

    @property
    def body_bytes_sent(self) -> int:
        """Body bytes the handler writes: none for a reset, half for a cut (see `_Handler._send`)."""
        if self.action == "reset":
            return 0
        return len(self.body) // 2 if self.action == "cut" else len(self.body)

    def with_headers(self, headers: dict[str, str]) -> Reply:
        self.headers = {**self.headers, **headers}
        return self


def _json(status: int, payload: Any) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(payload, separators=(",", ":")).encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    simulator: Simulator

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, reply: Reply) -> None:
        if reply.action == "reset":
            self._hang_up()
            return
        if reply.action == "sleep":
            time.sleep(reply.sleep_s)
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.action == "cut":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self._hang_up()
            return
        self.wfile.write(reply.body)

    def _hang_up(self) -> None:
        """Close the connection abruptly (the client sees a reset or a cut-off body)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        sim = self.simulator
        if parts.path.startswith("/__sim/"):
            raw = self._body()
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._send(_json(400, {"error": "body is not JSON"}))
                return
            self._send(sim.handle_control(method, parts.path[len("/__sim/") :], body))
            return
        if method == "POST" and parts.path == "/api/1.0/token":
            form = {k: v[-1] for k, v in parse_qs(self._body().decode(), keep_blank_values=True).items()}
            self._send(sim.token_endpoint(form))
            return
        dated_prefix = f"/api/{dated.DATED}/"
        if parts.path.startswith(dated_prefix):
            version, rest = dated.DATED, parts.path[len(dated_prefix) :]
        elif parts.path.startswith(sim.base_path + "/"):
            version, rest = (dated.DATED if sim.fallback else dated.V2), parts.path[len(sim.base_path) + 1 :]
        else:
            self._send(_json(404, {"error": "Not Found"}))
            return
        body: Any = None
        if method == "POST":
            try:
                body = json.loads(self._body() or b"null")
            except ValueError:
                self._send(_json(400, {"error": "Bad Request", "message": "the body is not JSON"}))
                return
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        reply = sim.handle_api(
            rest.strip("/"), query, self.headers.get("Authorization"), api_version=version, method=method, body=body
        )
        self._send(reply)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")
