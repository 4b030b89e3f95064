"""DAG integrity: it loads, has the promised shape, and its group order is the registry's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lightspeed_pipeline import entities as reg

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["lightspeed_sync"]


def test_dag_folder_imports_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}
    assert list(dagbag.dags) == ["lightspeed_sync"]


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("LIGHTSPEED_TASK_RETRIES", "two", "must be a number, got 'two'"),
        ("LIGHTSPEED_SYNC_TIMEOUT_H", "0", "must be at least 0.01, got '0'"),
        ("LIGHTSPEED_RUN_DEADLINE_MIN", "soon", "must be a number, got 'soon'"),
    ],
)
def test_a_bad_parse_time_setting_is_the_dags_import_error(
    name: str, raw: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read when the DAG file is parsed: the DAG does not import, and the message (what Airflow
    shows as the import error) names the variable and what it accepts."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv(name, raw)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.dags == {}
    (error,) = bag.import_errors.values()
    assert f"SettingError: environment variable {name} {says}" in error


def test_dag_settings(dag) -> None:
    assert "lightspeed" in dag.tags
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.schedule == "@daily"
    assert dag.params["full_refresh"] is False
    assert dag.params["entities"] == list(reg.NAMES)
    specs = {k: v.schema for k, v in dag.params.items()}
    assert specs["full_refresh"]["type"] == "boolean"
    assert specs["entities"]["items"]["enum"] == list(reg.NAMES)
    assert dag.params["switch_store"] is None  # a switch is never the default


def test_every_task_has_owner_and_retries(dag) -> None:
    for task in dag.tasks:
        assert task.owner == "data-team"
        # finalize too: it writes to the database (a dropped connection is worth a retry); a
        # failed entity fails it with AirflowFailException, which is not retried.
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff


SOFT_UPSTREAMS = {d for e in reg.ENTITIES for d in e.soft_depends_on}


def test_one_group_per_entity_with_one_worker_task(dag) -> None:
    """Only migrate, one sync per entity and finalize start a worker: a no-op run under the
    scheduler costs about half a CPU-second per such task. The `finished` gates are
    EmptyOperators, which the scheduler completes itself."""
    from airflow.providers.standard.operators.empty import EmptyOperator

    ids = {t.task_id for t in dag.tasks}
    assert ids == {"migrate", "finalize"} | {f"{n}.sync" for n in reg.NAMES} | {f"{n}.finished" for n in SOFT_UPSTREAMS}
    workers = [t.task_id for t in dag.tasks if not isinstance(t, EmptyOperator)]
    assert len(workers) == len(reg.NAMES) + 2
    for name in reg.NAMES:
        sync = dag.get_task(f"{name}.sync")
        assert sync.pool == "lightspeed_api"
        assert sync.trigger_rule == "none_failed"
        assert sync.max_active_tis_per_dag == 1  # a second run's sync waits in the scheduler, not in a pool slot
        assert [o.name for o in sync.outlets] == [f"lightspeed.{name}.changes"]  # the table's Asset, via an alias
    for name in SOFT_UPSTREAMS:
        gate = dag.get_task(f"{name}.finished")
        assert isinstance(gate, EmptyOperator) and not gate.outlets and not gate.on_success_callback
        assert gate.trigger_rule == "all_done"  # after a failed sync too
        assert gate.upstream_task_ids == {f"{name}.sync"}


def test_group_wiring_equals_the_registry_graph(dag) -> None:
    """Hard dependencies wait for the upstream sync (and fail with it); soft ones for its
    `finished` gate, done after a failed sync too, so a failed reference list blocks nothing."""
    for e in reg.ENTITIES:
        expected = {"migrate"} | {f"{d}.sync" for d in e.depends_on} | {f"{d}.finished" for d in e.soft_depends_on}
        assert dag.get_task(f"{e.name}.sync").upstream_task_ids == expected, e.name
    order = [t.task_id.split(".")[0] for t in dag.topological_sort() if t.task_id.endswith(".sync")]
    position = {n: i for i, n in enumerate(order)}
    for e in reg.ENTITIES:
        assert all(position[d] < position[e.name] for d in e.after_all)


def test_hard_and_soft_dependencies_are_the_documented_ones() -> None:
    hard = {e.name: set(e.depends_on) for e in reg.ENTITIES if e.depends_on}
    assert hard == {
        "registers": {"outlets"},
        "inventory": {"products", "outlets"},
        "sales": {"outlets", "registers", "customers", "products"},
        "consignment_products": {"consignments"},
        "purchase_order_line_items": {"purchase_orders"},
        "purchase_order_deliveries": {"purchase_orders"},
        "purchase_order_delivery_line_items": {"purchase_order_deliveries"},
    }
    soft = {e.name: set(e.soft_depends_on) for e in reg.ENTITIES if e.soft_depends_on}
    assert soft == {
        "products": {"brands", "suppliers", "product_types", "product_categories", "taxes"},
        "customers": {"customer_groups"},
        "sales": {"users", "taxes", "payment_types"},
        "price_book_products": {"price_books", "products", "taxes"},
        "consignments": {"outlets", "suppliers"},
        "consignment_products": {"products"},
        "gift_cards": {"sales", "users"},
        "store_credits": {"customers", "sales", "users"},
        "purchase_orders": {"suppliers", "outlets", "users"},
        "purchase_order_line_items": {"products"},
        "purchase_order_delivery_line_items": {"purchase_order_line_items", "products"},
    }


def test_finalize_runs_after_everything_whatever_happened(dag) -> None:
    finalize = dag.get_task("finalize")
    assert finalize.trigger_rule == "all_done"
    leaves = {f"{n}.finished" if n in SOFT_UPSTREAMS else f"{n}.sync" for n in reg.NAMES}
    assert finalize.upstream_task_ids == leaves
    assert dag.leaves == [finalize]


def test_dag_import_loads_no_http_or_database_library() -> None:
    code = (
        "import sys; sys.path.insert(0, 'plugins'); import runpy; runpy.run_path('dags/lightspeed_sync.py');"
        "print(sorted(m for m in ('psycopg', 'requests', 'lightspeed_pipeline.api.client',"
        " 'lightspeed_pipeline.warehouse.connection', 'lightspeed_pipeline.warehouse.pages')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
