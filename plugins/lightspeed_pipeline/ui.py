"""The sync-health page inside the Airflow UI (the seed's Flask status dashboard, as a plugin).

A FastAPI app mounted by the Airflow API server under /lightspeed:
  /lightspeed/health      HTML: per-entity health, last run, validation, recent failures
  /lightspeed/api/health  the same as JSON
Both require an authenticated Airflow user allowed to read the `lightspeed_sync` DAG
(plugin routes are not protected by Airflow automatically).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from lightspeed_pipeline.db import begin

if TYPE_CHECKING:
    from lightspeed_pipeline.store import Store

DAG_ID = "lightspeed_sync"
COLORS = {"OK": "#1e8e3e", "WARNING": "#e37400", "ALERT": "#d93025"}


def health_snapshot(store: Store) -> dict[str, Any]:
    """Everything the page shows, from the target database."""
    from psycopg import sql

    t = lambda name: sql.Identifier(store.schema, name)  # noqa: E731
    with store.conn.transaction():
        begin(store.conn, store.settings)
        cur = store.conn.execute(
            sql.SQL(
                "SELECT h.entity_type, h.sync_status, h.health_reason, h.status, h.last_successful_sync,"
                " h.last_sync_timestamp, h.last_version, h.error_message, h.warning_message, h.hours_since_success,"
                " h.warning_after_hours, h.alert_after_hours, v.row_count, v.deleted_count, v.orphan_count,"
                " v.duplicate_count"
                " FROM {health} h LEFT JOIN LATERAL (SELECT * FROM {val} v WHERE v.entity_type = h.entity_type"
                " ORDER BY v.id DESC LIMIT 1) v ON true ORDER BY h.entity_type"
            ).format(health=t("sync_health"), val=t("sync_validation"))
        )
        names = [d.name for d in cur.description or []]
        entities = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        run = store.conn.execute(
            sql.SQL(
                "SELECT timestamp, status, duration_seconds, records_processed, error_details, metadata->>'run_id'"
                " FROM {log} WHERE action = 'run_summary' ORDER BY id DESC LIMIT 1"
            ).format(log=t("sync_log"))
        ).fetchone()
        # A failure is resolved once a later sync of the same entity completed.
        failures = store.conn.execute(
            sql.SQL(
                "SELECT f.timestamp, f.entity_type, f.error_details, EXISTS (SELECT 1 FROM {log} c"
                " WHERE c.id > f.id AND c.status = 'completed' AND (c.entity_type = f.entity_type"
                " OR (f.entity_type = 'all' AND c.action IN ('historical_import', 'incremental_sync'))))"
                " FROM {log} f WHERE f.status = 'failed' AND f.action <> 'run_summary' ORDER BY f.id DESC LIMIT 10"
            ).format(log=t("sync_log"))
        ).fetchall()
    last_run = None
    if run is not None:
        last_run = dict(zip(("finished", "status", "duration_s", "records", "error", "run_id"), run, strict=True))
    return {
        "entities": entities,
        "last_run": last_run,
        "recent_failures": [dict(zip(("at", "entity", "error", "resolved"), f, strict=True)) for f in failures],
        "overall": _overall(entities),
    }


def _overall(entities: list[dict[str, Any]]) -> str:
    levels = [e["sync_status"] for e in entities]
    for level in ("ALERT", "WARNING"):
        if level in levels:
            return level
    return "OK" if levels else "ALERT"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool)):
        return float(value) if hasattr(value, "as_integer_ratio") else str(value)
    return value


def render_html(snapshot: dict[str, Any]) -> str:
    esc = lambda v: html.escape("" if v is None else str(v))  # noqa: E731
    rows = []
    for e in snapshot["entities"]:
        color = COLORS.get(e["sync_status"], "#5f6368")
        rows.append(
            "<tr>"
            f"<td>{esc(e['entity_type'])}</td>"
            f"<td><span class='pill' style='background:{color}'>{esc(e['sync_status'])}</span>"
            f"<div class='why'>{esc(e['health_reason'])}</div></td>"
            f"<td>{esc(e['status'])}</td><td>{esc(e['last_successful_sync'])}</td>"
            f"<td class='num'>{esc(e['hours_since_success'])}</td><td class='num'>{esc(e['last_version'])}</td>"
            f"<td class='num'>{esc(e['row_count'])}</td><td class='num'>{esc(e['deleted_count'])}</td>"
            f"<td class='num'>{esc(e['orphan_count'])}</td><td class='num'>{esc(e['duplicate_count'])}</td>"
            f"<td class='err'>{esc(e['error_message'] or e['warning_message'])}</td>"
            "</tr>"
        )
    run = snapshot["last_run"]
    run_line = (
        f"Last run <b>{esc(run['run_id'])}</b>: {esc(run['status'])}, {esc(run['records'])} records,"
        f" finished {esc(run['finished'])}" + (f" &mdash; {esc(run['error'])}" if run["error"] else "")
        if run
        else "No run has finished yet."
    )
    failures = "".join(
        f"<li class='{'resolved' if f['resolved'] else 'open'}'>{esc(f['at'])} <b>{esc(f['entity'])}</b>"
        f"{' <i>(resolved by a later sync)</i>' if f['resolved'] else ''}: {esc(f['error'])}</li>"
        for f in snapshot["recent_failures"]
    )
    overall = snapshot["overall"]
    limits = snapshot["entities"][0] if snapshot["entities"] else {}
    warn_h, alert_h = limits.get("warning_after_hours"), limits.get("alert_after_hours")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="60">
<title>Lightspeed sync health</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #202124; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
th, td {{ border-bottom: 1px solid #e0e0e0; padding: 0.35rem 0.6rem; text-align: left; }}
th {{ background: #f8f9fa; }} td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.err {{ color: #d93025; max-width: 28rem; }} .why {{ font-size: 0.75rem; color: #5f6368; }}
li.resolved {{ color: #5f6368; }}
.pill {{ color: #fff; border-radius: 0.8rem; padding: 0.1rem 0.6rem; font-weight: 600; }}
</style></head><body>
<h2>Lightspeed sync health <span class="pill" style="background:{COLORS.get(overall, "#5f6368")}">{overall}</span></h2>
<p>{run_line}</p>
<p>ALERT: the latest sync failed, never succeeded, or its last success is older than {esc(alert_h)} h.
WARNING: last success older than {esc(warn_h)} h (the schedule's interval + 1 h), orphans or duplicates found,
or a warning from the last sync. OK otherwise.</p>
<table><thead><tr><th>entity</th><th>health</th><th>status</th><th>last successful sync</th>
<th>hours ago</th><th>cursor (version)</th><th>rows</th><th>deleted</th><th>orphans</th><th>duplicates</th>
<th>last error</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h3>Recent failures</h3><ul>{failures or "<li>none</li>"}</ul>
</body></html>"""


def _snapshot() -> dict[str, Any]:
    from lightspeed_pipeline.hooks import LightspeedPostgresHook

    store = LightspeedPostgresHook().get_store()
    try:
        return health_snapshot(store)
    finally:
        store.conn.close()


def create_app() -> Any:
    """The FastAPI sub-application; every route requires read access to the DAG."""
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse

    guard = [Depends(requires_access_dag("GET", param_dag_id=DAG_ID))]
    # FastAPI's own /docs, /redoc and /openapi.json are not routes the guard covers: off.
    app = FastAPI(title="Lightspeed sync health", dependencies=guard, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health", response_class=HTMLResponse)
    def health_page() -> str:
        return render_html(_snapshot())

    @app.get("/api/health")
    def health_json() -> dict[str, Any]:
        return _jsonable(_snapshot())

    return app
