"""HTTP transport for the Lightspeed Retail (X-Series) API: auth, retries, pacing.

One request (`get_json`, `post_json`) goes through four steps, each a method: wait for the rate limit
(`_pace`), send and classify the answer (`_attempt`: a body, a token to refresh, a
retryable failure, or an error no retry can fix), refresh the OAuth token once on a 401
(`_refresh_access`), and back off before a retry (`_back_off`). Retryable failures (429,
5xx, connection errors, timeouts, bodies that are not JSON) back off exponentially with
jitter, honour `Retry-After` (seconds or an HTTP date), and stop after `max_retries`
attempts or `retry_budget_s` seconds of waiting; other 4xx fail at once. Errors name the
entity, the request path and the cursor. Paging lives in `paginators.py`.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import requests

from lightspeed_pipeline.api.errors import (
    RETRYABLE_STATUS,
    TRANSPORT_ERRORS,
    LightspeedAPIError,
    LightspeedAuthError,
    excerpt,
)
from lightspeed_pipeline.api.oauth import MemoryTokenVault, OAuthConfig, TokenGrant, TokenVault, exchange_refresh_token
from lightspeed_pipeline.api.pacing import RatePacer, backoff_delay, parse_retry_after
from lightspeed_pipeline.metrics import LatencySample

log = logging.getLogger(__name__)
_NO_BODY = object()


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs; built from the `lightspeed_api` connection (host, password)
    and the `LIGHTSPEED_<FIELD>` environment variables (`settings.API_SETTINGS`): see connections.py.
    The defaults here are those settings' defaults (a test holds them equal)."""

    base_url: str  # scheme://host[:port], no trailing slash
    token: str = field(repr=False)  # access token (personal token, or the current OAuth access token)
    api_version: str = "2.0"  # "2.0" or a dated version "YYYY-MM" (how entities are listed: entities.Dated)
    api_base_path: str = ""  # empty: /api/<api_version>; a proxy's path (LIGHTSPEED_API_BASE_PATH) otherwise
    page_size: int = 1000
    timeout: float = 60.0  # read timeout, seconds
    connect_timeout: float = 10.0
    max_retries: int = 8  # retries per request (attempts = max_retries + 1)
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    retry_budget_s: float = 900.0  # total seconds one request may spend waiting to retry
    max_retry_after: float = 600.0  # cap on a single Retry-After wait
    version_overlap: int = 0  # re-read this many versions below the stored cursor
    rate_reserve: int = 3  # requests left to the other tasks (lightspeed_api pool slots - 1) before pacing
    rate_window_s: float = 300.0  # the rate-limit window when the API does not send X-RateLimit-Window
    prefetch: bool = True  # fetch page n+1 while page n is written (at most one page ahead)
    oauth: OAuthConfig | None = None  # refresh on 401 (its repr hides the secrets)

    def __post_init__(self) -> None:
        if not self.api_base_path:  # the version's own path, so the two cannot disagree by default
            object.__setattr__(self, "api_base_path", f"/api/{self.api_version}")

    @property
    def api_root(self) -> str:
        return self.base_url.rstrip("/") + "/" + self.api_base_path.strip("/")


@dataclass
class ClientStats:
    """What the client did, for `sync_log.metadata` (see `metrics.METRICS` for the documented keys)."""

    requests: int = 0
    retries: int = 0
    waited_s: float = 0.0  # every wait before a retry (backoff and Retry-After)
    rate_limited_s: float = 0.0  # the part of waited_s that followed a 429
    paced: int = 0  # requests held back to stay inside the rate limit
    paced_s: float = 0.0
    token_refreshes: int = 0
    http_429: int = 0
    http_5xx: int = 0
    bytes_received: int = 0  # response bodies, as decoded
    statuses: Counter[str] = field(default_factory=Counter)
    latency: LatencySample = field(default_factory=LatencySample)  # per answered request, seconds

    def answered(self, status: int, body_bytes: int, seconds: float) -> None:
        """Count one HTTP answer: its status, body size and latency (request sent to body read)."""
        self.statuses[str(status)] += 1
        self.bytes_received += body_bytes
        self.latency.add(seconds)
        if status == 429:
            self.http_429 += 1
        elif 500 <= status <= 599:
            self.http_5xx += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "retries": self.retries,
            "token_refreshes": self.token_refreshes,
            "retry_wait_s": round(self.waited_s, 3),
            "paced": self.paced,
            "paced_s": round(self.paced_s, 3),
            "rate_limit_wait_s": round(self.rate_limited_s + self.paced_s, 3),
            "http_429": self.http_429,
            "http_5xx": self.http_5xx,
            "bytes_received": self.bytes_received,
            **self.latency.as_dict(),
            "statuses": dict(self.statuses),
        }


_DECODER = msgspec.json.Decoder()


def decode_json(body: bytes) -> Any:
    """Decode a response body; raise ValueError if it is not JSON.

    msgspec first (C; a page of 1 000 sales decodes about 3x faster than with `json`).
    It accepts strict JSON only, so a body with the literals NaN/Infinity, a number out
    of a float's range or an escaped lone surrogate goes to the standard parser, which
    here keeps those literals and numbers as strings ("NaN", "1e400"): jsonb has no NaN
    or infinity, and the record is stored rather than lost.
    """
    try:
        return _DECODER.decode(body)
    except msgspec.DecodeError:
        return json.loads(body, parse_constant=str, parse_float=_finite_or_text)


def _finite_or_text(text: str) -> float | str:
    """A JSON number too large for a float (1e400) stays the text it was, not infinity."""
    value = float(text)
    return value if math.isfinite(value) else text


@dataclass
class _Attempt:
    """One request's outcome that is not an error: a decoded body, a 401 worth one token
    refresh, or a retryable failure (`reason`, and the wait `Retry-After` asked for)."""

    body: Any = _NO_BODY
    refresh: bool = False
    status: int = 0
    reason: str = ""
    retry_after: float | None = None


class LightspeedClient:
    """One HTTP session (keep-alive) per task; not thread-safe, not shared."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        token_vault: TokenVault | None = None,
    ) -> None:
        self.config = config
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.pacer = RatePacer(config.rate_reserve, config.rate_window_s)
        self.session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=2, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"Accept": "application/json", "User-Agent": "lightspeed-airflow-sync/1.0"})
        self._vault: TokenVault | None = None
        self._access: str | None = config.token or None
        if config.oauth is not None:
            self._vault = token_vault or MemoryTokenVault(config.oauth)
            # The newest stored access token wins over the connection's (possibly spent) one.
            self._access = self._vault.current() or self._access
            if not self._access:
                self._access = self._vault.refresh(None, self._exchange)
                self.stats.token_refreshes += 1
        self._set_auth()

    def _set_auth(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {self._access or ''}"

    def _exchange(self, refresh_token: str, within_s: float | None = None) -> TokenGrant:
        assert self.config.oauth is not None
        return exchange_refresh_token(
            self.session,
            self.config.oauth,
            refresh_token,
            timeouts=(self.config.connect_timeout, self.config.timeout),
            within_s=within_s,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LightspeedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, with retries ----------------------------------------------------

    def get_json(self, path: str, params: dict[str, Any], *, what: str) -> Any:
        """GET `path` under the API root and return the decoded JSON body.

        `what` names the entity and cursor for error messages ("sales after version 42").
        """
        return self._request("GET", path, params=params, what=what)

    def post_json(self, path: str, body: dict[str, Any], *, what: str) -> Any:
        """POST `body` as JSON to `path` under the API root (a listing that takes its cursor in a
        body: 2026-07's inventory) and return the decoded JSON answer; retried like a GET."""
        return self._request("POST", path, body=body, what=what)

    def _request(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None, what: str
    ) -> Any:
        url = self.config.api_root + path
        shown = f"{method} {self.config.api_base_path.rstrip('/')}{path}"
        if params:
            shown += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        if body is not None:
            shown += " " + json.dumps(body, separators=(",", ":"))
        waited = 0.0
        attempt = 0
        refreshed = False
        while True:
            self._pace(what)
            outcome = self._attempt(method, url, params, body, what, shown, may_refresh=not refreshed)
            if outcome.body is not _NO_BODY:
                return outcome.body
            if outcome.refresh:
                refreshed = True
                self._refresh_access(what, shown)
                continue
            waited += self._back_off(attempt, waited, outcome, what, shown)
            attempt += 1

    def _pace(self, what: str) -> None:
        """Wait while the rate-limit window has no room for this request (see `RatePacer`)."""
        pause = self.pacer.delay(time.monotonic())
        if pause <= 0:
            return
        log.info(
            "%s: %s of %s requests left in the rate-limit window; waiting %.2f s",
            what, self.pacer.remaining, self.pacer.limit, pause,
        )  # fmt: skip
        self._sleep(pause)
        self.pacer.waited()
        self.stats.paced += 1
        self.stats.paced_s += pause

    def _attempt(
        self,
        method: str,
        url: str,
        params: dict[str, Any] | None,
        body: Any,
        what: str,
        shown: str,
        *,
        may_refresh: bool,
    ) -> _Attempt:
        """Send the request once and classify the answer; raise when no retry can help."""
        self.stats.requests += 1
        sent = time.perf_counter()
        try:
            # Not streamed: request() returns once the whole body is read, so this is the request's latency.
            resp = self.session.request(
                method, url, params=params, json=body, timeout=(self.config.connect_timeout, self.config.timeout)
            )
        except TRANSPORT_ERRORS as exc:
            self.stats.statuses[type(exc).__name__] += 1
            return _Attempt(reason=f"{type(exc).__name__}: {excerpt(str(exc), 200)}")
        status = resp.status_code
        self.stats.answered(status, len(resp.content), time.perf_counter() - sent)
        self.pacer.observe(resp.headers, time.monotonic(), counted=status != 429)
        if 200 <= status < 300:
            try:
                return _Attempt(body=decode_json(resp.content), status=status)
            except ValueError:
                return _Attempt(
                    status=status, reason=f"HTTP {status} with a body that is not JSON: {excerpt(resp.text, 200)!r}"
                )
        if status == 401 and self._vault is not None and may_refresh:
            return _Attempt(refresh=True, status=status)  # OAuth: one refresh, then the request again
        if status in (401, 403):
            if status == 403:
                hint = "the token lacks access to this endpoint: check its scopes (or the app's)"
            elif self._vault is not None:
                hint = "even after refreshing the OAuth token; check the `lightspeed_api` connection"
            else:
                hint = "check the password (access token) of the `lightspeed_api` connection"
            raise LightspeedAuthError(
                f"{what}: HTTP {status} on {shown}: the API refused the token; {hint}. Body: {excerpt(resp.text)!r}",
                status=status,
            )
        if status == 429:
            header = resp.headers.get("Retry-After")
            wait = parse_retry_after(header)
            return _Attempt(status=status, reason=f"HTTP 429 (Retry-After: {header!r})", retry_after=wait)
        if status in RETRYABLE_STATUS:
            return _Attempt(status=status, reason=f"HTTP {status}: {excerpt(resp.text, 200)!r}")
        raise LightspeedAPIError(
            f"{what}: HTTP {status} on {shown} (not retryable). Body: {excerpt(resp.text)!r}",
            status=status,
            permanent=400 <= status < 500,
        )

    def _refresh_access(self, what: str, shown: str) -> None:
        """After a 401: a fresh access token from the vault (shared with the other tasks)."""
        assert self._vault is not None
        self._access = self._vault.refresh(self._access, self._exchange)
        self.stats.token_refreshes += 1
        self._set_auth()
        log.info("%s: HTTP 401 on %s; access token refreshed, retrying", what, shown)

    def _back_off(self, attempt: int, waited: float, outcome: _Attempt, what: str, shown: str) -> float:
        """Wait before retrying a retryable failure, or raise when the attempts or the wait
        budget are used up. Returns the seconds waited."""
        if outcome.retry_after is not None:
            delay = min(outcome.retry_after, self.config.max_retry_after)
        else:
            delay = backoff_delay(attempt, self.config.backoff_initial, self.config.backoff_max, self._rng)
        if attempt >= self.config.max_retries or waited + delay > self.config.retry_budget_s:
            raise LightspeedAPIError(
                f"{what}: giving up on {shown} after {attempt + 1} attempts and {waited:.1f} s of "
                f"waiting (max_retries={self.config.max_retries}, retry_budget_s="
                f"{self.config.retry_budget_s:g}). Last error: {outcome.reason}"
            )
        log.warning("%s: %s on %s; retry %d in %.2f s", what, outcome.reason, shown, attempt + 1, delay)
        self._sleep(delay)
        self.stats.waited_s += delay
        if outcome.status == 429:
            self.stats.rate_limited_s += delay
        self.stats.retries += 1
        return delay

    def retailer(self) -> dict[str, Any]:
        """The store this connection reaches (`GET /retailer`): at least its `id`."""
        what = "store identity (GET /retailer)"
        payload = self.get_json("/retailer", {}, what=what)
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("retailer"), dict):
            data = data["retailer"]
        if not isinstance(data, dict) or not data.get("id"):
            raise LightspeedAPIError(
                f"{what}: the answer holds no retailer id: {excerpt(repr(payload), 200)}", permanent=True
            )
        return data
