"""The sync-health page inside the Airflow UI (the seed's Flask status dashboard, as a plugin).

A FastAPI app mounted by the Airflow API server under /lightspeed:
  /lightspeed/health      HTML: business strip, the last runs as charts, per-entity health and
                          last-sync metrics, recent failures linked to their task logs
  /lightspeed/api/health  the same as JSON
  /lightspeed/rerun       a trigger form for `lightspeed_sync` with `entities` filled in
Every route requires an authenticated Airflow user allowed to read the `lightspeed_sync` DAG
(plugin routes are not protected by Airflow automatically). The rerun form starts the run
through Airflow's own REST API from the browser, so Airflow checks the user may trigger it;
Airflow 3.3's trigger dialog cannot be opened pre-filled from a link, hence this form.
Everything is drawn on the server: no script, font or stylesheet is loaded from anywhere.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request  # module level: FastAPI resolves the routes' annotations here

from lightspeed_pipeline import entities as registry
from lightspeed_pipeline.charts import GREEN, RED, Bar, bar_chart
from lightspeed_pipeline.health import HISTORY_RUNS, health_snapshot, jsonable
from lightspeed_pipeline.settings import DAG_ID
from lightspeed_pipeline.taskinfo import run_path, task_log_path

MOUNT = "/lightspeed"
# Airflow 3's state colours: success, failed, upstream_failed/warning.
COLORS = {"OK": GREEN, "WARNING": "#ea580c", "ALERT": RED, "DISABLED": "#a1a1aa"}


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def dependants(name: str) -> list[str]:
    """Entities that hard-depend on `name`, directly or not: a failure of `name` left them unrun."""
    out: list[str] = []
    frontier = {name}
    while frontier:
        frontier = {e.name for e in registry.ENTITIES if set(e.depends_on) & frontier and e.name not in out}
        out.extend(sorted(frontier))
    return [n for n in registry.NAMES if n in out]


class Links:
    """URLs of Airflow's pages, relative to where the API server is mounted (its base_url path)."""

    def __init__(self, ui_base: str) -> None:
        self.base = ui_base.rstrip("/")

    def run(self, run_id: str) -> str:
        return self.base + run_path(DAG_ID, run_id)

    def task_log(self, run_id: str, task_id: str, try_number: int | None = None) -> str:
        return self.base + task_log_path(DAG_ID, run_id, task_id, try_number)

    def rerun(self, entity: str | None = None) -> str:
        url = f"{self.base}{MOUNT}/rerun"
        return f"{url}?entity={quote(entity, safe='')}" if entity else url

    def trigger_api(self) -> str:
        return f"{self.base}/api/v2/dags/{DAG_ID}/dagRuns"


class Clock:
    """Timestamps in the store's zone: 'today 14:05', 'yesterday 09:12', 'Tue 1 Dec 2026 08:00'."""

    def __init__(self, zone: str, now: datetime | None = None) -> None:
        self.zone = ZoneInfo(zone)
        self.zone_name = zone
        self.now = now or datetime.now(UTC)

    def text(self, value: datetime) -> str:
        local = value.astimezone(self.zone)
        days = (self.now.astimezone(self.zone).date() - local.date()).days
        day = {0: "today", 1: "yesterday"}.get(days) or f"{local:%a} {local.day} {local:%b %Y}"
        return f"{day} {local:%H:%M} {local.tzname()}"

    def day(self, value: datetime) -> str:
        local = value.astimezone(self.zone)
        return f"{local.day} {local:%b %Y}"

    def ago(self, value: datetime) -> str:
        seconds = (self.now - value).total_seconds()
        if seconds < 60:
            return "just now"
        if seconds < 3600:
            return f"{seconds / 60:.0f} min ago"
        if seconds < 172800:
            return f"{seconds / 3600:.1f} h ago"
        return f"{seconds / 86400:.0f} days ago"

    def html(self, value: datetime | None, *, ago: bool = True) -> str:
        if value is None:
            return "<span class='muted'>never</span>"
        iso = value.astimezone(UTC).isoformat(timespec="seconds")
        tail = f" <span class='ago muted'>({self.ago(value)})</span>" if ago else ""
        return f"<time datetime='{iso}' title='{iso}'>{esc(self.text(value))}</time>{tail}"


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "<span class='muted'>-</span>"
    number = float(value)
    return f"{number:,.{digits}f}" if digits or number != int(number) else f"{int(number):,}"


def _hours(value: Any) -> str:
    return "?" if value is None else f"{float(value):g}"


def _money(value: Any) -> str:
    return f"{float(value or 0):,.2f}"


def _history_charts(history: list[dict[str, Any] | None], runs: list[dict[str, Any]], name: str) -> str:
    records, durations = [], []
    for point, run in zip(history, runs, strict=True):
        if point is None:
            records.append(Bar(None, f"{run['run_id']}: not run"))
            durations.append(Bar(None, f"{run['run_id']}: not run"))
            continue
        failed = point["status"] == "failed"
        color = RED if failed else GREEN
        note = " (failed)" if failed else ""
        records.append(Bar(point["records"], f"{run['run_id']}: {point['records']:,} records{note}", color))
        durations.append(Bar(point["duration_s"], f"{run['run_id']}: {point['duration_s']:.1f} s{note}", color))
    slots = HISTORY_RUNS
    return bar_chart(
        records, slots=slots, width=120, label=f"{name}: records per run, last {len(runs)} runs"
    ) + bar_chart(durations, slots=slots, width=120, label=f"{name}: seconds per run, last {len(runs)} runs")


def _versions_cell(kept: dict[str, Any] | None, clock: Clock) -> str:
    """History mode of one entity: off, or on with the past versions kept and the oldest's day."""
    if not kept or not kept["enabled"]:
        return "<span class='muted'>off</span>"
    count = kept["versions_rows"]
    since = kept["oldest_at"] or kept["enabled_at"]
    title = f"past versions kept since {clock.text(since)}" if since else "past versions kept"
    parts = ([] if count is None else [f"{count:,} past"]) + ([f"since {clock.day(since)}"] if since else [])
    detail = f"<div class='muted small'>{esc(' · '.join(parts))}</div>" if parts else ""
    return f"<span title='{esc(title)}'>on</span>{detail}"


def _entity_rows(snapshot: dict[str, Any], clock: Clock, links: Links) -> str:
    rows = []
    for e in snapshot["entities"]:
        name = e["entity_type"]
        color = COLORS.get(e["sync_status"], "#71717a")
        last = e.get("last_run") or {}
        failed = last.get("status") == "failed" or e["status"] == "failed"
        actions = [f"<a href='{esc(links.rerun(name))}' class='rerun'>rerun</a>"]
        if last.get("status") == "failed" and last.get("run_id"):
            log = links.task_log(last["run_id"], f"{name}.sync", last.get("try_number"))
            actions.insert(0, f"<a href='{esc(log)}' data-airflow class='log-link'>log</a>")
        error = e["error_message"] if failed else e["warning_message"]
        faults = "/".join(_num(last.get(k)) for k in ("retries", "http_429", "http_5xx")) if last else ""
        rows.append(
            f"<tr data-entity='{esc(name)}' class='{'failed' if failed else ''}'>"
            f"<td class='name'>{esc(name)}</td>"
            f"<td><span class='pill' style='background:{color}'>{esc(e['sync_status'])}</span>"
            f"<div class='why'>{esc(e['health_reason'])}</div></td>"
            f"<td class='when'>{clock.html(e['last_successful_sync'])}</td>"
            f"<td class='num' data-metric='records'>{_num(last.get('records')) if last else ''}</td>"
            f"<td class='num' data-metric='rows_written'>{_num(last.get('rows_written')) if last else ''}</td>"
            f"<td class='num' data-metric='duration_s'>{_num(last.get('duration_s'), 2) if last else ''}</td>"
            f"<td class='num' data-metric='rows_per_s'>{_num(last.get('rows_per_s'), 0) if last else ''}</td>"
            f"<td class='num' data-metric='requests'>{_num(last.get('requests')) if last else ''}</td>"
            f"<td class='num' data-metric='latency_p95_ms'>{_num(last.get('latency_p95_ms'), 0) if last else ''}</td>"
            f"<td class='num' data-metric='faults'>{faults}</td>"
            f"<td class='num' data-metric='row_count'>{_num(e['row_count'])}</td>"
            f"<td class='num' data-metric='findings'>{_num(e['orphan_count'])}/{_num(e['duplicate_count'])}</td>"
            f"<td class='history' data-metric='history'>{_versions_cell(e.get('versions'), clock)}</td>"
            f"<td class='charts'>{_history_charts(e['history'], snapshot['runs'], name)}</td>"
            f"<td class='actions'>{' '.join(actions)}</td>"
            "</tr>"
            + (f"<tr class='err-row'><td></td><td colspan='14' class='err'>{esc(error)}</td></tr>" if error else "")
        )
    return "".join(rows)


def _runs_panel(runs: list[dict[str, Any]], clock: Clock) -> str:
    if not runs:
        return "<p class='muted'>No run has synced anything yet.</p>"
    label = lambda r: f"{r['run_id']} ({clock.text(r['ended'])})"  # noqa: E731
    color = lambda r: RED if r["status"] == "failed" else GREEN  # noqa: E731
    slots = HISTORY_RUNS
    charts = {
        "records": bar_chart(
            [Bar(r["records"], f"{label(r)}: {r['records']:,} records", color(r)) for r in runs],
            slots=slots, width=300, height=64, label="records per run", show_max=True, css_class="chart big",
        ),
        "duration": bar_chart(
            [Bar(r["duration_s"], f"{label(r)}: {r['duration_s']:.1f} s", color(r)) for r in runs],
            slots=slots, width=300, height=64, label="seconds per run", show_max=True, css_class="chart big",
        ),
        "failures": bar_chart(
            [
                Bar(len(r["failed"]), f"{label(r)}: failed: {', '.join(r['failed']) or 'none'}", color(r))
                for r in runs
            ],
            slots=slots, width=300, height=64, label="failed entities per run", show_max=True, css_class="chart big",
        ),
    }  # fmt: skip
    first, last = runs[0], runs[-1]
    span = f"{esc(clock.text(first['ended']))} → {esc(clock.text(last['ended']))}"
    cells = "".join(
        f"<figure data-chart='{key}'>{svg}<figcaption>{key} per run</figcaption></figure>"
        for key, svg in charts.items()
    )
    return f"<div class='runs'>{cells}</div><p class='muted small'>Last {len(runs)} runs, {span}</p>"


def _business_strip(business: dict[str, Any] | None) -> str:
    if not business:
        return ""
    rows = "".join(
        f"<tr data-outlet='{esc(o['outlet_id'])}'><td>{esc(o['outlet_name'] or o['outlet_id'])}</td>"
        f"<td class='num' data-metric='today_sales'>{_num(o['today_sales'])}</td>"
        f"<td class='num'>{_money(o['today_revenue'])}</td>"
        f"<td class='num' data-metric='yesterday_sales'>{_num(o['yesterday_sales'])}</td>"
        f"<td class='num'>{_money(o['yesterday_revenue'])}</td></tr>"
        for o in business["outlets"]
    )
    return f"""<section class="strip">
<div class="card wide"><h3>Sales per outlet <span class="muted small">(completed; each outlet's local day)</span></h3>
<table class="mini"><thead><tr><th>outlet</th><th>today</th><th>revenue</th><th>yesterday</th><th>revenue</th></tr>
</thead><tbody>{rows or "<tr><td colspan='5' class='muted'>no outlets synced yet</td></tr>"}</tbody></table></div>
<div class="card"><h3>Low stock</h3><div class="big-number" data-metric="low_stock">
{business["low_stock_count"]:,}</div><div class="muted small">products at or below reorder point</div></div>
<div class="card"><h3>New customers</h3><div class="big-number" data-metric="new_customers">
{business["new_customers_this_month"]:,}</div><div class="muted small">this month (UTC)</div></div>
{_money_cards(business)}
{_stock_value_card(business)}
</section>"""


def _money_cards(business: dict[str, Any]) -> str:
    """What the store owes on gift cards and store credit, and what it has on order (the views
    gift_card_liability, store_credit_liability and purchase_order_pipeline; API 2026-07 on)."""
    if "gift_card_liability" not in business:
        return ""
    orders = business["open_purchase_orders"]
    overdue = business["overdue_purchase_orders"]
    return f"""<div class="card"><h3>Gift cards owed</h3><div class="big-number" data-metric="gift_card_liability">
{_money(business["gift_card_liability"])}</div><div class="muted small">outstanding balances</div></div>
<div class="card"><h3>Store credit owed</h3><div class="big-number" data-metric="store_credit_liability">
{_money(business["store_credit_liability"])}</div><div class="muted small">outstanding balances</div></div>
<div class="card"><h3>On order</h3><div class="big-number" data-metric="open_purchase_order_value">
{_money(business["open_purchase_order_value"])}</div><div class="muted small">{orders:,} open purchase orders at cost,
{overdue:,} overdue</div></div>"""


def _stock_value_card(business: dict[str, Any]) -> str:
    """The stock's value at the close of each of the last 30 days (inventory_daily, from history
    mode: units on hand x the product's supply price today; summed once a run by `finalize`)."""
    days = business.get("stock_value") or []
    if not days:
        return ""
    bars = [Bar(float(d["value"]), f"{d['day']:%a %d %b}: {_money(d['value'])}") for d in days]
    chart = bar_chart(bars, slots=30, width=240, height=40, label="stock value at the close of each day, last 30 days")
    return f"""<div class="card"><h3>Stock value</h3><div class="big-number" data-metric="stock_value">
{_money(days[-1]["value"])}</div><figure data-chart="stock_value">{chart}</figure>
<div class="muted small">at supply price, each day's close, last {len(days)} day{"s" if len(days) > 1 else ""}</div>
</div>"""


def _failures(snapshot: dict[str, Any], clock: Clock, links: Links) -> str:
    items = []
    for f in snapshot["recent_failures"]:
        entity = f["entity"]
        task = "migrate" if entity == "all" else f"{entity}.sync"
        link = ""
        if f.get("run_id"):
            url = links.task_log(f["run_id"], task, f.get("try_number"))
            try_text = f" (try {f['try_number']})" if f.get("try_number") else ""
            link = f" <a href='{esc(url)}' data-airflow class='log-link'>task log{try_text}</a>"
        rerun = ""
        if entity != "all" and not f["resolved"]:
            rerun = f" · <a href='{esc(links.rerun(entity))}' class='rerun'>rerun {esc(entity)}</a>"
        state = "resolved" if f["resolved"] else "open"
        items.append(
            f"<li class='{state}' data-entity='{esc(entity)}'>{clock.html(f['at'])} <b>{esc(entity)}</b>"
            f"{' <i>(resolved by a later sync)</i>' if f['resolved'] else ''}: <span class='err'>{esc(f['error'])}"
            f"</span>{link}{rerun}</li>"
        )
    return "".join(items) or "<li class='muted'>none</li>"


DARK = "--fg: #f4f4f5; --muted: #a1a1aa; --line: #3f3f46; --head: #27272a; --card: #1f1f23; --err: #f87171;"
# Light or dark as Airflow's own UI is set (its `theme` in localStorage: same origin), else as the
# browser prefers.
THEME_SCRIPT = """<script>
try {
  const theme = localStorage.getItem("theme");
  if (theme === "dark" || theme === "light") document.documentElement.dataset.theme = theme;
} catch (error) {}
</script>"""
STYLE = f"""
:root {{ color-scheme: light dark; --fg: #18181b; --muted: #71717a; --line: #e4e4e7; --head: #f4f4f5;
  --card: #fafafa; --err: #dc2626; }}
@media (prefers-color-scheme: dark) {{ :root:not([data-theme=light]) {{ color-scheme: dark; {DARK} }} }}
:root[data-theme=dark] {{ color-scheme: dark; {DARK} }}
body {{ font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 1rem 1.25rem; color: var(--fg); font-size: 14px; }}
h2 {{ font-size: 1.35rem; font-weight: 600; margin: 0 0 0.25rem; }} h3 {{ font-size: 0.95rem; margin: 0 0 0.4rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid var(--line); padding: 0.3rem 0.5rem; text-align: left; vertical-align: middle; }}
th {{ background: var(--head); font-weight: 600; font-size: 0.8rem; white-space: nowrap; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.name {{ font-weight: 600; }} td.charts, td.when {{ white-space: nowrap; }}
td.when .ago {{ display: block; font-size: 0.75rem; }} td.charts svg {{ margin-right: 6px; }}
tr.err-row td {{ border-bottom: 1px solid var(--line); padding-top: 0; }}
.err {{ color: var(--err); }} .why, .small {{ font-size: 0.75rem; }} .why, .muted {{ color: var(--muted); }}
.pill {{ color: #fff; border-radius: 0.8rem; padding: 0.05rem 0.55rem; font-weight: 600; font-size: 0.8rem; }}
a {{ color: #2563eb; }} a.rerun, a.log-link {{ white-space: nowrap; }}
.strip {{ display: flex; gap: 0.75rem; flex-wrap: wrap; margin: 0.75rem 0; }}
.card {{ background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 0.6rem 0.8rem;
  min-width: 11rem; }} .card.wide {{ flex: 1 1 28rem; }}
.big-number {{ font-size: 1.8rem; font-weight: 600; font-variant-numeric: tabular-nums; }}
table.mini th, table.mini td {{ padding: 0.15rem 0.4rem; font-size: 0.85rem; }}
.runs {{ display: flex; gap: 1.5rem; flex-wrap: wrap; }} figure {{ margin: 0; }}
figcaption {{ font-size: 0.75rem; color: var(--muted); }}
svg.chart {{ display: inline-block; vertical-align: middle; }} svg .axis {{ stroke: var(--line); }}
svg .peak {{ font-size: 8px; fill: var(--muted); }}
ul.failures {{ padding-left: 1.1rem; }} ul.failures li {{ margin: 0.2rem 0; }}
li.resolved, li.resolved .err {{ color: var(--muted); }}
section {{ margin-bottom: 1rem; }}
"""


# Airflow shows this page in a sandboxed iframe that may not navigate the top window: links to
# Airflow's own pages (data-airflow) are opened by the Airflow UI around the frame, through its
# router (history.pushState + popstate). Outside a frame, or if that fails, the link just works.
NAV_SCRIPT = """<script>
function openInAirflow(url) {
  try {
    const app = window.parent;
    if (app === window || !app.history) return false;
    const state = app.history.state || {};
    const key = Math.random().toString(36).slice(2, 10);
    app.history.pushState({usr: null, key, idx: (state.idx ?? 0) + 1}, "", url);
    app.dispatchEvent(new PopStateEvent("popstate", {state: app.history.state}));
    return true;
  } catch (error) {
    return false;
  }
}
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-airflow]");
  if (!link || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
  if (openInAirflow(link.getAttribute("href"))) event.preventDefault();
});
</script>"""


def render_html(snapshot: dict[str, Any], ui_base: str = "") -> str:
    clock = Clock(snapshot.get("time_zone") or "UTC", snapshot.get("generated_at"))
    links = Links(ui_base)
    overall = snapshot["overall"]
    run = snapshot["last_run"]
    if run:
        failed = ", ".join(run["failed"])
        outcome = f"<b class='err'>failed: {esc(failed)}</b>" if run["status"] == "failed" else "<b>success</b>"
        run_line = (
            f"Last run <a href='{esc(links.run(run['run_id']))}' data-airflow>{esc(run['run_id'])}</a>: {outcome},"
            f" {run['records']:,} records in {run['duration_s']:.1f} s, ended {clock.html(run['ended'])}"
        )
    else:
        run_line = "No run has synced anything yet."
    limits = snapshot["entities"][0] if snapshot["entities"] else {}
    n = len(snapshot["runs"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="60">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lightspeed sync health</title><style>{STYLE}</style>{THEME_SCRIPT}</head><body>
<h2>Lightspeed sync health <span class="pill" id="overall" style="background:{COLORS.get(overall, "#71717a")}">
{esc(overall)}</span></h2>
<p>{run_line}. <span class="muted small">Lightspeed API
<span id="api-version">{esc(snapshot.get("api_version") or "?")}</span>.
Times in {esc(clock.zone_name)} (the outlets' zone); this page refreshes every minute.</span></p>
{_business_strip(snapshot.get("business"))}
<section><h3>Runs</h3>{_runs_panel(snapshot["runs"], clock)}</section>
<section><h3>Entities</h3>
<table class="entities"><thead><tr><th>entity</th><th>health</th><th>last success</th>
<th title="records the API returned in the last sync">rows</th><th title="inserted + updated + deleted">written</th>
<th>seconds</th><th>rows/s</th><th>requests</th><th title="95th percentile API latency">p95 ms</th>
<th title="retries / 429 answers / 5xx answers">retry/429/5xx</th><th title="rows in the table">table rows</th>
<th title="orphans / duplicates found by validation">orphans/dup</th>
<th title="history mode: past versions kept, since when (counted at the end of each run)">history</th>
<th>last {n} runs: rows · seconds</th><th></th></tr></thead>
<tbody>{_entity_rows(snapshot, clock, links)}</tbody></table>
<p class="muted small">Bars: green succeeded, red failed, grey not run. ALERT: the latest sync failed, never
succeeded, or its last success is older than {_hours(limits.get("alert_after_hours"))} h. WARNING: last success older
than {_hours(limits.get("warning_after_hours"))} h (the schedule's interval + 1 h), orphans or duplicates found,
rows in no known record shape, or a warning from the last sync. DISABLED: switched off by
LIGHTSPEED_ENTITIES_DISABLED (the store does not grant it), not synced.</p></section>
<section><h3>Recent failures</h3><ul class="failures">{_failures(snapshot, clock, links)}</ul></section>
{NAV_SCRIPT}
</body></html>"""


def render_rerun(entity: str | None, ui_base: str = "") -> str:
    """The trigger form: the entity and what its failure left unrun are ticked."""
    links = Links(ui_base)
    ticked = {entity, *dependants(entity)} if entity in registry.NAMES else set()
    unknown = ""
    if entity and not ticked:
        unknown = f"<p class='err'>Unknown entity {esc(entity)}: tick the ones to rerun.</p>"
    boxes = "".join(
        f"<label><input type='checkbox' name='entities' value='{esc(n)}'{' checked' if n in ticked else ''}>"
        f" {esc(n)}</label>"
        for n in registry.NAMES
    )
    needs = dependants(entity) if entity in registry.NAMES else []
    why = (
        f"<p class='muted small'>Also ticked: {esc(', '.join(needs))}, which need {esc(entity)} and were not run"
        " when it failed.</p>"
        if needs
        else ""
    )
    config = json.dumps({"api": links.trigger_api(), "run": links.run("")})
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rerun entities: {DAG_ID}</title>
{THEME_SCRIPT}<style>{STYLE}
.boxes {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: 0.3rem 1rem;
  margin: 0.5rem 0 1rem; }}
button {{ background: #2563eb; color: #fff; border: 0; border-radius: 6px; padding: 0.45rem 1.1rem;
  font-weight: 600; cursor: pointer; }} input[type=text] {{ width: 28rem; max-width: 100%; }}</style></head><body>
<h2>Trigger {DAG_ID}: rerun entities</h2>
<p><a href="{esc(ui_base.rstrip("/") + MOUNT)}/health">← sync health</a></p>
{unknown}
<form id="rerun" data-config='{esc(config)}'>
<h3>Entities</h3><div class="boxes">{boxes}</div>{why}
<p><label><input type="checkbox" name="full_refresh"> Full refresh
(re-read the ticked entities from version 0)</label></p>
<p><label>Note <input type="text" name="note" placeholder="why this run (shown on the run in Airflow)"></label></p>
<button type="submit">Trigger</button> <span id="status" role="status"></span>
</form>
<script>
document.getElementById("rerun").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const form = event.target, status = document.getElementById("status");
  const config = JSON.parse(form.dataset.config);
  const entities = [...form.querySelectorAll("input[name=entities]:checked")].map((box) => box.value);
  if (!entities.length) {{ status.textContent = "Tick at least one entity."; return; }}
  const body = {{logical_date: null, conf: {{entities, full_refresh: form.full_refresh.checked}},
    note: form.note.value || null}};
  status.textContent = "Triggering…";
  const resp = await fetch(config.api, {{method: "POST", credentials: "same-origin",
    headers: {{"Content-Type": "application/json"}}, body: JSON.stringify(body)}});
  const out = await resp.json().catch(() => ({{}}));
  if (!resp.ok) {{
    status.className = "err";
    status.textContent = `Airflow refused the run (HTTP ${{resp.status}}): ${{JSON.stringify(out.detail ?? out)}}`;
    return;
  }}
  status.dataset.runId = out.dag_run_id;
  status.textContent = `Run ${{out.dag_run_id}} queued; opening it…`;
  const url = config.run + encodeURIComponent(out.dag_run_id);
  if (!openInAirflow(url)) window.location.href = url;
}});
</script>
{NAV_SCRIPT}
</body></html>"""


def _snapshot() -> dict[str, Any]:
    from lightspeed_pipeline.hooks import LightspeedPostgresHook

    with LightspeedPostgresHook().get_warehouse() as warehouse:
        return health_snapshot(warehouse)


def airflow_base(root_path: str) -> str:
    """Where Airflow's UI lives: this app's mount path without /lightspeed (keeps a base_url path)."""
    return root_path[: -len(MOUNT)] if root_path.endswith(MOUNT) else ""


def create_app() -> Any:
    """The FastAPI sub-application; every route requires read access to the DAG."""
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse

    guard = [Depends(requires_access_dag("GET", param_dag_id=DAG_ID))]
    # FastAPI's own /docs, /redoc and /openapi.json are not routes the guard covers: off.
    app = FastAPI(title="Lightspeed sync health", dependencies=guard, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health", response_class=HTMLResponse)
    def health_page(request: Request) -> str:
        return render_html(_snapshot(), airflow_base(request.scope.get("root_path", "")))

    @app.get("/api/health")
    def health_json() -> dict[str, Any]:
        return jsonable(_snapshot())

    @app.get("/rerun", response_class=HTMLResponse)
    def rerun_form(request: Request, entity: str | None = None) -> str:
        return render_rerun(entity, airflow_base(request.scope.get("root_path", "")))

    return app
