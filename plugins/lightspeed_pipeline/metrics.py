"""Per-entity run metrics: their documented keys, API latency percentiles, progress lines, Stats.

The keys of `METRICS` are what the sync writes into `sync_log.metadata` (the `completed` or
`failed` row of each entity sync), in the same units, next to the other keys that row has
always carried. `METRIC_KEYS` is that list; the docs and the tests read it from here.
Plain Python except `emit_stats`, which imports Airflow lazily and never raises.
"""

from __future__ import annotations

import logging
import math
import random
from array import array
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)

# key in sync_log.metadata -> what it means (one line each; the docs copy this table)
METRICS: dict[str, str] = {
    "records": "records the API returned for the entity in this sync (those already stored included)",
    "rows_inserted": "rows inserted into the entity's table",
    "rows_updated": "rows whose stored version was older and were rewritten",
    "rows_unchanged": "records already stored at the same or a newer version (nothing written)",
    "rows_deleted": "rows marked deleted: reported deleted by the API, or gone from a complete listing",
    "pages": "pages of records read (the empty page that ends a listing is not counted)",
    "requests": "HTTP requests sent to the API by this sync, retries included",
    "duration_s": "seconds from the start of the sync (entity lock held) to its end",
    "rows_per_s": "records / duration_s",
    "latency_p50_ms": "median API latency per answered HTTP request (request sent to body read), ms",
    "latency_p95_ms": "95th percentile of the same latencies, ms",
    "latency_max_ms": "slowest answered HTTP request, ms",
    "retries": "requests sent again after a retryable failure (429, 5xx, connection error, timeout, bad body)",
    "http_429": "429 Too Many Requests answers received",
    "http_5xx": "5xx answers received",
    "bytes_received": "response body bytes received (every answer, errors included; after gzip decoding)",
    "rate_limit_wait_s": "seconds waited because of the rate limit: waits after 429s plus paced_s",
    "db_write_s": "seconds spent in the database writing pages (and marking unlisted rows deleted)",
}
METRIC_KEYS: tuple[str, ...] = tuple(METRICS)

# -- API latency -----------------------------------------------------------------------

LATENCY_SAMPLE_CAP = 100_000  # 800 KB of doubles at most


class LatencySample:
    """Latencies (seconds) with O(1) memory: exact up to `cap` values, a uniform reservoir after.

    Up to `cap` (100 000) requests every latency is kept (an array of doubles, 8 bytes each),
    so the percentiles are exact; beyond it, reservoir sampling (Vitter's algorithm R) keeps a
    uniform sample of `cap` of them. The count and the maximum are always exact.
    """

    def __init__(self, cap: int = LATENCY_SAMPLE_CAP, seed: int = 0) -> None:
        self.cap = max(1, cap)
        self.count = 0
        self.max = 0.0
        self._values = array("d")
        self._rng = random.Random(seed)

    def add(self, seconds: float) -> None:
        self.count += 1
        self.max = max(self.max, seconds)
        if len(self._values) < self.cap:
            self._values.append(seconds)
            return
        slot = self._rng.randrange(self.count)
        if slot < self.cap:
            self._values[slot] = seconds

    def __len__(self) -> int:
        return len(self._values)

    def percentiles(self, *qs: float) -> list[float]:
        """Nearest-rank percentiles (q in 0..100) of the kept values, in seconds; 0.0 when empty."""
        if not self._values:
            return [0.0 for _ in qs]
        ordered = sorted(self._values)
        n = len(ordered)
        return [ordered[min(n - 1, max(0, math.ceil(q / 100 * n) - 1))] for q in qs]

    def as_dict(self) -> dict[str, float]:
        p50, p95 = self.percentiles(50, 95)
        return {
            "latency_p50_ms": round(p50 * 1000, 1),
            "latency_p95_ms": round(min(p95, self.max) * 1000, 1),
            "latency_max_ms": round(self.max * 1000, 1),
        }


# -- progress lines ----------------------------------------------------------------------


def progress_fraction(start: float | None, position: float | None, end: float | None) -> float | None:
    """How far `position` has come from `start` towards `end` (0..1), or None when unknown.

    None without a bound, or when the bound does not lie above the start; a position past the
    bound (records written since the bound was known) counts as 1.
    """
    if start is None or position is None or end is None or end <= start:
        return None
    return min(1.0, max(0.0, (position - start) / (end - start)))


def eta_seconds(fraction: float | None, elapsed_s: float) -> float | None:
    """Seconds left if the rest goes as fast as what was done so far; None when unknown."""
    if fraction is None or fraction <= 0 or fraction >= 1 or elapsed_s <= 0:
        return None
    return elapsed_s * (1 - fraction) / fraction


def format_duration(seconds: float) -> str:
    """`45 s`, `1 min 20 s`, `2 h 5 min` (rounded to whole seconds)."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def format_count(n: float) -> str:
    """Thousands grouped with spaces: `12 000`."""
    return f"{round(n):,}".replace(",", " ")


def progress_line(
    entity: str,
    *,
    page: int,
    records: int,
    elapsed_s: float,
    position: int | None = None,
    start: int | None = None,
    end: int | None = None,
) -> str:
    """One progress line for the task log.

    `sales: page 12, 12 000 records so far, 850 rows/s, version 123456 of ~200000 (61 %), ETA 1 min 20 s`.
    `position` is the version the listing has reached (None for id paging: no version part),
    `start` where it began and `end` the bound it runs to (None when none is known: no %, no ETA;
    at or past it, where records written since the bound was known are read: "bound reached").
    """
    rate = records / elapsed_s if elapsed_s > 0 else 0.0
    parts = [f"{entity}: page {page}", f"{format_count(records)} records so far", f"{format_count(rate)} rows/s"]
    if position is not None:
        fraction = progress_fraction(start, position, end)
        if fraction is None:
            parts.append(f"version {position} (no upper bound known, no ETA)")
        else:
            eta = eta_seconds(fraction, elapsed_s)
            where = f"version {position} of ~{end} ({math.floor(fraction * 100)} %)"
            parts.append(where)
            parts.append(f"ETA {format_duration(eta)}" if eta is not None else "bound reached")
    return ", ".join(parts)


# -- Airflow metrics (Stats) --------------------------------------------------------------

STATS_PREFIX = "lightspeed"
# (key in the metrics dict, name after `lightspeed.<entity>.`, kind): counters per run, timings, gauges
STATS: tuple[tuple[str, str, str], ...] = (
    ("records", "records", "incr"),
    ("rows_inserted", "rows_inserted", "incr"),
    ("rows_updated", "rows_updated", "incr"),
    ("rows_deleted", "rows_deleted", "incr"),
    ("pages", "pages", "incr"),
    ("requests", "requests", "incr"),
    ("retries", "retries", "incr"),
    ("http_429", "http_429", "incr"),
    ("http_5xx", "http_5xx", "incr"),
    ("bytes_received", "bytes_received", "incr"),
    ("duration_s", "duration", "timing"),
    ("db_write_s", "db_write", "timing"),
    ("rate_limit_wait_s", "rate_limit_wait", "timing"),
    ("rows_per_s", "rows_per_s", "gauge"),
    ("latency_p50_ms", "latency_p50_ms", "gauge"),
    ("latency_p95_ms", "latency_p95_ms", "gauge"),
    ("latency_max_ms", "latency_max_ms", "gauge"),
)

_stats_ready = False


def _stats() -> Any:
    """Airflow's task-SDK Stats, initialised from the [metrics] config if the process has not done so.

    A worker's task runner initialises it; `dag.test()` and `airflow dags test` run tasks in a
    process that never does, so there it is set up here, once, from the same configuration
    (statsd_on, statsd_host, ..., or otel_on).
    """
    global _stats_ready
    from airflow.sdk.observability import stats

    if not _stats_ready:
        _stats_ready = True
        try:
            from airflow.sdk._shared.observability.metrics import stats as impl

            if getattr(impl, "_factory", None) is None:
                from airflow.sdk.configuration import conf
                from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

                stats.initialize(
                    factory=get_stats_factory(),
                    export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True),
                )
        except Exception as exc:  # the Stats API moved: emit through whatever it is set up with
            log.debug("could not initialise Airflow Stats: %s", exc)
    return stats


def stat_name(entity: str, name: str) -> str:
    """`lightspeed.<entity>.<name>`, with anything StatsD cannot carry replaced by `_`."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in entity)
    return f"{STATS_PREFIX}.{safe}.{name}"


def emit_stats(entity: str, metrics: dict[str, Any] | None, *, ok: bool) -> None:
    """Send an entity sync's metrics through Airflow's Stats; never raises.

    Counters (`incr`) carry this run's amount, timings are seconds, gauges the run's value;
    `lightspeed.<entity>.completed` or `.failed` counts the outcome. Tags ({"entity": ...}) go
    only where the backend supports them (OpenTelemetry, DogStatsD, StatsD with InfluxDB tags);
    the entity is in every name, so plain StatsD loses nothing.
    """
    try:
        stats = _stats()
        tags = {"entity": entity}
        for key, name, kind in STATS:
            value = (metrics or {}).get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            stat = stat_name(entity, name)
            if kind == "incr":
                stats.incr(stat, int(value), tags=tags)
            elif kind == "timing":
                stats.timing(stat, timedelta(seconds=float(value)), tags=tags)
            else:
                stats.gauge(stat, float(value), tags=tags)
        stats.incr(stat_name(entity, "completed" if ok else "failed"), 1, tags=tags)
    except Exception as exc:
        log.warning("%s: could not emit metrics to Airflow Stats: %s", entity, exc)
