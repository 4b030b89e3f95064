"""The simulator's HTTP server: the Lightspeed 2.0 list endpoints plus /__sim control endpoints."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from simulator.data import RESOURCES, SimData

HTML_ERROR = "<html><head><title>{code} Error</title></head><body><h1>{code}</h1><p>upstream error</p></body></html>"


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
    ) -> None:
        self.scale, self.seed, self.token = scale, seed, token
        self.max_page_size = max_page_size
        self.base_path = "/" + base_path.strip("/")
        self.rate_limit, self.rate_window = rate_limit, rate_window
        self.lock = threading.Lock()
        self.data = SimData(scale, seed)
        self.faults: dict[str, Any] = {}
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
        with self.lock:
            self.faults = {
                "script": list(config.get("script") or []),
                "rates": {str(k): float(v) for k, v in (config.get("rates") or {}).items()},
                "resources": {str(k): int(v) for k, v in (config.get("resources") or {}).items()},
                "retry_after": config.get("retry_after", "date"),
                "retry_after_seconds": float(config.get("retry_after_seconds", 1)),
            }
            self._fault_rng = random.Random(config.get("fault_seed", 0))

    def _choose_fault(self, resource: str) -> int | None:
        """Status to answer instead of the real response (caller holds the lock)."""
        f = self.faults
        if not f:
            return None
        if f["script"]:
            status = int(f["script"].pop(0))
            return None if status == 200 else status
        if resource in f["resources"]:
            return f["resources"][resource]
        for code, p in f["rates"].items():
            if self._fault_rng.random() < p:
                return int(code)
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

    def handle_api(self, resource: str, query: dict[str, str], auth: str | None) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            entry: dict[str, Any] = {"resource": resource, "query": query}
            self.requests.append(entry)
            status, headers, body = self._api(resource, query, auth)
            entry["status"] = status
        return status, headers, body

    def _api(self, resource: str, query: dict[str, str], auth: str | None) -> tuple[int, dict[str, str], bytes]:
        if auth is None or auth.strip() != f"Bearer {self.token}":
            return _json(401, {"error": "Unauthorized", "message": "missing or invalid access token"})
        if resource not in RESOURCES:
            return _json(404, {"error": "Not Found", "message": f"unknown resource {resource!r}"})
        headers, wait = self._rate_headers()
        if wait is not None:
            status, hdrs, body = self._fault_response(429, retry_after_s=max(1.0, wait))
            return status, {**hdrs, **headers}, body
        fault = self._choose_fault(resource)
        if fault is not None:
            status, hdrs, body = self._fault_response(fault)
            return status, {**hdrs, **headers}, body
        try:
            status, hdrs, body = self._list(resource, query)
        except ValueError as exc:
            status, hdrs, body = _json(400, {"error": "Bad Request", "message": str(exc)})
        return status, {**hdrs, **headers}, body

    def _fault_response(self, status: int, retry_after_s: float | None = None) -> tuple[int, dict[str, str], bytes]:
        if status == 429:
            headers: dict[str, str] = {}
            mode = self.faults.get("retry_after", "date") if retry_after_s is None else "date"
            secs = retry_after_s if retry_after_s is not None else self.faults.get("retry_after_seconds", 1.0)
            if mode == "date":
                headers["Retry-After"] = formatdate(time.time() + secs, usegmt=True)
            elif mode == "seconds":
                headers["Retry-After"] = str(round(secs))
            code, hdrs, body = _json(429, {"error": "Too Many Requests", "message": "Rate limiting enforced"})
            return code, {**hdrs, **headers}, body
        if status >= 500:
            return status, {"Content-Type": "text/html"}, HTML_ERROR.format(code=status).encode()
        return _json(status, {"error": "Simulated error", "message": f"HTTP {status} injected by the simulator"})

    def _list(self, resource: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        size_text = query.get("page_size")
        try:
            size = int(size_text) if size_text is not None else (1000 if resource == "product_categories" else 100)
        except ValueError:
            raise ValueError(f"page_size must be an integer, got {size_text!r}") from None
        if size < 1:
            raise ValueError("page_size must be at least 1")
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
        records = self.data.page(resource, after=after, before=before, size=size, deleted=deleted)
        if not records:
            return _json(200, {"data": [], "version": None})
        return _json(200, {"data": records, "version": {"min": records[0]["version"], "max": records[-1]["version"]}})

    # -- control ----------------------------------------------------------------------

    def handle_control(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            if method == "GET" and path == "state":
                return _json(200, self.data.dump())
            if method == "GET" and path == "stats":
                return _json(200, {
                    "requests": self.requests,
                    "by_resource": dict(Counter(r["resource"] for r in self.requests)),
                    "by_status": {str(k): v for k, v in Counter(r["status"] for r in self.requests).items()},
                })  # fmt: skip
            if method == "POST" and path == "stats/reset":
                self.requests = []
                return _json(200, {"ok": True})
            if method == "POST" and path == "mutate":
                try:
                    return _json(200, self.data.mutate(body))
                except ValueError as exc:
                    return _json(400, {"error": str(exc)})
            if method == "POST" and path == "reset":
                self.data = SimData(self.scale, self.seed)
                return _json(200, {"ok": True})
        if method == "POST" and path == "faults":
            self.set_faults(body)
            return _json(200, {"ok": True})
        return _json(404, {"error": "Not Found"})


def _json(status: int, payload: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload, separators=(",", ":")).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    simulator: Simulator

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        sim = self.simulator
        if parts.path.startswith("/__sim/"):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                self._send(*_json(400, {"error": "body is not JSON"}))
                return
            self._send(*sim.handle_control(method, parts.path[len("/__sim/") :], body))
            return
        prefix = sim.base_path + "/"
        if method != "GET" or not parts.path.startswith(prefix):
            self._send(*_json(404, {"error": "Not Found"}))
            return
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self._send(*sim.handle_api(parts.path[len(prefix) :].strip("/"), query, self.headers.get("Authorization")))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")
