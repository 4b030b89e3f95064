"""Take the README's screenshot of the health page: a real stack, real runs, Debian's Chromium.

    .venv/bin/python -m devtools.screenshot [--runs 12] [--out docs/img/health-page.png]

Starts a throwaway PostgreSQL (or uses LIGHTSPEED_TEST_DSN), the simulator and the Airflow
processes, runs the sync several times with changes in between (one run with products
answering 500, retried then failed, fixed by the next run; the last run with customers
refused, 403), then logs in and saves the page as it appears inside the Airflow UI.
"""

from __future__ import annotations

import argparse
import os
import uuid
from contextlib import ExitStack
from pathlib import Path

from devtools.airflow_stack import ROOT, AirflowStack
from devtools.browser import Chromium, airflow_login
from devtools.simproc import SimulatorProcess
from tests.conftest import TOKEN
from tests.e2e.conftest import sync_env

DAG_ID = "lightspeed_sync"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12, help="runs before the screenshot (default 12)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "health-page.png")
    args = parser.parse_args()
    schema = f"screenshot_{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        dsn = os.environ.get("LIGHTSPEED_TEST_DSN")
        if not dsn:
            from devtools.pg import ThrowawayPostgres

            dsn = stack.enter_context(ThrowawayPostgres()).dsn
        assert dsn
        sim = stack.enter_context(SimulatorProcess(token=TOKEN, scale="outlets=3,registers=6,customers=300,sales=900"))
        st = stack.enter_context(AirflowStack(dsn, {**sync_env(sim, dsn, schema), "LIGHTSPEED_PAGE_SIZE": "200"}))
        st.wait_for_dag(DAG_ID)
        st.unpause(DAG_ID)
        first = st._wait(lambda: st.runs(DAG_ID), 60, "the scheduled run")[0]["dag_run_id"]
        print("import:", st.wait_run(DAG_ID, first)["state"], flush=True)
        for n in range(1, args.runs):
            sim.mutate(seed=n, update={"customers": 4 + n % 5, "products": 3 + n % 4, "brands": n % 2},
                       new={"sales": 10 + 7 * (n % 4), "customers": 2 + n % 3})  # fmt: skip
            last = n == args.runs - 1
            if n == args.runs // 2:
                sim.faults(resources={"products": "500"})
            elif last:
                sim.faults(resources={"customers": "403"})
            else:
                sim.faults()
            run_id = st.trigger(DAG_ID)
            print(f"run {n}:", st.wait_run(DAG_ID, run_id)["state"], flush=True)
        with Chromium(width=1440, height=1000) as browser:
            airflow_login(browser, st.url, st.user, st.password)
            browser.open(f"{st.url}/plugin/lightspeed-sync-health")
            browser.wait_for("document.querySelector('table.entities tr[data-entity]')", frame="iframe")
            print("saved", browser.screenshot(args.out))
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
