"""Per-entity run metrics: sync_log.metadata against what the simulator served, progress lines,
and Airflow Stats reaching a StatsD receiver (the real DAG, PostgreSQL and the simulator over HTTP)."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import socket
import subprocess
import sys
import threading
from typing import Any

import pytest
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.metrics import STATS, format_count
from lightspeed_pipeline.sync import METRIC_KEYS, sync_entity
from lightspeed_pipeline.warehouse import DbSettings, Warehouse
from lightspeed_pipeline.warehouse.migrations import apply_migrations

from tests.conftest import FAST_RETRIES, ROOT, TOKEN
from tests.integration.helpers import entity_log, requests_by_resource, run_dag

PAGE = FAST_RETRIES["page_size"]


def served(requests: list[dict[str, Any]]) -> dict[str, int]:
    """What the simulator says it served one resource, in the metric keys' terms."""
    statuses = [r["status"] for r in requests]
    return {
        "requests": len(requests),
        "http_429": sum(1 for s in statuses if s == 429),
        "http_5xx": sum(1 for s in statuses if isinstance(s, int) and 500 <= s <= 599),
        "retries": sum(1 for s in statuses if s != 200),  # each failure was retried once, none gave up
        "bytes_received": sum(r["bytes"] for r in requests),
    }


def test_metrics_in_sync_log_equal_what_the_simulator_served(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    products = reg.get("products")
    n_products = simulator.count({"products": {"after": 0, "deleted": products.supports_deleted}})["products"]
    product_requests = math.ceil(n_products / PAGE) + 1  # the pages and the empty page that ends them
    # In run order: the store check (migrate), products' first request answers 429 then 503, its
    # other requests succeed, then sales' first request answers 500, 429 and 502 before it succeeds.
    script = ["200", "429-seconds", "503", *["200"] * product_requests, "500", "429-seconds", "502"]
    simulator.faults(script=script, retry_after_seconds=1)
    run = run_dag(entities=["products", "sales"])
    simulator.faults()
    assert run.state == "success"

    by_resource = requests_by_resource(simulator.stats())
    assert set(by_resource) == {"retailer", "products", "sales"}  # the store check is migrate's, not an entity's
    meta = entity_log(db, schema, run.run_id)
    assert set(meta) == {"products", "sales"}
    for name, m in meta.items():
        assert set(METRIC_KEYS) <= set(m), (name, set(METRIC_KEYS) - set(m))
        want = served(by_resource[name])
        assert {k: m[k] for k in want} == want, name
        assert m["bytes_received"] > 0
        assert 0 < m["latency_p50_ms"] <= m["latency_p95_ms"] <= m["latency_max_ms"], name
        assert m["latency_max_ms"] < m["duration_s"] * 1000
        # Retry-After: 1 after every 429 (no pacing: the simulator's budget is a million requests)
        assert m["rate_limit_wait_s"] >= m["http_429"] * 1.0 and m["paced_s"] == 0
        assert m["rate_limit_wait_s"] <= m["retry_wait_s"] + m["paced_s"] + 1e-6
        assert 0 < m["db_write_s"] <= m["write_s"] <= m["duration_s"]
        assert m["rows_per_s"] == pytest.approx(m["records"] / m["duration_s"], rel=0.01, abs=0.1)
        assert m["records"] == m["rows_inserted"] + m["rows_updated"] + m["rows_unchanged"]
        assert m["pages"] == math.ceil(m["records"] / PAGE)
    assert (meta["products"]["http_429"], meta["products"]["http_5xx"], meta["products"]["retries"]) == (1, 1, 2)
    assert (meta["sales"]["http_429"], meta["sales"]["http_5xx"], meta["sales"]["retries"]) == (1, 2, 3)
    assert meta["products"]["records"] == n_products

    # A failed sync records its metrics too: customers answers 400 (not retryable).
    simulator.reset_stats()
    simulator.faults(resources={"customers": 400})
    monkeypatch.setenv("LIGHTSPEED_TASK_RETRIES", "0")
    run = run_dag(entities=["customers"])
    simulator.faults()
    assert run.state == "failed"
    failed = entity_log(db, schema, run.run_id, status="failed")["customers"]
    assert set(METRIC_KEYS) <= set(failed)
    want = served(requests_by_resource(simulator.stats())["customers"])
    assert {k: failed[k] for k in want} == {**want, "retries": 0}  # a 400 is not retried
    assert failed["records"] == 0 and failed["requests"] == 1


def test_progress_lines_in_the_log_with_an_eta_when_the_listing_has_a_bound(
    simulator: Any, pg_dsn: str, schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    warehouse = Warehouse.open(pg_dsn, DbSettings(schema=schema))
    apply_migrations(warehouse)
    sales = reg.get("sales")
    config = ClientConfig(base_url=simulator.url, token=TOKEN, page_size=PAGE)
    try:
        with caplog.at_level(logging.INFO, logger="lightspeed_pipeline.sync"):
            with LightspeedClient(config) as client:  # first import: no bound, so no ETA
                first = sync_entity(sales, client, warehouse, run_id="first", progress_every_s=0)
            lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sales: page ")]
            progress = [line for line in lines if "records so far" in line]
            assert len(progress) == first.pages
            assert all(line.endswith("(no upper bound known, no ETA)") for line in progress)
            assert progress[-1].startswith(f"sales: page {first.pages}, {format_count(first.received)} records so far")
            caplog.clear()
            with LightspeedClient(config) as client:  # full refresh: bounded by the stored cursor
                again = sync_entity(sales, client, warehouse, run_id="again", full_refresh=True, progress_every_s=0)
            progress = [r.getMessage() for r in caplog.records if "records so far" in r.getMessage()]
            assert len(progress) == again.pages
            found = [re.search(r", version (\d+) of ~(\d+) \((\d+) %\)", line) for line in progress]
            matches = [m for m in found if m is not None]
            assert len(matches) == again.pages
            assert {int(m.group(2)) for m in matches} == {first.last_version}  # the cursor the first sync stored
            shares = [int(m.group(3)) for m in matches]
            assert shares == sorted(shares) and shares[0] < 100 and shares[-1] == 100
            assert all(re.search(r", ETA (\d+ (h|min|s) ?)+$", line) for line in progress[:-1]), progress
            assert progress[-1].endswith("(100 %), bound reached")
            caplog.clear()
            with LightspeedClient(config) as client:  # the default throttle: a short sync logs no progress
                sync_entity(sales, client, warehouse, run_id="quiet")
            assert not [r for r in caplog.records if "records so far" in r.getMessage()]
    finally:
        warehouse.close()


class StatsdReceiver:
    """A UDP socket that collects StatsD lines (`name:value|type`) in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.lines.extend(data.decode(errors="replace").splitlines())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def metrics(self, prefix: str) -> dict[str, list[tuple[float, str]]]:
        """name (after `prefix`) -> [(value, type), ...]"""
        out: dict[str, list[tuple[float, str]]] = {}
        for line in self.lines:
            m = re.fullmatch(r"([^:]+):(-?[0-9.eE+-]+)\|(c|g|ms)(\|@[0-9.]+)?", line)
            if m and m.group(1).startswith(prefix):
                out.setdefault(m.group(1)[len(prefix) :], []).append((float(m.group(2)), m.group(3)))
        return out


def _run_dag_with_statsd(conf: dict[str, Any], port: int, **env: str) -> subprocess.CompletedProcess[str]:
    """The DAG in a subprocess (Airflow reads its [metrics] config when it is imported)."""
    full_env = {
        **os.environ,
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.run_dag_proc", json.dumps(conf)],
        cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_stats_reach_a_statsd_receiver(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None
) -> None:
    receiver = StatsdReceiver()
    try:
        proc = _run_dag_with_statsd({"entities": ["brands"]}, receiver.port)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        by_resource = requests_by_resource(simulator.stats())
        simulator.faults(resources={"suppliers": 400})
        failing = _run_dag_with_statsd({"entities": ["suppliers"]}, receiver.port, LIGHTSPEED_TASK_RETRIES="0")
        simulator.faults()
        assert failing.returncode == 1
    finally:
        receiver.close()
    got = receiver.metrics("airflow.lightspeed.")
    names = {f"brands.{name}" for _, name, _ in STATS} | {"brands.completed", "suppliers.failed"}
    assert names <= set(got), sorted(names - set(got))
    meta = db.execute(
        f"SELECT metadata FROM \"{schema}\".sync_log WHERE entity_type = 'brands' AND status = 'completed'"
    ).fetchone()[0]  # type: ignore[index]
    assert got["brands.records"] == [(meta["records"], "c")] and meta["records"] > 0
    assert got["brands.requests"] == [(len(by_resource["brands"]), "c")]
    assert got["brands.http_429"] == [(0, "c")] and got["brands.http_5xx"] == [(0, "c")]
    assert got["brands.retries"] == [(0, "c")]
    assert got["brands.completed"] == [(1, "c")] and got["suppliers.failed"] == [(1, "c")]
    assert "suppliers.completed" not in got
    assert [t for _, t in got["brands.duration"]] == ["ms"]
    assert got["brands.duration"][0][0] == pytest.approx(meta["duration_s"] * 1000, abs=5)
    assert got["brands.latency_p95_ms"] == [(meta["latency_p95_ms"], "g")]
    assert got["brands.rows_per_s"] == [(meta["rows_per_s"], "g")]
    assert got["suppliers.requests"] == [(1, "c")]  # the failed sync's counts go out too
