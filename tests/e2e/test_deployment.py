"""The deployment's topology, run natively: api-server, scheduler, dag-processor, triggerer.

docker-compose.yaml cannot run here (no Docker daemon), so this runs the same processes with
the same settings (LocalExecutor, metadata on PostgreSQL, the pool created from pools.json as
`airflow-init` does) and drives them through the REST API, as a data team's tooling would.
It checks what only a real scheduler shows: the scheduled run, a failed entity failing only
itself and what needs it, the health JSON behind the login, clearing a group, the one-entity
run the `entities` param starts (the other groups skipped without a worker), and what a no-op
run starts. It asserts behaviour only; the timings it sees are printed in pytest's summary
(the timelines with -s) and written to `$LIGHTSPEED_E2E_REPORT` when set, while the timing
targets (a no-op run, one entity vs clearing its group) are measured by `make bench`
(bench/scheduler.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lightspeed_pipeline import entities as reg

from devtools.airflow_stack import AirflowStack
from devtools.simproc import SimulatorProcess
from tests.conftest import E2E_REPORT, TOKEN
from tests.e2e.conftest import CLEARED_WITH_CUSTOMERS, sync_env
from tests.integration.helpers import assert_database_equals_source, sync_state

DAG_ID = "lightspeed_sync"
API = reg.NEWEST  # LIGHTSPEED_API_VERSION unset: a new database is filled through the newest API version


# A downstream DAG, as a data team would write one: scheduled on the sales table's Asset.
DOWNSTREAM_ID = "lightspeed_downstream_sales"
DOWNSTREAM = f"""
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from lightspeed_pipeline.assets import entity_asset

with DAG("{DOWNSTREAM_ID}", schedule=[entity_asset("sales")], start_date=datetime(2024, 1, 1), catchup=False):
    EmptyOperator(task_id="refresh_report")
"""


@pytest.fixture
def stack(pg_dsn: str, schema: str) -> Iterator[tuple[AirflowStack, SimulatorProcess]]:
    with SimulatorProcess(token=TOKEN) as sim:
        env = sync_env(sim, pg_dsn, schema, api_version=None)  # a new database: the newest API version
        with AirflowStack(pg_dsn, env, extra_dags={"downstream_sales.py": DOWNSTREAM}) as st:
            yield st, sim


def _states(st: AirflowStack, run_id: str) -> dict[str, str]:
    return {task_id: str(ti["state"]) for task_id, ti in st.task_instances(DAG_ID, run_id).items()}


def _timeline(st: AirflowStack, run_id: str) -> str:
    """When each task was queued, started and ended, in seconds from the run's queued_at."""
    from datetime import datetime

    def at(value: str | None) -> float:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else float("nan")

    run = st.run(DAG_ID, run_id)
    zero = at(run["queued_at"])
    lines = [f"{run_id}: running at {at(run['start_date']) - zero:.2f} s, ended at {at(run['end_date']) - zero:.2f} s"]
    tis = sorted(st.task_instances(DAG_ID, run_id).values(), key=lambda ti: at(ti["start_date"]))
    for ti in tis:
        if ti["start_date"]:
            lines.append(
                f"  {ti['task_id']:28} queued {at(ti['queued_when']) - zero:6.2f}"
                f"  start {at(ti['start_date']) - zero:6.2f}  end {at(ti['end_date']) - zero:6.2f}  {ti['state']}"
            )
    return "\n".join(lines)


def _ran_in_a_worker(ti: dict[str, Any]) -> bool:
    """A task instance some worker process ran (the scheduler completes EmptyOperators and
    applies skips itself: those have no process, host or queued time)."""
    return ti["pid"] is not None or bool(ti["hostname"]) or ti["queued_when"] is not None


def _timed_run(st: AirflowStack, start: Any) -> tuple[str, dict[str, Any], float]:
    """Start a run (trigger or clear) and wait for it; seconds from the request to the end."""
    began = time.monotonic()
    run_id = start()
    run = st.wait_run(DAG_ID, run_id)
    return run_id, run, time.monotonic() - began


def test_the_deployment_under_a_real_scheduler(
    stack: tuple[AirflowStack, SimulatorProcess], db: Any, schema: str, request: pytest.FixtureRequest
) -> None:
    st, sim = stack
    report: dict[str, Any] = {}
    st.wait_for_dag(DAG_ID)
    st.wait_for_dag(DOWNSTREAM_ID)
    st.unpause(DOWNSTREAM_ID)

    # The plugin's routes need a login; the health JSON answers a logged-in user.
    for path in ("/lightspeed/api/health", "/lightspeed/health"):
        assert st.api("GET", path, auth=False).status_code == 401, path
    for path in ("/lightspeed/docs", "/lightspeed/openapi.json"):
        assert st.api("GET", path, auth=False).status_code in (401, 403, 404), path

    # Unpausing starts the scheduler's own run at once (catchup off: the latest interval).
    st.unpause(DAG_ID)
    runs = st._wait(lambda: st.runs(DAG_ID), 60, "the scheduled run")
    assert runs[0]["run_type"] == "scheduled"
    first = st.wait_run(DAG_ID, runs[0]["dag_run_id"])
    assert first["state"] == "success", _states(st, first["dag_run_id"])
    assert_database_equals_source(db, schema, sim.state(API), api_version=API)
    assert db.execute(f'SELECT api_version FROM "{schema}".sync_store').fetchone() == (API,)
    assert {r["api_version"] for r in sim.stats()["requests"]} == {API}
    # The sales table changed (its historical import): the downstream DAG runs once.
    downstream = st._wait(lambda: st.runs(DOWNSTREAM_ID), 60, "the Asset-triggered downstream run")
    assert len(downstream) == 1 and downstream[0]["run_type"] == "asset_triggered"

    # One entity fails for good (403): it fails alone with what needs it; the rest completes.
    sim.mutate(seed=5, update={"customers": 3, "products": 2, "brands": 1}, new={"sales": 4})
    sim.faults(resources={"customers": "403"})
    failed_id, failed_run, _ = _timed_run(st, lambda: st.trigger(DAG_ID))
    states = _states(st, failed_id)
    assert failed_run["state"] == "failed"
    assert states["customers.sync"] == "failed"
    assert states["sales.sync"] == "upstream_failed"  # a sale needs its customer
    for e in reg.ENTITIES:
        if e.name not in ("customers", "sales"):
            assert states[f"{e.name}.sync"] == "success", (e.name, states)
    assert states["finalize"] == "failed"
    assert sync_state(db, schema)["customers"][0] == "failed"

    health = st.api("GET", "/lightspeed/api/health", auth=False)
    assert health.status_code == 401
    body = st.call("GET", "/lightspeed/api/health")
    by_entity = {e["entity_type"]: e for e in body["entities"]}
    assert body["overall"] == "ALERT" and by_entity["customers"]["sync_status"] == "ALERT"
    assert body["api_version"] == API
    assert by_entity["products"]["sync_status"] == "OK"

    # The data team fixes the cause and clears the failed group with its downstream.
    sim.faults()
    customer_tasks = [t for t in _states(st, failed_id) if t.startswith("customers.")]
    cleared_ids: list[str] = []

    def clear() -> str:
        cleared_ids.extend(st.clear(DAG_ID, failed_id, customer_tasks))
        return failed_id

    _, cleared_run, clear_s = _timed_run(st, clear)
    assert set(cleared_ids) == CLEARED_WITH_CUSTOMERS
    assert cleared_run["state"] == "success", _states(st, failed_id)
    assert_database_equals_source(db, schema, sim.state(API), api_version=API)
    assert st.call("GET", "/lightspeed/api/health")["overall"] == "OK"
    report["clear_customers_group_s"] = round(clear_s, 2)

    # The same entity through the `entities` param: the other groups are skipped without a
    # worker for any of them; the run starts one sync task.
    sim.mutate(seed=6, update={"customers": 2})
    one_id, one_run, one_s = _timed_run(st, lambda: st.trigger(DAG_ID, {"entities": ["customers"]}))
    states = _states(st, one_id)
    assert one_run["state"] == "success", states
    assert states["migrate"] == states["customers.sync"] == states["finalize"] == "success"
    skipped = {t for t, s in states.items() if s == "skipped"}
    assert skipped == {f"{e.name}.sync" for e in reg.ENTITIES if e.name != "customers"}, states
    tis = st.task_instances(DAG_ID, one_id)
    assert not [t for t in skipped if _ran_in_a_worker(tis[t])], {t: tis[t] for t in skipped}
    assert {t for t, ti in tis.items() if _ran_in_a_worker(ti)} == {"migrate", "customers.sync", "finalize"}
    assert_database_equals_source(db, schema, sim.state(API), only=("customers",), api_version=API)
    report["one_entity_run_s"] = round(one_s, 2)

    # The fixed cost of a run: nothing changed, one or two requests per entity, 0 rows.
    noop_s = []
    for _ in range(3):  # the best of three: a run's fixed cost, not a neighbour's load
        noop_id, noop_run, seconds = _timed_run(st, lambda: st.trigger(DAG_ID))
        assert noop_run["state"] == "success", _states(st, noop_id)
        noop_s.append(seconds)
    tis = st.task_instances(DAG_ID, noop_id).values()
    workers = [ti for ti in tis if ti["operator"] != "EmptyOperator"]
    # One worker task per entity, plus migrate and finalize; the `finished` gates take none.
    assert {ti["task_id"] for ti in tis if _ran_in_a_worker(ti)} == {ti["task_id"] for ti in workers}
    assert len(workers) == len(reg.ENTITIES) + 2
    report["noop_run_s"] = [round(s, 2) for s in noop_s]
    report["noop_worker_tasks"] = len(workers)
    report["noop_task_s_mean"] = round(sum(float(ti["duration"] or 0) for ti in workers) / len(workers), 3)
    assert_database_equals_source(db, schema, sim.state(API), api_version=API)

    request.config.stash.setdefault(E2E_REPORT, {}).update(report)  # printed in pytest's summary (tests/conftest.py)

    # Only the cleared run changed sales again (4 new sales): one more downstream run; the
    # failed run (sales not run), the one-entity run and the no-op runs emitted no event.
    def two_runs() -> list[dict[str, Any]] | None:
        runs = st.runs(DOWNSTREAM_ID)
        return runs if len(runs) >= 2 else None

    downstream = st._wait(two_runs, 60, "the second downstream run")
    assert [r["run_type"] for r in downstream] == ["asset_triggered"] * 2, downstream
    events = st.call("GET", "/api/v2/assets/events", params={"source_dag_id": DAG_ID})["asset_events"]
    sales_events = sorted(e["source_run_id"] for e in events if e["uri"].endswith("/lightspeed_sales"))
    assert sales_events == sorted([first["dag_run_id"], failed_id]), events
    print(f"\ne2e timings: {json.dumps(report)}")
    for run_id in (failed_id, one_id, noop_id):
        print(_timeline(st, run_id))
    if os.environ.get("LIGHTSPEED_E2E_REPORT"):
        with open(os.environ["LIGHTSPEED_E2E_REPORT"], "w") as fh:
            json.dump(report, fh, indent=2)
