"""Run metrics: latency percentiles in bounded memory, the client's counts (over real HTTP), progress lines."""

from __future__ import annotations

import random

import pytest
from lightspeed_pipeline.api.client import ClientConfig, ClientStats, LightspeedClient
from lightspeed_pipeline.api.paginators import VersionPaginator
from lightspeed_pipeline.metrics import (
    METRIC_KEYS,
    METRICS,
    STATS,
    LatencySample,
    eta_seconds,
    format_count,
    format_duration,
    progress_fraction,
    progress_line,
    stat_name,
)
from lightspeed_pipeline.sync import SyncResult

from tests.unit.scripted_http import ScriptedServer, ok


def test_the_documented_keys_are_one_list_and_every_result_carries_them() -> None:
    assert METRIC_KEYS == tuple(METRICS) and len(set(METRIC_KEYS)) == len(METRIC_KEYS)
    assert all(METRICS[k].strip() for k in METRIC_KEYS)
    result = SyncResult(entity="sales", action="historical_import", start_version=0)
    assert set(METRIC_KEYS) <= set(result.as_dict())  # before any request too
    result.http = ClientStats().as_dict()
    meta = result.as_dict()
    assert set(METRIC_KEYS) <= set(meta)
    for old in ("write_s", "retry_wait_s", "paced_s", "fetch_s", "wait_s", "statuses", "token_refreshes"):
        assert old in meta  # the keys other code reads stay
    assert {key for key, _, _ in STATS} <= set(METRIC_KEYS)


def test_latency_percentiles_are_exact_below_the_cap_and_memory_stays_bounded() -> None:
    sample = LatencySample()
    for ms in range(1, 101):  # 1..100 ms, shuffled
        sample.add(ms / 1000)
    assert sample.percentiles(50, 95) == [0.05, 0.095]
    assert sample.as_dict() == {"latency_p50_ms": 50.0, "latency_p95_ms": 95.0, "latency_max_ms": 100.0}
    assert LatencySample().as_dict() == {"latency_p50_ms": 0.0, "latency_p95_ms": 0.0, "latency_max_ms": 0.0}

    capped = LatencySample(cap=1000, seed=1)
    rng = random.Random(7)
    values = [rng.uniform(0, 1) for _ in range(50_000)]
    for v in values:
        capped.add(v)
    assert len(capped) == 1000 and capped.count == 50_000  # a uniform reservoir of 1 000
    assert capped.max == max(values)  # the maximum stays exact
    p50, p95 = capped.percentiles(50, 95)
    assert p50 == pytest.approx(0.5, abs=0.05) and p95 == pytest.approx(0.95, abs=0.02)
    d = capped.as_dict()
    assert d["latency_p50_ms"] <= d["latency_p95_ms"] <= d["latency_max_ms"]


def test_the_client_counts_429s_5xx_bytes_latency_and_the_rate_limit_wait() -> None:
    page = ok({"data": [{"id": "a", "version": 5}], "version": {"min": 5, "max": 5}})
    empty = ok({"data": [], "version": None})
    script = iter([
        (429, {"Retry-After": "2"}, '{"error": "Too Many Requests"}'),
        (503, {}, "<html>busy</html>"),
        page,
        (429, {}, ""),  # no Retry-After: backoff, still a wait caused by the rate limit
        empty,
    ])  # fmt: skip
    served: list[str] = []

    def handler(path: str, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        answer = next(script)
        served.append(answer[2])
        return answer

    server = ScriptedServer(handler)
    sleeps: list[float] = []
    try:
        config = ClientConfig(base_url=server.url, token="t", backoff_initial=1.0, rate_reserve=0)
        client = LightspeedClient(config, sleep=sleeps.append, rng=random.Random(0))
        pages = list(VersionPaginator(client, "brands", "/brands", after=0, deleted=False).pages())
    finally:
        server.close()
    assert [p.max_version for p in pages] == [5]
    stats = client.stats.as_dict()
    assert stats["requests"] == 5 and stats["retries"] == 3
    assert stats["http_429"] == 2 and stats["http_5xx"] == 1
    assert stats["bytes_received"] == sum(len(body.encode()) for body in served)
    after_429 = sleeps[0] + sleeps[2]  # Retry-After: 2, then the backoff after the bare 429
    assert sleeps[0] == 2.0
    assert stats["rate_limit_wait_s"] == pytest.approx(after_429, abs=1e-3)
    assert stats["retry_wait_s"] == pytest.approx(sum(sleeps), abs=1e-3)
    assert client.stats.latency.count == 5
    assert 0 < stats["latency_p50_ms"] <= stats["latency_p95_ms"] <= stats["latency_max_ms"]


def test_progress_fraction_and_eta() -> None:
    assert progress_fraction(100, 160, 200) == pytest.approx(0.6)
    assert progress_fraction(100, 260, 200) == 1.0  # past the bound (written since): done as far as known
    assert progress_fraction(100, 160, None) is None
    assert progress_fraction(200, 210, 200) is None  # no range to measure against
    assert eta_seconds(0.25, 30.0) == pytest.approx(90.0)
    assert eta_seconds(None, 30.0) is None and eta_seconds(0.0, 30.0) is None and eta_seconds(1.0, 30.0) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (44.6, "45 s"), (60, "1 min"), (80, "1 min 20 s"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_progress_lines() -> None:
    assert format_count(12000) == "12 000" and format_count(849.6) == "850" and format_count(1234567) == "1 234 567"
    # 61.7 % of the version range in 120 s: the remaining 38.3 % takes about 74 s.
    line = progress_line("sales", page=12, records=12_000, elapsed_s=120.0, position=123_400, start=0, end=200_000)
    assert line == "sales: page 12, 12 000 records so far, 100 rows/s, version 123400 of ~200000 (61 %), ETA 1 min 14 s"
    line = progress_line("sales", page=3, records=3000, elapsed_s=2.0, position=5000, start=1000, end=None)
    assert line == "sales: page 3, 3 000 records so far, 1 500 rows/s, version 5000 (no upper bound known, no ETA)"
    line = progress_line("inventory", page=9, records=900, elapsed_s=1.0, position=300, start=0, end=200)
    assert line.endswith("version 300 of ~200 (100 %), bound reached")
    line = progress_line("product_categories", page=2, records=2000, elapsed_s=0.0)
    assert line == "product_categories: page 2, 2 000 records so far, 0 rows/s"  # id paging: no version, no ETA


def test_stat_names_are_statsd_safe() -> None:
    assert stat_name("product_categories", "latency_p95_ms") == "lightspeed.product_categories.latency_p95_ms"
    assert stat_name("odd name:é|x", "records") == "lightspeed.odd_name___x.records"
    longest = max(len(stat_name("product_categories", name)) for _, name, _ in STATS)
    assert longest + len("airflow.") <= 63  # OpenTelemetry's name limit, with Airflow's default prefix


def test_the_docs_list_every_metric_key() -> None:
    """README's Monitoring section and docs/monitoring.md's table name exactly METRIC_KEYS, in order."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    listed = readme[readme.index("**Metric keys**") : readme.index("What each one means")]
    names = re.findall(r"`([a-z0-9_]+)`", listed.split("when StatsD or OpenTelemetry is on):", 1)[1])
    assert tuple(names) == METRIC_KEYS
    table = re.findall(r"^\| `([a-z0-9_]+)` \|", (root / "docs" / "monitoring.md").read_text(), re.M)
    assert tuple(k for k in table if k in METRICS) == METRIC_KEYS
