"""The HTTP client: paging by version and by id, retries, Retry-After, errors (over real HTTP)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from lightspeed_pipeline.client import (
    ClientConfig,
    LightspeedAPIError,
    LightspeedAuthError,
    LightspeedClient,
    backoff_delay,
    decode_json,
    parse_retry_after,
)

from tests.unit.scripted_http import Response, ScriptedServer, ok

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_retry_after_seconds_date_past_and_garbage() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=30), usegmt=True), now=NOW) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=NOW) == 0.0  # in the past: now
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None and parse_retry_after("") is None


def test_backoff_is_capped_exponential_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(a, 1.0, 8.0, rng) for a in range(6)]
    for attempt, d in enumerate(delays):
        base = min(8.0, 2**attempt)
        assert base / 2 <= d <= base
    assert max(delays) <= 8.0


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def make_client() -> Iterator:
    servers: list[ScriptedServer] = []

    def make(handler, **config) -> tuple[LightspeedClient, ScriptedServer, Sleeps]:
        server = ScriptedServer(handler)
        servers.append(server)
        sleeps = Sleeps()
        options = {"page_size": 2, "backoff_initial": 1, **config}
        cfg = ClientConfig(base_url=server.url, token="secret-token", **options)
        return LightspeedClient(cfg, sleep=sleeps, rng=random.Random(0)), server, sleeps

    yield make
    for s in servers:
        s.close()


def versioned_api(records: list[dict], cap: int = 2):
    """Serves `records` like the real API: after is exclusive, page_size silently capped."""

    def handler(path: str, q: dict[str, str]) -> Response:
        after = int(q.get("after", 0))
        size = min(int(q.get("page_size", 100)), cap)
        page = [r for r in records if r["version"] > after][:size]
        if not page:
            return ok({"data": [], "version": None})
        return ok({"data": page, "version": {"min": page[0]["version"], "max": page[-1]["version"]}})

    return handler


def test_pages_until_an_empty_page_even_after_short_pages(make_client) -> None:
    records = [{"id": str(i), "version": 10 + i * 3} for i in range(5)]
    client, server, _ = make_client(versioned_api(records, cap=2))
    pages = list(client.iter_version_pages("brands", "/brands", after=0, deleted=True))
    assert [[r["id"] for r in p.records] for p in pages] == [["0", "1"], ["2", "3"], ["4"]]
    assert [p.max_version for p in pages] == [13, 19, 22]
    afters = [int(r["query"]["after"]) for r in server.requests]
    assert afters == [0, 13, 19, 22]  # pages + 1 requests; the cursor is each page's max
    assert all(r["query"]["deleted"] == "true" for r in server.requests)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer secret-token"
    assert server.requests[0]["path"] == "/api/2.0/brands"
    assert client.stats.requests == 4


def test_full_page_smaller_than_requested_is_not_the_end(make_client) -> None:
    records = [{"id": str(i), "version": i + 1} for i in range(4)]
    client, server, _ = make_client(versioned_api(records, cap=1), page_size=100)
    assert sum(len(p.records) for p in client.iter_version_pages("x", "/x", after=0, deleted=False)) == 4
    assert "deleted" not in server.requests[0]["query"]


def test_missing_version_max_falls_back_to_record_versions(make_client) -> None:
    calls = iter([ok({"data": [{"id": "a", "version": 7}]}), ok({"data": []})])
    client, server, _ = make_client(lambda p, q: next(calls))
    pages = list(client.iter_version_pages("x", "/x", after=0, deleted=False))
    assert pages[0].max_version == 7 and server.requests[1]["query"]["after"] == "7"


def test_bare_array_response_is_accepted(make_client) -> None:
    calls = iter([ok([{"id": "a", "version": 3}]), ok([])])
    client, _, _ = make_client(lambda p, q: next(calls))
    assert [p.max_version for p in client.iter_version_pages("inventory", "/inventory", after=0, deleted=False)] == [3]


def test_cursor_that_does_not_advance_fails_clearly(make_client) -> None:
    client, _, _ = make_client(lambda p, q: ok({"data": [{"id": "a", "version": 5}], "version": {"max": 5}}))
    with pytest.raises(LightspeedAPIError, match="cursor did not advance"):
        list(client.iter_version_pages("x", "/x", after=5, deleted=False))


def test_429_with_http_date_then_5xx_then_success(make_client) -> None:
    retry_at = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    script: list[Response] = [
        (429, {"Retry-After": retry_at}, '{"error":"Too Many Requests"}'),
        (429, {"Retry-After": "2"}, "{}"),
        (503, {"Content-Type": "text/html"}, "<html>down</html>"),
        (200, {"Content-Type": "text/html"}, "<html>not json</html>"),
        ok({"data": []}),
    ]
    client, _server, sleeps = make_client(lambda p, q: script.pop(0))
    assert list(client.iter_version_pages("sales", "/sales", after=0, deleted=False)) == []
    assert 1.0 <= sleeps[0] <= 3.0 and sleeps[1] == 2.0  # Retry-After honoured (date, then seconds)
    assert client.stats.retries == 4 and client.stats.requests == 5


def test_retries_are_bounded_and_the_error_says_where(make_client) -> None:
    client, server, sleeps = make_client(lambda p, q: (502, {}, "bad gateway"), max_retries=3)
    with pytest.raises(LightspeedAPIError) as err:
        list(client.iter_version_pages("sales", "/sales", after=42, deleted=False))
    msg = str(err.value)
    assert "sales (page 1, after version 42)" in msg and "after 4 attempts" in msg and "HTTP 502" in msg
    assert len(server.requests) == 4 and len(sleeps) == 3


def test_retry_budget_bounds_total_waiting(make_client) -> None:
    client, _server, sleeps = make_client(lambda p, q: (429, {"Retry-After": "10"}, ""), retry_budget_s=25)
    with pytest.raises(LightspeedAPIError, match="retry_budget_s=25"):
        client.get_json("/sales", {}, what="sales")
    assert sleeps == [10.0, 10.0]


def test_other_4xx_fail_at_once_with_body_excerpt(make_client) -> None:
    client, server, _ = make_client(lambda p, q: (400, {}, '{"error":"bad page_size"}'))
    with pytest.raises(LightspeedAPIError, match=r"HTTP 400 on GET /api/2.0/sales\?after=0&page_size=2.*bad page_size"):
        list(client.iter_version_pages("sales", "/sales", after=0, deleted=False))
    assert len(server.requests) == 1


def test_401_says_to_check_the_connection_and_hides_the_token(make_client) -> None:
    client, _, _ = make_client(lambda p, q: (401, {}, '{"error":"Unauthorized"}'))
    with pytest.raises(LightspeedAuthError) as err:
        client.get_json("/outlets", {}, what="outlets")
    assert "lightspeed_api" in str(err.value) and "secret-token" not in str(err.value)


def test_connection_errors_are_retried(make_client) -> None:
    client, server, _sleeps = make_client(lambda p, q: ok({}), max_retries=2)
    server.close()  # nothing listens any more
    with pytest.raises(LightspeedAPIError, match="ConnectionError"):
        client.get_json("/outlets", {}, what="outlets")
    assert client.stats.requests == 3


def test_id_paging_for_categories(make_client) -> None:
    cats = [{"id": f"c{i}", "name": str(i)} for i in range(5)]

    def handler(path: str, q: dict[str, str]) -> Response:
        after = q.get("after")
        rest = [c for c in cats if after is None or c["id"] > after][: int(q["page_size"])]
        has_next = bool(rest) and rest[-1]["id"] != cats[-1]["id"]
        return ok({"data": {"categories": rest}, "page_info": {"has_next": has_next, "last_seen": rest[-1]["id"]}})

    client, server, _ = make_client(handler)
    pages = list(client.iter_id_pages("product_categories", "/product_categories"))
    assert [len(p.records) for p in pages] == [2, 2, 1]
    assert [r["query"].get("after") for r in server.requests] == [None, "c1", "c3"]


def test_read_timeouts_are_retried(make_client) -> None:
    import time

    calls = []

    def slow_then_ok(path: str, q: dict[str, str]) -> Response:
        calls.append(path)
        if len(calls) == 1:
            time.sleep(0.6)  # longer than the client's read timeout
        return ok({"data": []})

    client, _, sleeps = make_client(slow_then_ok, timeout=0.2)
    assert list(client.iter_version_pages("sales", "/sales", after=0, deleted=False)) == []
    assert client.stats.statuses["ReadTimeout"] == 1 and client.stats.retries == 1 and len(sleeps) == 1


def test_bodies_that_are_not_strict_json_keep_every_value() -> None:
    strict = decode_json(b'{"a": [1.5, "\\u00e9"], "b": null}')
    assert strict == {"a": [1.5, "é"], "b": None}
    lenient = decode_json(b'{"nan": NaN, "inf": -Infinity, "huge": 1e400, "ok": 2.5, "s": "\\ud800"}')
    assert lenient == {"nan": "NaN", "inf": "-Infinity", "huge": "1e400", "ok": 2.5, "s": "\ud800"}
    with pytest.raises(ValueError):
        decode_json(b"<html>502</html>")
