"""The health page's pieces that need no database: charts, times, links, the rerun form, escaping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.charts import GREEN, GREY, RED, Bar, bar_chart
from lightspeed_pipeline.health import HISTORY_RUNS
from lightspeed_pipeline.ui import Clock, Links, airflow_base, dependants, render_html, render_rerun

NOW = datetime(2026, 12, 2, 20, 0, tzinfo=UTC)


class Tags(HTMLParser):
    """Every start tag with its attributes (also checks the markup parses)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def test_bars_share_fixed_slots_newest_rightmost_and_scale_to_the_peak() -> None:
    svg = bar_chart([Bar(10, "a"), Bar(None, "not run"), Bar(40, "b", RED)], slots=4, width=40, height=22, label="x")
    rects = Tags(svg).find("rect")
    assert [r["x"] for r in rects] == ["10.0", "20.0", "30.0"]  # slot 0 stays empty: 3 bars in 4 slots
    assert [r["fill"] for r in rects] == [GREEN, GREY, RED]
    assert [float(r["height"] or 0) for r in rects] == [5.0, 2.0, 20.0]  # 10/40 of 20 px; not run: a tick
    assert "<title>b</title>" in svg and 'aria-label="x"' in svg
    zero = Tags(bar_chart([Bar(0, "none"), Bar(3, "three")], slots=2, label="z")).find("rect")
    assert zero[0]["height"] == "1.0"  # a zero is a 1 px tick: the run happened
    # More values than slots: the newest are kept.
    assert len(Tags(bar_chart([Bar(i, str(i)) for i in range(50)], slots=30, label="y")).find("rect")) == 30


def test_chart_titles_are_escaped() -> None:
    svg = bar_chart([Bar(1, "<script>alert(1)</script>")], slots=1, label="a & b")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg


def test_times_read_as_local_days_with_the_zone() -> None:
    clock = Clock("Pacific/Auckland", NOW)  # 09:00 on 3 Dec in Auckland (NZDT, +13)
    assert clock.text(NOW - timedelta(hours=2)) == "today 07:00 NZDT"
    assert clock.text(NOW - timedelta(hours=12)) == "yesterday 21:00 NZDT"
    assert clock.text(datetime(2026, 7, 1, tzinfo=UTC)) == "Wed 1 Jul 2026 12:00 NZST"
    assert clock.ago(NOW - timedelta(seconds=30)) == "just now"
    assert clock.ago(NOW - timedelta(minutes=5)) == "5 min ago"
    assert clock.ago(NOW - timedelta(hours=26)) == "26.0 h ago"
    assert clock.ago(NOW - timedelta(days=9)) == "9 days ago"
    assert "never" in clock.html(None)
    assert "datetime='2026-12-02T18:00:00+00:00'" in clock.html(NOW - timedelta(hours=2))


def test_links_keep_the_base_path_and_quote_run_ids() -> None:
    links = Links(airflow_base("/airflow/lightspeed"))
    run_id = "manual__2026-12-02T20:14:50+00:00"
    assert links.task_log(run_id, "customers.sync", 2) == (
        "/airflow/dags/lightspeed_sync/runs/manual__2026-12-02T20%3A14%3A50%2B00%3A00/tasks/customers.sync?try_number=2"
    )
    assert links.rerun("customers") == "/airflow/lightspeed/rerun?entity=customers"
    assert links.trigger_api() == "/airflow/api/v2/dags/lightspeed_sync/dagRuns"
    assert airflow_base("/lightspeed") == "" and airflow_base("") == ""


def test_rerun_ticks_the_entity_and_what_its_failure_left_unrun() -> None:
    # Every entity that hard-depends on customers, directly or through another, and nothing else.
    expected = {e.name for e in reg.ENTITIES if "customers" in e.depends_on}
    grown = True
    while grown:
        more = {e.name for e in reg.ENTITIES if set(e.depends_on) & expected} - expected
        grown = bool(more)
        expected |= more
    assert set(dependants("customers")) == expected and "sales" in expected
    assert dependants("sales") == []  # nothing needs a sale
    tags = Tags(render_rerun("customers"))
    ticked = [a["value"] for a in tags.find("input", name="entities") if "checked" in a]
    assert ticked == [n for n in reg.NAMES if n in {"customers", *expected}]
    assert len(tags.find("input", name="entities")) == len(reg.NAMES)
    unknown = render_rerun("<b>nope</b>")
    assert "Unknown entity &lt;b&gt;nope&lt;/b&gt;" in unknown and " checked" not in unknown


def _snapshot(**over: Any) -> dict[str, Any]:
    run_ok = {"run_id": "r1", "started": NOW - timedelta(hours=25), "ended": NOW - timedelta(hours=24),
              "records": 700, "failed": [], "status": "success", "duration_s": 60.0}  # fmt: skip
    run_bad = {"run_id": "r2", "started": NOW - timedelta(hours=1), "ended": NOW - timedelta(minutes=50),
               "records": 5, "failed": ["customers"], "status": "failed", "duration_s": 9.5}  # fmt: skip
    entity = {
        "entity_type": "customers", "sync_status": "ALERT", "health_reason": "latest sync failed",
        "status": "failed", "last_successful_sync": NOW - timedelta(hours=24), "error_message": "HTTP 403 <x>",
        "warning_message": None, "warning_after_hours": 25, "alert_after_hours": 25, "row_count": 80,
        "orphan_count": 0, "duplicate_count": 1,
        "last_run": {"status": "failed", "run_id": "r2", "try_number": 1, "records": 0, "rows_written": 0,
                     "duration_s": 0.2, "rows_per_s": 0, "requests": 1, "latency_p95_ms": 12.0, "retries": 0,
                     "http_429": 0, "http_5xx": 0},
        "history": [{"status": "completed", "records": 80, "duration_s": 1.0},
                    {"status": "failed", "records": 0, "duration_s": 0.2}],
    }  # fmt: skip
    snap = {
        "overall": "ALERT",
        "entities": [entity],
        "runs": [run_ok, run_bad],
        "last_run": run_bad,
        "recent_failures": [
            {
                "at": NOW - timedelta(minutes=50),
                "entity": "customers",
                "error": "HTTP 403 <x>",
                "run_id": "r2",
                "try_number": 1,
                "action": "incremental_sync",
                "resolved": False,
            },
        ],
        "business": {
            "outlets": [
                {
                    "outlet_id": "o1",
                    "outlet_name": "Oak & Co",
                    "time_zone": "UTC",
                    "today": NOW.date(),
                    "today_sales": 3,
                    "today_revenue": 30.5,
                    "yesterday_sales": 1,
                    "yesterday_revenue": 10,
                }
            ],
            "low_stock_count": 27,
            "new_customers_this_month": 4,
        },
        "time_zone": "UTC",
        "generated_at": NOW,
    }
    snap.update(over)
    return snap


def test_page_shows_the_failure_its_log_link_charts_and_figures() -> None:
    page = render_html(_snapshot(), "")
    tags = Tags(page)
    assert [a["href"] for a in tags.find("a", **{"class": "log-link"})] == [
        "/dags/lightspeed_sync/runs/r2/tasks/customers.sync?try_number=1"
    ] * 2  # in the entity's row and in the failure list
    assert all("data-airflow" in a for a in tags.find("a", **{"class": "log-link"}))
    assert "HTTP 403 &lt;x&gt;" in page and "<x>" not in page
    assert len(tags.find("svg")) == 3 + 2  # runs: records, duration, failures; the entity: records, seconds
    assert "Oak &amp; Co" in page and ">30.50<" in page
    assert re.search(r'data-metric="low_stock">\s*27<', page) and re.search(r'data-metric="new_customers">\s*4<', page)
    assert "older than 25 h" in page
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]?https?:", page)  # nothing from the internet


def test_page_without_any_run_yet() -> None:
    snap = _snapshot(runs=[], last_run=None, recent_failures=[], business=None)
    snap["entities"][0].update(history=[], last_run=None)
    page = render_html(snap, "")
    assert "No run has synced anything yet" in page
    Tags(page)
    assert HISTORY_RUNS == 30
