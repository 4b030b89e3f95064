"""Rate-limit pacing (against the simulator's sliding window, over real HTTP) and one-page-ahead prefetch."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.api.pacing import RatePacer
from lightspeed_pipeline.api.paginators import VersionPaginator, prefetched

from simulator import Simulator

TOKEN = "pace-token"


def test_pacer_waits_only_at_the_reserve_and_until_its_oldest_request_leaves_the_window() -> None:
    pacer = RatePacer(reserve=1, window_s=10.0)
    assert pacer.delay(0.0) == 0.0  # no headers seen: nothing to pace
    pacer.observe({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "3"}, now=1.0, counted=True)
    assert pacer.delay(1.5) == 0.0
    pacer.observe({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "1"}, now=2.0, counted=True)
    assert pacer.delay(2.5) == pytest.approx(8.5)  # the request answered at 1.0 leaves the window at 11.0
    pacer.waited()
    assert pacer.delay(11.0) == 0.0  # its slot is free again
    pacer.observe({"x-ratelimit-limit": "5", "x-ratelimit-remaining": "0", "X-RateLimit-Window": "4"},
                  now=11.5, counted=False)  # fmt: skip  # a 429 is not counted, but its headers are read
    # the window is now 4 s: our request of 2.0 has left it, so the others hold the budget: its average pace
    assert pacer.window_s == 4.0 and pacer.delay(11.5) == pytest.approx(4 / 5)


def test_the_pacer_forgets_requests_the_api_no_longer_counts() -> None:
    """The API counts a request when it arrives, before the client sees the answer: under load it
    lets one go from its window earlier than the client would. Then the client must wait for the
    oldest request the API still counts, not for one whose slot is already free."""
    pacer = RatePacer(reserve=0, window_s=1.0)
    for i, left in enumerate((5, 4, 3, 2, 1, 0)):  # six answers, 0.1 s apart: the budget is spent
        pacer.observe({"X-RateLimit-Limit": "6", "X-RateLimit-Remaining": str(left)}, now=i / 10, counted=True)
    # At 1.05 the API has let go of the first three (they reached it well before we saw them answered).
    pacer.observe({"X-RateLimit-Limit": "6", "X-RateLimit-Remaining": "2"}, now=1.05, counted=True)
    assert pacer.delay(1.06) == 0.0
    pacer.observe({"X-RateLimit-Limit": "6", "X-RateLimit-Remaining": "1"}, now=1.1, counted=True)
    pacer.observe({"X-RateLimit-Limit": "6", "X-RateLimit-Remaining": "0"}, now=1.15, counted=True)
    # The six it counts are ours of 0.3, 0.4, 0.5, 1.05, 1.1 and 1.15: the next slot frees at 1.3.
    assert pacer.delay(1.16) == pytest.approx(0.14)


def test_a_long_read_under_a_small_budget_receives_no_429() -> None:
    sim = Simulator(scale="products=60", token=TOKEN, rate_limit=6, rate_window=1.0, max_page_size=5)
    sim.start()
    try:
        config = ClientConfig(base_url=sim.url, token=TOKEN, page_size=5, rate_reserve=0, backoff_initial=0.01)
        started = time.monotonic()
        with LightspeedClient(config) as client:
            pages = list(VersionPaginator(client, "products", "/products", after=0, deleted=True).pages())
        elapsed = time.monotonic() - started
        statuses = [r["status"] for r in sim.requests]
        assert sum(len(p.records) for p in pages) == 60 and len(statuses) == 13
        assert statuses.count(429) == 0 and client.stats.retries == 0
        assert client.stats.paced >= 1
        assert elapsed >= 1.9  # 13 requests at 6 per second cannot take less than two windows
    finally:
        sim.stop()


def _numbers(n: int, produced: list[int], fail_at: int | None = None) -> Iterator[int]:
    for i in range(1, n + 1):
        if i == fail_at:
            raise RuntimeError(f"page {i} failed")
        produced.append(i)
        yield i


def test_prefetch_stays_one_page_ahead() -> None:
    produced: list[int] = []
    seen = []
    for page in prefetched(_numbers(6, produced)):  # type: ignore[arg-type]
        time.sleep(0.05)  # "writing": the fetcher has time to run ahead if it could
        assert max(produced) <= page + 1
        seen.append(page)
    assert seen == [1, 2, 3, 4, 5, 6]


def test_prefetch_raises_a_fetch_error_after_the_pages_before_it() -> None:
    seen = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        for page in prefetched(_numbers(6, [], fail_at=3)):  # type: ignore[arg-type]
            seen.append(page)
    assert seen == [1, 2]


def test_prefetch_stops_its_thread_when_the_writer_fails() -> None:
    produced: list[int] = []
    with pytest.raises(ValueError):
        for page in prefetched(_numbers(100, produced)):  # type: ignore[arg-type]
            if page == 2:
                raise ValueError("write failed")
    # The fetcher thread is gone (joined before the error left the generator), so nothing can
    # be fetched later: no wait is needed to see that it stopped.
    assert not [t for t in threading.enumerate() if t.name == "lightspeed-prefetch"]
    assert max(produced) <= 3
