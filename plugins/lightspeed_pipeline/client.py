"""HTTP client for the Lightspeed Retail (X-Series) API: auth, paging, retries.

Paging follows the API's `version` cursor: ask for `after=<cursor>`, move the cursor
to the page's highest version, and stop only on an empty page (a short or full page
proves nothing). Product categories page by id instead (see `iter_id_pages`).
Retryable failures (429, 5xx, connection errors, timeouts, bodies that are not
JSON) back off exponentially with jitter, honour `Retry-After` (seconds or an HTTP
date), and stop after `max_retries` attempts or `retry_budget_s` seconds of waiting;
other 4xx fail at once. Errors name the entity, the request path and the cursor.
The client also paces itself from the `X-RateLimit-*` headers (see `RatePacer`), so a
long import uses the whole request budget without receiving 429s.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import requests

from lightspeed_pipeline.metrics import LatencySample
from lightspeed_pipeline.tokens import MemoryTokenStore, OAuthConfig, TokenGrant, TokenStore

log = logging.getLogger(__name__)

# Transport failures worth retrying: no answer, a late answer, or an answer cut short.
TRANSPORT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})


class LightspeedAPIError(RuntimeError):
    """A request failed for good; the message says entity, request and why.

    `permanent` means no retry of the task can help (a refused token, a 4xx, a cursor that
    does not advance): the task fails at once instead of burning its retries.
    """

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


class LightspeedAuthError(LightspeedAPIError):
    """401/403: the token is wrong, expired or lacks a scope (never fixed by retrying)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, status=status, permanent=True)


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs; built from the `lightspeed_api` connection (host, password)
    and the `LIGHTSPEED_<FIELD>` environment variables (`LIGHTSPEED_PAGE_SIZE`, ...): see hooks.py."""

    base_url: str  # scheme://host[:port], no trailing slash
    token: str = field(repr=False)  # access token (personal token, or the current OAuth access token)
    api_base_path: str = "/api/2.0"
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


@dataclass
class Page:
    """One page of records and the cursor values around it."""

    records: list[Any]
    after: int | str | None  # the cursor this page was requested with
    max_version: int | None  # highest version in the page (None for id paging)
    number: int
    fetch_s: float = 0.0
    note: str | None = None  # why the listing ended here without an empty page (goes to sync_log)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable.

    A date in the past means "now" (0 s).
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


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


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random."""
    base = min(cap, initial * (2**attempt))
    return base / 2 + rng.uniform(0, base / 2)


def record_version(record: Any) -> int | None:
    """A record's version as an int, if it has a usable one."""
    if not isinstance(record, dict):
        return None
    v = record.get("version")
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    return None


def _excerpt(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _header_number(headers: Any, name: str) -> float | None:
    try:
        return float(headers[name]) if headers.get(name) not in (None, "") else None
    except (TypeError, ValueError):
        return None


class RatePacer:
    """Keeps requests inside the API's sliding-window budget, using the whole of it.

    Lightspeed allows `X-RateLimit-Limit` requests per window (5 minutes) per store, shared
    by every client of the store, and says after each answer how many are left
    (`X-RateLimit-Remaining`). While more than `reserve` remain, requests go at once. At
    or below it, the next request waits until this client's oldest answered request in the
    window has left it, which frees the slot that request held: the client then sends
    exactly as fast as its own slots free up and never pushes the window past the limit.
    The reserve covers the other entity tasks that may be in flight at the same moment
    (the `lightspeed_api` pool caps them), so set it to the pool's slots minus one.
    Nothing is paced when the API sends no rate-limit headers.
    """

    def __init__(self, reserve: int, window_s: float) -> None:
        self.reserve = max(0, reserve)
        self.window_s = window_s
        self.limit: int | None = None
        self.remaining: int | None = None
        self._answered: deque[float] = deque()  # when our counted requests were answered

    def observe(self, headers: Any, now: float, counted: bool) -> None:
        """Read the headers of an answer; `counted` is False for a 429 (not counted by the API)."""
        headers = {str(k).lower(): v for k, v in headers.items()}
        limit = _header_number(headers, "x-ratelimit-limit")
        remaining = _header_number(headers, "x-ratelimit-remaining")
        window = _header_number(headers, "x-ratelimit-window")
        if limit is None or remaining is None:
            return
        self.limit, self.remaining = int(limit), int(remaining)
        if window and window > 0:
            self.window_s = window
        if counted:
            self._answered.append(now)
        self._prune(now)

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request (0 when the budget allows it now)."""
        if self.remaining is None or self.limit is None or self.remaining > self.reserve:
            return 0.0
        self._prune(now)
        if self._answered:
            return max(0.0, self._answered[0] + self.window_s - now)
        return self.window_s / max(1, self.limit)  # the others hold the budget: go at its average rate

    def waited(self) -> None:
        """The wait is over: our oldest request left the window and freed its slot."""
        if self._answered:
            self._answered.popleft()
        if self.remaining is not None:
            self.remaining += 1

    def _prune(self, now: float) -> None:
        while self._answered and self._answered[0] <= now - self.window_s:
            self._answered.popleft()


class LightspeedClient:
    """One HTTP session (keep-alive) per task; not thread-safe, not shared."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        token_store: TokenStore | None = None,
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
        self._tokens: TokenStore | None = None
        self._access: str | None = config.token or None
        if config.oauth is not None:
            self._tokens = token_store or MemoryTokenStore(config.oauth)
            # The newest stored access token wins over the connection's (possibly spent) one.
            self._access = self._tokens.current() or self._access
            if not self._access:
                self._access = self._tokens.refresh(None, self._exchange)
                self.stats.token_refreshes += 1
        self._set_auth()

    def _set_auth(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {self._access or ''}"

    def _exchange(self, refresh_token: str, within_s: float | None = None) -> TokenGrant:
        """POST the refresh token to the token endpoint (form-encoded) and return the new pair.

        `within_s` caps the connect and read timeouts (the token store holds a row lock meanwhile).
        """
        oauth = self.config.oauth
        assert oauth is not None
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": oauth.client_id,
            "client_secret": oauth.client_secret,
        }
        path = "POST " + (requests.utils.urlparse(oauth.token_url).path or "/")
        try:
            resp = self.session.post(
                oauth.token_url,
                data=form,
                headers={"Authorization": None},  # type: ignore[dict-item]  # drop the stale bearer
                timeout=(
                    min(self.config.connect_timeout, within_s or math.inf),
                    min(self.config.timeout, within_s or math.inf),
                ),
            )
        except TRANSPORT_ERRORS as exc:
            bound = f" within {within_s:.1f} s (bounded by the database's lock_timeout)" if within_s else ""
            raise LightspeedAPIError(f"OAuth: {path} failed{bound}: {type(exc).__name__}") from None
        try:
            body = resp.json()
        except ValueError:
            body = {}
        if resp.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            code = body.get("error") if isinstance(body, dict) else None
            raise LightspeedAuthError(
                f"OAuth: refreshing the access token failed: HTTP {resp.status_code} on {path}"
                f" ({code or 'no error code'}). "
                "The refresh token may be spent or revoked: re-authorise the app and put the new refresh token "
                "in the `lightspeed_api` connection's extra.",
                status=resp.status_code,
            )
        expires = body.get("expires_in")
        return TokenGrant(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or refresh_token),
            expires_in=int(expires) if isinstance(expires, (int, float)) else None,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> LightspeedClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- single request with retries --------------------------------------------------

    def get_json(self, path: str, params: dict[str, Any], *, what: str) -> Any:
        """GET `path` under the API root and return the decoded JSON body.

        `what` names the entity and cursor for error messages ("sales after version 42").
        """
        url = self.config.api_root + path
        shown = f"GET {self.config.api_base_path.rstrip('/')}{path}"
        if params:
            shown += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        waited = 0.0
        attempt = 0
        refreshed = False
        while True:
            pause = self.pacer.delay(time.monotonic())
            if pause > 0:
                log.info(
                    "%s: %s of %s requests left in the rate-limit window; waiting %.2f s",
                    what, self.pacer.remaining, self.pacer.limit, pause,
                )  # fmt: skip
                self._sleep(pause)
                self.pacer.waited()
                self.stats.paced += 1
                self.stats.paced_s += pause
            self.stats.requests += 1
            reason: str
            retry_after: float | None = None
            status = 0
            sent = time.perf_counter()
            try:
                # Not streamed: get() returns once the whole body is read, so this is the request's latency.
                resp = self.session.get(url, params=params, timeout=(self.config.connect_timeout, self.config.timeout))
            except TRANSPORT_ERRORS as exc:
                self.stats.statuses[type(exc).__name__] += 1
                reason = f"{type(exc).__name__}: {_excerpt(str(exc), 200)}"
            else:
                status = resp.status_code
                self.stats.answered(status, len(resp.content), time.perf_counter() - sent)
                self.pacer.observe(resp.headers, time.monotonic(), counted=status != 429)
                if 200 <= status < 300:
                    try:
                        return decode_json(resp.content)
                    except ValueError:
                        reason = f"HTTP {status} with a body that is not JSON: {_excerpt(resp.text, 200)!r}"
                elif status == 401 and self._tokens is not None and not refreshed:
                    # OAuth: one refresh (shared with other tasks through the token store), then retry.
                    refreshed = True
                    self._access = self._tokens.refresh(self._access, self._exchange)
                    self.stats.token_refreshes += 1
                    self._set_auth()
                    log.info("%s: HTTP 401 on %s; access token refreshed, retrying", what, shown)
                    continue
                elif status in (401, 403):
                    if status == 403:
                        hint = "the token lacks access to this endpoint: check its scopes (or the app's)"
                    elif refreshed:
                        hint = "even after refreshing the OAuth token; check the `lightspeed_api` connection"
                    else:
                        hint = "check the password (access token) of the `lightspeed_api` connection"
                    raise LightspeedAuthError(
                        f"{what}: HTTP {status} on {shown}: the API refused the token; {hint}. "
                        f"Body: {_excerpt(resp.text)!r}",
                        status=status,
                    )
                elif status in RETRYABLE_STATUS:
                    reason = f"HTTP {status}: {_excerpt(resp.text, 200)!r}"
                    if status == 429:
                        header = resp.headers.get("Retry-After")
                        retry_after = parse_retry_after(header)
                        reason = f"HTTP 429 (Retry-After: {header!r})"
                else:
                    raise LightspeedAPIError(
                        f"{what}: HTTP {status} on {shown} (not retryable). Body: {_excerpt(resp.text)!r}",
                        status=status,
                        permanent=400 <= status < 500,
                    )
            # Retryable failure: wait, unless attempts or the wait budget are used up.
            if retry_after is not None:
                delay = min(retry_after, self.config.max_retry_after)
            else:
                delay = backoff_delay(attempt, self.config.backoff_initial, self.config.backoff_max, self._rng)
            if attempt >= self.config.max_retries or waited + delay > self.config.retry_budget_s:
                raise LightspeedAPIError(
                    f"{what}: giving up on {shown} after {attempt + 1} attempts and {waited:.1f} s of "
                    f"waiting (max_retries={self.config.max_retries}, retry_budget_s="
                    f"{self.config.retry_budget_s:g}). Last error: {reason}"
                )
            log.warning("%s: %s on %s; retry %d in %.2f s", what, reason, shown, attempt + 1, delay)
            self._sleep(delay)
            waited += delay
            self.stats.waited_s += delay
            if status == 429:
                self.stats.rate_limited_s += delay
            self.stats.retries += 1
            attempt += 1

    def retailer(self) -> dict[str, Any]:
        """The store this connection reaches (`GET /retailer`): at least its `id`."""
        what = "store identity (GET /retailer)"
        payload = self.get_json("/retailer", {}, what=what)
        data = payload.get("data") if isinstance(payload, dict) else None
        if isinstance(data, dict) and "id" not in data and isinstance(data.get("retailer"), dict):
            data = data["retailer"]
        if not isinstance(data, dict) or not data.get("id"):
            raise LightspeedAPIError(
                f"{what}: the answer holds no retailer id: {_excerpt(repr(payload), 200)}", permanent=True
            )
        return data

    # -- paging -----------------------------------------------------------------------

    def iter_version_pages(self, name: str, endpoint: str, *, after: int, deleted: bool) -> Iterator[Page]:
        """Pages of records with version > `after`, until the API returns an empty page."""
        cursor = after
        number = 0
        while True:
            params: dict[str, Any] = {"after": cursor, "page_size": self.config.page_size}
            if deleted:
                params["deleted"] = "true"
            started = time.monotonic()
            what = f"{name} (page {number + 1}, after version {cursor})"
            payload = self.get_json(endpoint, params, what=what)
            records, envelope_max = _version_envelope(payload, what)
            if not records:
                return
            versions = [v for v in map(record_version, records) if v is not None]
            candidates = versions + ([envelope_max] if envelope_max is not None else [])
            number += 1
            if not candidates:
                # The vendor's own examples (brands, suppliers, product types) carry no version
                # at all. A short page is then the whole listing; a full one cannot be continued.
                if len(records) < self.config.page_size:
                    note = (
                        f"page {number} after version {cursor}: {len(records)} records without any version "
                        f"(no version.max, no record versions); fewer than page_size={self.config.page_size}, "
                        "so taken as the end of the listing"
                    )
                    log.warning("%s: %s", name, note)
                    yield Page(records, cursor, None, number, time.monotonic() - started, note=note)
                    return
                raise LightspeedAPIError(
                    f"{what}: a full page of {len(records)} records carries no version (no version.max and no "
                    "record versions), so the listing cannot be continued",
                    permanent=True,
                )
            page_max = max(candidates)
            if page_max <= cursor:
                raise LightspeedAPIError(
                    f"{what}: the cursor did not advance (page max version {page_max} <= after {cursor}); "
                    "stopping instead of re-reading the same page forever",
                    permanent=True,
                )
            yield Page(records, cursor, page_max, number, time.monotonic() - started)
            cursor = page_max

    def iter_id_pages(self, name: str, endpoint: str) -> Iterator[Page]:
        """Pages of an id-paged endpoint (2.0 product categories), read in full."""
        cursor: str | None = None
        number = 0
        while True:
            params: dict[str, Any] = {"page_size": self.config.page_size}
            if cursor is not None:
                params["after"] = cursor
            started = time.monotonic()
            what = f"{name} (page {number + 1}, after id {cursor})"
            payload = self.get_json(endpoint, params, what=what)
            records, has_next, last_seen = _id_envelope(payload, what)
            number += 1
            if records:
                yield Page(records, cursor, None, number, time.monotonic() - started)
            if not records or not has_next:
                return
            if last_seen is None:
                last = records[-1]
                last_seen = str(last.get("id")) if isinstance(last, dict) and last.get("id") is not None else None
            if last_seen is None or last_seen == cursor:
                raise LightspeedAPIError(f"{what}: has_next is true but the id cursor did not advance", permanent=True)
            cursor = last_seen


def _version_envelope(payload: Any, what: str) -> tuple[list[Any], int | None]:
    """(records, version.max) from `{"data": [...], "version": {...}}` or a bare array."""
    if isinstance(payload, list):
        return payload, None
    if not isinstance(payload, dict) or "data" not in payload:
        raise LightspeedAPIError(f"{what}: unexpected response shape: {_excerpt(repr(payload), 200)}")
    data = payload["data"]
    if data is None:
        return [], None
    if not isinstance(data, list):
        raise LightspeedAPIError(f"{what}: `data` is a {type(data).__name__}, expected a list")
    version = payload.get("version")
    vmax = record_version({"version": version.get("max")}) if isinstance(version, dict) else None
    return data, vmax


def _id_envelope(payload: Any, what: str) -> tuple[list[Any], bool, str | None]:
    """(records, has_next, last_seen) from the 2.0 product_categories envelope."""
    if not isinstance(payload, dict):
        raise LightspeedAPIError(f"{what}: unexpected response shape: {_excerpt(repr(payload), 200)}")
    data = payload.get("data")
    if isinstance(data, dict):
        records = data.get("categories") or []
    elif isinstance(data, list):
        records = data
    elif data is None:
        records = []
    else:
        raise LightspeedAPIError(f"{what}: `data` is a {type(data).__name__}, expected an object")
    if not isinstance(records, list):
        raise LightspeedAPIError(f"{what}: `data.categories` is not a list")
    info = payload.get("page_info") or {}
    has_next = bool(info.get("has_next")) if isinstance(info, dict) else False
    last = info.get("last_seen") if isinstance(info, dict) else None
    return records, has_next, (str(last) if last is not None else None)
