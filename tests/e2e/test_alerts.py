"""Alerts under the real scheduler (api-server, scheduler, dag-processor, triggerer; LocalExecutor).

A local HTTP receiver stands for the Slack/Teams webhook (`lightspeed_alerts` connection). One
stack shows, at once:
- a permanently failing entity (the simulator answers 403 for customers): exactly one
  `entity_failed` message, for customers, with its error and log link; none for sales, which
  the failure blocked (upstream_failed), none from `finalize`;
- a run the scheduler never started (its DAG is paused) missing its deadline: the scheduler
  sees the deadline pass, the triggerer sends exactly one `deadline_missed` message. That DAG is
  `lightspeed_sync_late`, the same DAG built with a 3-second deadline, deployed beside the real
  one (whose deadline, LIGHTSPEED_RUN_DEADLINE_MIN=2880 after its logical date, none of its runs
  misses);
- then the rerun a data team does: fix the cause, clear the failed group (with a deadline on
  the DAG: a queued-at deadline made this fail on Airflow 3.3.2, apache/airflow#70368), with
  brands' last success set 30 h back: one `stale` message, for brands, none for the fresh ones;
  and in the next run, with brands still stale and taxes newly so, one for taxes only (at most
  one a day per entity).
No message carries the API token, the database password or the webhook's secret path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.airflow_stack import ROOT, AirflowStack
from devtools.simproc import SimulatorProcess
from tests.conftest import TOKEN
from tests.e2e.conftest import CLEARED_WITH_CUSTOMERS
from tests.unit.test_alerts import WebhookReceiver

DAG_ID = "lightspeed_sync"
LATE_DAG_ID = "lightspeed_sync_late"
HOOK_SECRET = "e2e-webhook-secret-path-0123456789"
# (An Airflow DAG file: Airflow's safe mode only parses files that mention "airflow" and "dag".)
LATE_DAG = f'''"""The sync DAG with a 3-second run deadline, never unpaused: Airflow never starts its runs."""

from lightspeed_pipeline.factory import build_dag

dag = build_dag("{LATE_DAG_ID}", run_deadline_min=0.05)
'''


@pytest.fixture
def stack(
    pg_dsn: str, schema: str, api_version: str
) -> Iterator[tuple[AirflowStack, SimulatorProcess, WebhookReceiver]]:
    receiver = WebhookReceiver()
    try:
        with SimulatorProcess(token=TOKEN) as sim:
            env = {
                "AIRFLOW_CONN_LIGHTSPEED_API": json.dumps(
                    {"conn_type": "http", "host": sim.url, "password": sim.token}
                ),
                "AIRFLOW_CONN_LIGHTSPEED_POSTGRES": pg_dsn,
                "AIRFLOW_CONN_LIGHTSPEED_ALERTS": json.dumps(
                    {"conn_type": "http", "host": f"{receiver.url}/services/T000/B000/{HOOK_SECRET}"}
                ),
                # After the logical date (today 00:00 for the scheduled run): 48 h, never missed here.
                "LIGHTSPEED_RUN_DEADLINE_MIN": "2880",
                "LIGHTSPEED_SCHEMA": schema,
                "LIGHTSPEED_PAGE_SIZE": "50",
                "LIGHTSPEED_BACKOFF_INITIAL": "0.05",
                "LIGHTSPEED_TASK_RETRIES": "1",
                "LIGHTSPEED_RETRY_DELAY_S": "1",
                "LIGHTSPEED_API_VERSION": api_version,  # each test runs once per supported version
            }
            st = AirflowStack(pg_dsn, env)
            # The project's DAG file and the late one, in a DAG folder of this stack's own.
            dags = Path(st.home) / "alert-dags"
            dags.mkdir()
            for path in (ROOT / "dags").glob("*.py"):
                (dags / path.name).symlink_to(path)
            (dags / f"{LATE_DAG_ID}.py").write_text(LATE_DAG)
            st.env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
            with st:
                yield st, sim, receiver
    finally:
        receiver.close()


def wait_for(receiver: WebhookReceiver, what: Any, timeout: float, st: AirflowStack) -> list[dict[str, Any]]:
    """Poll until `what(bodies)` holds. A duplicate would come later: the final checks, made after
    every later stage (tens of seconds on), count every message."""
    deadline = time.monotonic() + timeout
    while not what(receiver.bodies):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"messages so far: {json.dumps(receiver.bodies, indent=1)}\n"
                f"triggerer:\n{st.logs('triggerer', 30)}\nscheduler:\n{st.logs('scheduler', 30)}"
            )
        time.sleep(0.2)
    return receiver.bodies


def stale_alerts_recorded(db: Any, schema: str, run_id: str, count: int, timeout: float = 30) -> None:
    """Wait until finalize's stale notifier recorded `count` alerts of `run_id` in sync_log: it
    records them after it sent every message of that run, so none can follow."""
    deadline = time.monotonic() + timeout
    query = (
        f'SELECT count(*) FROM "{schema}".sync_log'
        " WHERE action = 'alert' AND status = 'stale' AND metadata->>'run_id' = %s"
    )
    while db.execute(query, (run_id,)).fetchone()[0] < count:
        assert time.monotonic() < deadline, f"{count} stale alerts of {run_id} not recorded in {timeout} s"
        time.sleep(0.2)


def of(bodies: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [b for b in bodies if b["kind"] == kind]


def secrets(pg_dsn: str) -> list[str]:
    import psycopg

    password = psycopg.conninfo.conninfo_to_dict(pg_dsn).get("password")
    return [TOKEN, HOOK_SECRET, *([str(password)] if password else [])]


def test_alerts_under_the_real_scheduler(
    stack: tuple[AirflowStack, SimulatorProcess, WebhookReceiver], db: Any, schema: str, pg_dsn: str
) -> None:
    st, sim, receiver = stack
    st.wait_for_dag(DAG_ID)
    st.wait_for_dag(LATE_DAG_ID)

    # A run of a paused DAG: queued, never started; its deadline is 3 s after its logical date.
    now = datetime.now(UTC).isoformat()
    late_run = st.call("POST", f"/api/v2/dags/{LATE_DAG_ID}/dagRuns", json={"logical_date": now})["dag_run_id"]

    # Customers fail for good; unpausing starts the scheduled run at once.
    sim.faults(resources={"customers": "403"})
    st.unpause(DAG_ID)
    runs = st._wait(lambda: st.runs(DAG_ID), 60, "the scheduled run")
    failed_id = runs[0]["dag_run_id"]
    failed = st.wait_run(DAG_ID, failed_id)
    states = {t: ti["state"] for t, ti in st.task_instances(DAG_ID, failed_id).items()}
    assert failed["state"] == "failed"
    assert (states["customers.sync"], states["sales.sync"], states["finalize"]) == (
        "failed",
        "upstream_failed",
        "failed",
    )

    bodies = wait_for(receiver, lambda b: of(b, "entity_failed") and of(b, "deadline_missed"), 60, st)
    assert st.run(LATE_DAG_ID, late_run)["state"] == "queued"  # the scheduler never started it

    (entity_failed,) = of(bodies, "entity_failed")  # one: none for sales, none from finalize
    assert entity_failed["entity"] == "customers" and entity_failed["task_id"] == "customers.sync"
    assert (entity_failed["dag_id"], entity_failed["run_id"]) == (DAG_ID, failed_id)
    assert "HTTP 403" in entity_failed["error"] and "customers" in entity_failed["error"]
    assert "\n" not in entity_failed["error"] and len(entity_failed["error"]) <= 300
    log_url = entity_failed["log_url"]
    assert log_url.startswith(f"{st.url}/dags/{DAG_ID}/runs/") and "/tasks/customers.sync" in log_url
    assert requests.get(log_url, timeout=10).status_code == 200  # the Airflow UI answers it
    assert entity_failed["error"] in entity_failed["text"] and log_url in entity_failed["text"]

    (late,) = of(bodies, "deadline_missed")
    assert (late["dag_id"], late["run_id"], late["entity"]) == (LATE_DAG_ID, late_run, None)
    assert "not finished within 0.05 min of its logical date" in late["error"] and "never started" in late["error"]
    assert late["log_url"].startswith(f"{st.url}/dags/{LATE_DAG_ID}/runs/")
    assert not of(bodies, "stale")  # the failed and the blocked entity are the failure's alert

    # The fix and the rerun: clear the customers group with what follows it; brands now stale.
    sim.faults()
    db.execute(
        f"UPDATE \"{schema}\".sync_state SET last_sync_time = now() - interval '30 hours' WHERE entity_type = 'brands'"
    )
    assert set(st.clear(DAG_ID, failed_id, ["customers.sync"])) == CLEARED_WITH_CUSTOMERS
    assert st.wait_run(DAG_ID, failed_id)["state"] == "success"
    stale_alerts_recorded(db, schema, failed_id, 1)
    bodies = wait_for(receiver, lambda b: of(b, "stale"), 30, st)
    (stale,) = of(bodies, "stale")
    assert (stale["entity"], stale["run_id"]) == ("brands", failed_id)
    assert stale["error"].startswith("no successful sync for 30.0 h (last success ")
    assert "/tasks/finalize" in stale["log_url"]
    alerted = db.execute(
        f'SELECT count(*) FROM "{schema}".sync_log'
        " WHERE action = 'alert' AND status = 'stale' AND entity_type = 'brands'"
    ).fetchone()[0]
    assert alerted == 1

    # The next run (customers only), brands still stale and now taxes too: a message for taxes,
    # none again for brands within 24 h (an hourly schedule would otherwise repeat it hourly).
    db.execute(
        f"UPDATE \"{schema}\".sync_state SET last_sync_time = now() - interval '30 hours'"
        " WHERE entity_type IN ('brands', 'taxes')"
    )
    next_id = st.trigger(DAG_ID, {"entities": ["customers"]})
    assert st.wait_run(DAG_ID, next_id)["state"] == "success"
    stale_alerts_recorded(db, schema, next_id, 1)
    bodies = wait_for(receiver, lambda b: len(of(b, "stale")) >= 2, 30, st)
    assert [(b["entity"], b["run_id"]) for b in of(bodies, "stale")] == [("brands", failed_id), ("taxes", next_id)]

    assert len(of(bodies, "entity_failed")) == 1 and len(of(bodies, "deadline_missed")) == 1
    for post in receiver.posts:
        for secret in secrets(pg_dsn):
            assert secret not in post["raw"], (secret, post["raw"])
        assert post["path"] == f"/services/T000/B000/{HOOK_SECRET}"
