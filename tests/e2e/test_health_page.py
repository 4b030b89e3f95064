"""The health page in a real browser, inside a running Airflow UI, after a run with one failed entity.

Debian's headless Chromium (`make test` installs it when it can; otherwise this test is
skipped and says why) logs in through Airflow's own login form and opens the page from the
UI's navigation (an iframe in Airflow's plugin view), as a data team member would. It checks
what a person reads there against the database: the failure and its error, the link to the
failed try's task log (followed: Airflow's log view shows the error), the charts of the last
runs, the per-entity figures and the business strip. Then it reruns the failed entity from the
page's rerun form (Airflow's REST API, the user's session) and sees the page turn OK.
Screenshots go to $LIGHTSPEED_SCREENSHOT_DIR/api-<version> (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from lightspeed_pipeline import entities as reg

from devtools.airflow_stack import AirflowStack
from devtools.browser import Chromium, airflow_login, find_chromium
from devtools.simproc import SimulatorProcess
from tests.conftest import E2E_REPORT, TOKEN, require_system
from tests.e2e.conftest import sync_env
from tests.integration.helpers import assert_database_equals_source

DAG_ID = "lightspeed_sync"
FRAME = "iframe"  # the plugin view's iframe in Airflow's UI
PLUGIN_PAGE = "/plugin/lightspeed-sync-health"


@pytest.fixture
def chromium() -> str:
    path = find_chromium()
    require_system(
        "Chromium (for the browser test of the health page)",
        bool(path),
        "install Debian's (`apt-get install chromium`; `make test` does it when run as root with apt)"
        " or set LIGHTSPEED_CHROMIUM",
    )
    assert path
    return path


DISABLED = "suppliers"  # switched off by LIGHTSPEED_ENTITIES_DISABLED in this deployment


@pytest.fixture
def stack(pg_dsn: str, schema: str, api_version: str) -> Iterator[tuple[AirflowStack, SimulatorProcess]]:
    with SimulatorProcess(token=TOKEN) as sim:
        env = {
            **sync_env(sim, pg_dsn, schema, api_version),
            "LIGHTSPEED_PAGE_SIZE": "200",  # fewer pages: a faster import
            "LIGHTSPEED_ENTITIES_DISABLED": DISABLED,  # a list the store does not grant
        }
        with AirflowStack(pg_dsn, env) as st:
            yield st, sim


def _run(st: AirflowStack, conf: dict[str, Any] | None = None) -> tuple[str, str]:
    run_id = st.trigger(DAG_ID, conf)
    return run_id, st.wait_run(DAG_ID, run_id)["state"]


def _last_sync_rows(db: Any, schema: str) -> dict[str, dict[str, Any]]:
    """Each entity's last completed/failed sync_log row: what the page's figures must show."""
    rows = db.execute(
        f"SELECT DISTINCT ON (entity_type) entity_type, metadata FROM {schema}.sync_log"
        " WHERE action IN ('historical_import', 'incremental_sync') AND status IN ('completed', 'failed')"
        " ORDER BY entity_type, id DESC"
    ).fetchall()
    return {name: meta for name, meta in rows}


def _cells(browser: Chromium, metric: str) -> dict[str, str]:
    """entity -> the text of its `data-metric` cell in the entities table."""
    return browser.evaluate(
        "Object.fromEntries([...document.querySelectorAll('table.entities tr[data-entity]')].map("
        f"r => [r.dataset.entity, r.querySelector('[data-metric={metric}]').textContent.trim()]))",
        frame=FRAME,
    )


def _open_health(browser: Chromium, st: AirflowStack) -> None:
    browser.open(f"{st.url}{PLUGIN_PAGE}")
    browser.wait_for("document.querySelector('table.entities tr[data-entity]')", frame=FRAME, what="the health table")


def test_health_page_in_a_browser_after_a_failed_entity(
    chromium: str,
    stack: tuple[AirflowStack, SimulatorProcess],
    db: Any,
    schema: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    api_version: str,
) -> None:
    st, sim = stack
    shots = Path(os.environ.get("LIGHTSPEED_SCREENSHOT_DIR") or tmp_path) / f"api-{api_version}"
    shots.mkdir(parents=True, exist_ok=True)
    st.wait_for_dag(DAG_ID)
    st.unpause(DAG_ID)
    # History for the charts: the scheduled run unpausing starts (the import), then a run with
    # changes in which customers fails for good.
    scheduled = st._wait(lambda: st.runs(DAG_ID), 60, "the scheduled run")[0]["dag_run_id"]
    assert st.wait_run(DAG_ID, scheduled)["state"] == "success"
    sim.mutate(seed=5, update={"customers": 3, "products": 2, "brands": 1}, new={"sales": 4})
    sim.faults(resources={"customers": "403"})
    failed_id, state = _run(st)
    assert state == "failed"
    tis = st.task_instances(DAG_ID, failed_id)
    # A 403 is permanent: the task fails at once, without a retry (try 1).
    assert tis["customers.sync"]["state"] == "failed" and tis["customers.sync"]["try_number"] == 1
    # The disabled list is skipped by the scheduler; products, which needs it, still runs.
    assert tis[f"{DISABLED}.sync"]["state"] == "skipped" and tis["products.sync"]["state"] == "success"

    with Chromium(chromium) as browser:
        airflow_login(browser, st.url, st.user, st.password)
        _open_health(browser, st)
        page_shot = browser.screenshot(shots / "health-page.png")
        browser.open(f"{st.url}/lightspeed/health")
        full_shot = browser.screenshot(shots / "health-page-full.png", full_page=True)
        _open_health(browser, st)

        # The failure: overall ALERT, customers ALERT with its error, in the table and the list.
        assert browser.evaluate("document.getElementById('overall').textContent.trim()", frame=FRAME) == "ALERT"
        row = "document.querySelector('tr[data-entity=customers]')"
        assert browser.evaluate(f"{row}.querySelector('.pill').textContent", frame=FRAME) == "ALERT"
        assert "HTTP 403" in browser.evaluate(f"{row}.nextElementSibling.textContent", frame=FRAME)
        # Times read as the outlets' local day and time, with the zone; the UTC instant is in the tooltip.
        when = browser.evaluate(f"{row}.querySelector('td.when time').textContent", frame=FRAME)
        assert re.fullmatch(r"(today|yesterday) \d\d:\d\d [A-Z][A-Za-z0-9+-]+", when), when
        assert (
            browser.evaluate("document.querySelector('tr[data-entity=products] .pill').textContent", frame=FRAME)
            == "OK"
        )
        disabled_row = f"document.querySelector('tr[data-entity={DISABLED}]')"
        assert browser.evaluate(f"{disabled_row}.querySelector('.pill').textContent", frame=FRAME) == "DISABLED"
        assert "LIGHTSPEED_ENTITIES_DISABLED" in browser.evaluate(f"{disabled_row}.textContent", frame=FRAME)
        failures = browser.evaluate(
            "[...document.querySelectorAll('ul.failures li')].map(li => ({entity: li.dataset.entity,"
            " cls: li.className, text: li.textContent, log: li.querySelector('a.log-link')?.getAttribute('href')}))",
            frame=FRAME,
        )
        open_failures = [f for f in failures if f["cls"] == "open"]
        assert [f["entity"] for f in open_failures] == ["customers"], failures
        assert "HTTP 403" in open_failures[0]["text"]
        log_base = f"/dags/{DAG_ID}/runs/{quote(failed_id, safe='')}/tasks/customers.sync"
        assert open_failures[0]["log"] == f"{log_base}?try_number=1"

        # The charts: 3 run charts, 2 per entity; one bar per run so far, the failed one red.
        assert browser.evaluate("document.querySelectorAll('.runs [data-chart] svg.chart').length", frame=FRAME) == 3
        per_entity = "document.querySelectorAll('table.entities td.charts svg.chart').length"
        assert browser.evaluate(per_entity, frame=FRAME) == 2 * len(reg.NAMES)
        bars = browser.evaluate(
            "[...document.querySelectorAll('tr[data-entity=customers] svg.chart')[0].querySelectorAll('rect')]"
            ".map(r => r.getAttribute('fill'))",
            frame=FRAME,
        )
        assert bars == ["#16a34a", "#dc2626"], bars
        failed_bars = browser.evaluate(
            "[...document.querySelectorAll('[data-chart=failures] rect')].map(r => Number(r.dataset.value))",
            frame=FRAME,
        )
        assert failed_bars == [0, 1]

        # The figures equal what the sync recorded in sync_log and what the tables hold.
        logged = _last_sync_rows(db, schema)
        for metric in ("records", "requests"):
            unlisted = {DISABLED, *reg.unavailable(api_version)}  # DISABLED rows: never synced here
            shown = {name: text for name, text in _cells(browser, metric).items() if name not in unlisted}
            expected = {name: f"{int(meta[metric]):,}" for name, meta in logged.items()}
            assert shown == expected, (metric, shown, expected)
        products = db.execute(f"SELECT count(*) FROM {schema}.lightspeed_products").fetchone()[0]
        assert _cells(browser, "row_count")["products"] == f"{products:,}"
        low_stock = db.execute(f"SELECT count(*) FROM {schema}.low_stock_products").fetchone()[0]
        shown_low = browser.evaluate(
            "document.querySelector('[data-metric=low_stock]').textContent.trim()", frame=FRAME
        )
        assert shown_low == f"{low_stock:,}" and low_stock > 0
        # The money cards equal the liability and pipeline views (2.0 lists none of it: zeros).
        for metric, query in (
            (
                "gift_card_liability",
                f"SELECT coalesce(sum(current_balance_total), 0) FROM {schema}.gift_card_liability",
            ),
            (
                "store_credit_liability",
                f"SELECT coalesce(sum(current_balance_total), 0) FROM {schema}.store_credit_liability",
            ),
            (
                "open_purchase_order_value",
                f"SELECT coalesce(sum(cost_outstanding), 0) FROM {schema}.purchase_order_pipeline",
            ),
        ):
            value = db.execute(query).fetchone()[0]
            shown = browser.evaluate(
                f"document.querySelector('[data-metric={metric}]').textContent.trim()", frame=FRAME
            )
            assert shown == f"{float(value):,.2f}", (metric, shown, value)
            assert (value > 0) is (api_version != "2.0"), (metric, value)
        # The stock value card: the last day of inventory_daily at supply price; history mode per entity.
        stock_value = db.execute(
            f"SELECT coalesce(sum(d.closing_level * p.supply_price) FILTER (WHERE d.closing_level > 0), 0)"
            f" FROM {schema}.inventory_daily d LEFT JOIN {schema}.lightspeed_products p ON p.id = d.product_id"
            f" GROUP BY d.day ORDER BY d.day DESC LIMIT 1"
        ).fetchone()[0]
        shown = browser.evaluate("document.querySelector('[data-metric=stock_value]').textContent.trim()", frame=FRAME)
        assert shown == f"{float(stock_value):,.2f}" and stock_value > 0
        kept = _cells(browser, "history")
        assert kept["inventory"].startswith("on") and kept["brands"] == "off", kept
        outlets = db.execute(f"SELECT count(*) FROM {schema}.lightspeed_outlets WHERE deleted_at IS NULL").fetchone()[0]
        assert browser.evaluate("document.querySelectorAll('.strip tr[data-outlet]').length", frame=FRAME) == outlets

        # Following the log link opens Airflow's log view of the failed try around the page, with the error.
        browser.click("ul.failures li.open a.log-link", frame=FRAME)
        browser.wait_for(f"location.pathname === {log_base!r}", what="Airflow's task page")
        browser.wait_for("document.body.innerText.includes('HTTP 403')", what="the error in the task log", timeout=60)
        log_shot = browser.screenshot(shots / "task-log.png")

        # Rerun from the page: the form ticks customers and sales (left unrun by the failure).
        sim.faults()
        _open_health(browser, st)
        browser.click("tr[data-entity=customers] a.rerun", frame=FRAME)
        browser.wait_for("document.querySelector('form#rerun')", frame=FRAME, what="the rerun form")
        ticked = browser.evaluate(
            "[...document.querySelectorAll('input[name=entities]:checked')].map(b => b.value)", frame=FRAME
        )
        assert ticked == ["customers", "sales"], ticked
        before = {r["dag_run_id"] for r in st.runs(DAG_ID)}
        browser.click("form#rerun button[type=submit]", frame=FRAME)
        path = browser.wait_for(
            f"location.pathname.startsWith('/dags/{DAG_ID}/runs/') && location.pathname", what="the new run's page"
        )
        rerun_id = unquote(path.rsplit("/", 1)[1])
        assert rerun_id not in before
        rerun = st.wait_run(DAG_ID, rerun_id)
        assert rerun["state"] == "success" and rerun["conf"] == {
            "entities": ["customers", "sales"],
            "full_refresh": False,
        }
        synced = tuple(name for name in reg.NAMES if name != DISABLED)
        assert_database_equals_source(db, schema, sim.state(api_version), only=synced, api_version=api_version)
        _open_health(browser, st)
        assert browser.evaluate("document.getElementById('overall').textContent.trim()", frame=FRAME) == "OK"
        assert browser.evaluate("document.querySelectorAll('ul.failures li.open').length", frame=FRAME) == 0

    report = request.config.stash.setdefault(E2E_REPORT, {})
    report.setdefault("health_page_screenshots", []).extend(str(p) for p in (page_shot, full_shot, log_shot))
