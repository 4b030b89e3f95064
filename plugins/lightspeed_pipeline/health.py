"""What the health page shows, read from the target database in one read-only transaction.

Per entity: its `sync_health` row, the latest validation, the metrics of its last sync (the
keys of `metrics.METRICS` in `sync_log.metadata`) and its outcome in each of the last runs;
per run: records, duration and failed entities; the recent failures with the run and try
that link them to their log in Airflow; and a business strip from the views (today's and
yesterday's sales per outlet in each outlet's local day, low-stock count, new customers this
month). The rows come from the read model (`warehouse/reads.py`); this module shapes them.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.reads import ReadModel

HISTORY_RUNS = 30
# The newest sync_log rows the run history is read from: 30 runs of 14 entities write about
# 1 300 (a started and an outcome row each, plus the run summary); retries add a few.
HISTORY_SCAN_ROWS = 6000
LAST_RUN_KEYS = (
    "records",
    "rows_inserted",
    "rows_updated",
    "rows_deleted",
    "duration_s",
    "rows_per_s",
    "requests",
    "latency_p95_ms",
    "retries",
    "http_429",
    "http_5xx",
    "rejected",
)


def _number(value: Any) -> float | int | None:
    """A metric from JSON metadata as a number (None when absent or not numeric)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def health_snapshot(warehouse: Warehouse, *, history: int = HISTORY_RUNS) -> dict[str, Any]:
    """Everything the page shows; JSON-ready after `jsonable`."""
    rows = ReadModel(warehouse).health(scan_rows=HISTORY_SCAN_ROWS)
    entities, outcomes, failures = rows["entities"], rows["outcomes"], rows["failures"]
    outcomes.sort(key=lambda o: o["id"])  # oldest first: later rows win below
    runs = _runs(outcomes, rows["summaries"], history)
    by_run = {(o["run_id"], o["entity_type"]): o for o in outcomes}
    latest = {o["entity_type"]: o for o in outcomes}
    for e in entities:
        name = e["entity_type"]
        e["last_run"] = _last_run(latest.get(name))
        e["history"] = [_point(by_run.get((r["run_id"], name))) for r in runs]
        e["versions"] = rows["history"].get(name)  # history mode: on or off, versions kept, since when
    for f in failures:
        f["try_number"] = int(f["try_number"]) if str(f["try_number"] or "").isdigit() else None
    outlets = rows["outlets"]
    zone_name = _business_zone(outlets)
    for outlet in outlets:
        del outlet["stored_zone"]
    business = {
        "outlets": outlets,
        "low_stock_count": rows["low_stock_count"],
        "new_customers_this_month": rows["new_customers_this_month"],
        **rows["money"],
        "stock_value": rows["stock_value"],  # [{day, value}]: the last 30 days, oldest first
    }
    return {
        "overall": overall(entities),
        "entities": entities,
        "runs": runs,
        "last_run": runs[-1] if runs else None,
        "recent_failures": failures,
        "business": business,
        "api_version": rows["api_version"],  # the Lightspeed API version the database is filled with
        "time_zone": zone_name,
        "generated_at": datetime.now(UTC),
    }


def _last_run(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """An entity's last sync: its outcome, when, and the metrics the page shows."""
    if row is None:
        return None
    meta = row["metadata"] or {}
    out: dict[str, Any] = {
        "status": row["status"],
        "at": row["timestamp"],
        "run_id": row["run_id"],
        "try_number": _number(meta.get("try_number")),
        "error": row["error_details"],
    }
    for key in LAST_RUN_KEYS:
        out[key] = _number(meta.get(key))
    if out["duration_s"] is None and row["duration_seconds"] is not None:
        out["duration_s"] = float(row["duration_seconds"])
    if out["records"] is None:
        out["records"] = int(row["records_processed"] or 0)
    out["rows_written"] = sum(int(out[k] or 0) for k in ("rows_inserted", "rows_updated", "rows_deleted"))
    return out


def _point(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """One entity in one run, for the small charts (None: the entity did not run)."""
    if row is None:
        return None
    meta = row["metadata"] or {}
    duration = _number(meta.get("duration_s"))
    if duration is None:
        duration = float(row["duration_seconds"] or 0)
    return {"status": row["status"], "records": int(row["records_processed"] or 0), "duration_s": float(duration)}


def _runs(outcomes: list[dict[str, Any]], summaries: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The last `limit` runs, oldest first: records, duration and failed entities of each
    (`outcomes` in sync_log order)."""
    runs: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        r = runs.setdefault(
            o["run_id"],
            {"run_id": o["run_id"], "started": o["timestamp"], "ended": o["timestamp"], "records": 0, "failed": []},
        )
        r["last_id"] = o["id"]
        r["ended"] = max(r["ended"], o["timestamp"])
        r["records"] += int(o["records_processed"] or 0)
        duration = _number((o["metadata"] or {}).get("duration_s")) or 0.0
        r["started"] = min(r["started"], o["timestamp"] - timedelta(seconds=float(duration)))
        if o["status"] == "failed":
            r["failed"].append(o["entity_type"])
    for s in summaries:
        r = runs.get(s["run_id"])
        if r is None:
            continue
        r["summary_status"] = s["status"]
        r["ended"] = max(r["ended"], s["timestamp"])
        if s["status"] == "failed" and not r["failed"] and s["error_details"]:
            r["error"] = s["error_details"]
    ordered = sorted(runs.values(), key=lambda r: r["last_id"])[-limit:]
    for r in ordered:
        r.pop("last_id", None)
        r["duration_s"] = round((r["ended"] - r["started"]).total_seconds(), 3)
        r["failed"] = sorted(r["failed"])
        r["status"] = "failed" if r["failed"] or r.get("summary_status") == "failed" else "success"
        r.pop("summary_status", None)
    return ordered


def _business_zone(outlets: list[dict[str, Any]]) -> str:
    """The zone the page shows times in: the most common known zone of the live outlets (ties by
    name), else UTC. An outlet whose stored zone PostgreSQL does not know counts for none."""
    counts = Counter(o["time_zone"] for o in outlets if o["stored_zone"] == o["time_zone"])
    if not counts:
        return "UTC"
    name = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def overall(entities: list[dict[str, Any]]) -> str:
    """The worst entity's health (ALERT when there is none: nothing was ever set up)."""
    levels = [e["sync_status"] for e in entities]
    for level in ("ALERT", "WARNING"):
        if level in levels:
            return level
    return "OK" if levels else "ALERT"


def jsonable(value: Any) -> Any:
    """Dates as ISO strings and decimals as floats, recursively."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool)):
        return float(value) if hasattr(value, "as_integer_ratio") else str(value)
    return value
