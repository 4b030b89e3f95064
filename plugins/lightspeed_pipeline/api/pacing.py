"""Waiting well: capped exponential backoff, `Retry-After`, and pacing inside the rate limit."""

from __future__ import annotations

import email.utils
import random
from collections import deque
from datetime import UTC, datetime
from typing import Any


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


def backoff_delay(attempt: int, initial: float, cap: float, rng: random.Random) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random."""
    base = min(cap, initial * (2**attempt))
    return base / 2 + rng.uniform(0, base / 2)


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
        # The API counts `limit - remaining` requests in its window now. It counted each of ours
        # when the request arrived, before we saw the answer, so it lets one go earlier than we
        # would: keep no more of ours than it still counts, else waiting for one it already let
        # go frees no slot (and the next request meets a 429; seen under load).
        while self._answered and len(self._answered) > self.limit - self.remaining:
            self._answered.popleft()

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
