"""Run summaries built from sync_log: used by `finalize`, the demo and the tests."""

from __future__ import annotations

from typing import Any

from lightspeed_pipeline.entities import NAMES
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.reads import ReadModel


def entity_log_rows(warehouse: Warehouse, run_id: str | None) -> dict[str, dict[str, Any]]:
    """The last completed/failed sync_log row of each entity for `run_id`, with the records
    of every attempt of the run (a failed attempt's committed pages count too)."""
    logged = ReadModel(warehouse).run_log(run_id)
    out: dict[str, dict[str, Any]] = {}
    if logged["run_failure"] is not None:
        out["all"] = {"status": "failed", "error": logged["run_failure"]}
    for row in logged["outcomes"]:
        out[row["entity_type"]] = {
            "status": row["status"],
            "duration_s": float(row["duration_seconds"] or 0),
            "records": int(row["records"] or 0),
            "attempts": int(row["attempts"]),
            "error": row["error_details"],
            "meta": row["metadata"] or {},
        }
    for entity, status in logged["states"].items():
        if status == "running" and entity not in out:
            out[entity] = {
                "status": "failed",
                "duration_s": 0.0,
                "records": 0,
                "meta": {},
                "error": "sync did not finish (process killed?)",
            }
    return out


def run_summary(warehouse: Warehouse, *, run_id: str | None, task_states: dict[str, str]) -> dict[str, Any]:
    """Per-entity outcome of a run plus a printable table."""
    logged = entity_log_rows(warehouse, run_id)
    run_failure = logged.get("all", {}).get("error")
    entities: dict[str, dict[str, Any]] = {}
    total = 0
    for name in NAMES:
        row = logged.get(name)
        task_state = task_states.get(name)
        if (row and row["status"] == "failed") or task_state == "failed":
            state = "failed"
        elif task_state == "upstream_failed":
            state = "upstream_failed"
        elif row:
            state = "success"
        else:
            state = task_state or "not_run"
        meta = row["meta"] if row else {}
        info = {
            "state": state,
            "records": row["records"] if row else 0,
            "attempts": row.get("attempts", 1) if row else 0,
            "duration_s": round(row["duration_s"], 3) if row else 0.0,
            "rows_per_s": meta.get("rows_per_s", 0.0),
            "requests": meta.get("requests", 0),
            "pages": meta.get("pages", 0),
            "retries": meta.get("retries", 0),
            "rows_written": meta.get("rows_inserted", 0) + meta.get("rows_updated", 0),
            "last_version": meta.get("last_version"),
            "error": row.get("error") if row else None,
        }
        if state == "upstream_failed":
            info["error"] = f"not run: {run_failure}" if run_failure else "not run: an entity it depends on failed"
        total += info["records"]
        entities[name] = info
    header = (
        f"{'entity':<20} {'state':<16} {'records':>9} {'written':>9} {'seconds':>8} {'rows/s':>9}"
        f" {'requests':>8} {'pages':>6}"
    )
    table = [header, "-" * len(header)]
    for name, i in entities.items():
        table.append(
            f"{name:<20} {i['state']:<16} {i['records']:>9} {i['rows_written']:>9} {i['duration_s']:>8.2f}"
            f" {i['rows_per_s']:>9.0f} {i['requests']:>8} {i['pages']:>6}"
        )
    return {"entities": entities, "records": total, "table": table}
