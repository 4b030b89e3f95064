"""The HTTP transport: retries, Retry-After, errors, bodies (over real HTTP). Paging: test_paginators.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from lightspeed_pipeline.api.client import decode_json
from lightspeed_pipeline.api.errors import LightspeedAPIError, LightspeedAuthError
from lightspeed_pipeline.api.pacing import backoff_delay, parse_retry_after
from lightspeed_pipeline.api.paginators import VersionPaginator

from tests.unit.scripted_http import Response, ok

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
    assert list(VersionPaginator(client, "sales", "/sales", after=0, deleted=False).pages()) == []
    assert 1.0 <= sleeps[0] <= 3.0 and sleeps[1] == 2.0  # Retry-After honoured (date, then seconds)
    assert client.stats.retries == 4 and client.stats.requests == 5


def test_retries_are_bounded_and_the_error_says_where(make_client) -> None:
    client, server, sleeps = make_client(lambda p, q: (502, {}, "bad gateway"), max_retries=3)
    with pytest.raises(LightspeedAPIError) as err:
        list(VersionPaginator(client, "sales", "/sales", after=42, deleted=False).pages())
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
        list(VersionPaginator(client, "sales", "/sales", after=0, deleted=False).pages())
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


def test_read_timeouts_are_retried(make_client) -> None:
    import time

    calls = []

    def slow_then_ok(path: str, q: dict[str, str]) -> Response:
        calls.append(path)
        if len(calls) == 1:
            time.sleep(0.6)  # longer than the client's read timeout
        return ok({"data": []})

    client, _, sleeps = make_client(slow_then_ok, timeout=0.2)
    assert list(VersionPaginator(client, "sales", "/sales", after=0, deleted=False).pages()) == []
    assert client.stats.statuses["ReadTimeout"] == 1 and client.stats.retries == 1 and len(sleeps) == 1


def test_bodies_that_are_not_strict_json_keep_every_value() -> None:
    strict = decode_json(b'{"a": [1.5, "\\u00e9"], "b": null}')
    assert strict == {"a": [1.5, "é"], "b": None}
    lenient = decode_json(b'{"nan": NaN, "inf": -Infinity, "huge": 1e400, "ok": 2.5, "s": "\\ud800"}')
    assert lenient == {"nan": "NaN", "inf": "-Infinity", "huge": "1e400", "ok": 2.5, "s": "\ud800"}
    with pytest.raises(ValueError):
        decode_json(b"<html>502</html>")
