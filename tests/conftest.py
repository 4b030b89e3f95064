"""Shared test setup: Airflow environment, a real PostgreSQL, the simulator over HTTP.

Airflow reads its configuration once, at first import, so the environment is set
here at module import time, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightspeed_pipeline.entities import NEWEST, V2

from devtools.simproc import SimulatorProcess

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lightspeed-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = uuid.uuid4().hex * 2  # 64 characters: no short-key warning
# Fast retries in tests: the DAG reads these when it is built.
os.environ["LIGHTSPEED_RETRY_DELAY_S"] = "1"
os.environ.setdefault("LIGHTSPEED_TASK_RETRIES", "1")
# The suite's API version where a test does not choose one (a new database would otherwise use the
# newest, 2026-07): the tests about API versions set or unset it themselves.
os.environ.setdefault("LIGHTSPEED_API_VERSION", "2.0")

TOKEN = "lsxs_pt_test-token-0123456789"
API_VERSIONS = (V2, NEWEST)  # the API versions the tests prove


E2E_REPORT = pytest.StashKey[dict[str, Any]]()
_SHARED_PG = pytest.StashKey[Any]()


def require_system(what: str, found: bool, how: str) -> None:
    """A test that needs a system package (Chromium, PgBouncer): skipped, saying how to install
    it, where the package is missing; with CI set (CI=true, as CI runs), a failure instead, so a
    green CI never hides a test that did not run."""
    if found:
        return
    message = f"{what} is not installed: {how}"
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message} (CI is set: a missing system package fails the test instead of skipping it)")
    pytest.skip(message)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`-n`), the controller starts one throwaway PostgreSQL for every worker
    (LIGHTSPEED_TEST_DSN, which the workers inherit) instead of one per worker."""
    distributed = getattr(config.option, "numprocesses", None) not in (None, 0, "0")
    if _is_xdist_worker(config) or not distributed or os.environ.get("LIGHTSPEED_TEST_DSN"):
        return
    from devtools.pg import ThrowawayPostgres

    pg = ThrowawayPostgres()
    os.environ["LIGHTSPEED_TEST_DSN"] = pg.start()
    config.stash[_SHARED_PG] = pg


def pytest_unconfigure(config: pytest.Config) -> None:
    pg = config.stash.get(_SHARED_PG, None)
    if pg is not None:
        pg.stop()
        os.environ.pop("LIGHTSPEED_TEST_DSN", None)


# The end-to-end tests (whole Airflow deployments, which mostly wait on the scheduler) in two
# groups of about the same length, one per worker (`--dist loadgroup`), beside the others.
E2E_GROUPS = {"test_deployment.py": "e2e-1", "test_alerts.py": "e2e-1", "test_health_page.py": "e2e-2"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.replace("\\", "/").split("::")[0]
        if path.startswith("tests/e2e/"):
            item.add_marker(pytest.mark.xdist_group(E2E_GROUPS.get(path.rsplit("/", 1)[1], "e2e-1")))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The end-to-end test's timings, in every `make test` log (CI's included)."""
    report = config.stash.get(E2E_REPORT, None)
    if report:
        terminalreporter.write_sep("-", "end-to-end timings under the real scheduler (seconds)")
        for key, value in report.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL server: LIGHTSPEED_TEST_DSN if set, else a throwaway cluster."""
    dsn = os.environ.get("LIGHTSPEED_TEST_DSN")
    if dsn:
        yield dsn
        return
    from devtools.pg import ThrowawayPostgres

    with ThrowawayPostgres() as pg:
        assert pg.dsn is not None
        yield pg.dsn


@pytest.fixture
def schema(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty schema per test (LIGHTSPEED_SCHEMA points at it)."""
    import psycopg

    name = f"lstest_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("LIGHTSPEED_SCHEMA", name)
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def db(pg_dsn: str, schema: str) -> Iterator[Any]:
    """A pooler-safe psycopg connection to the test database (for the tests' own queries)."""
    from lightspeed_pipeline.warehouse import connect

    conn = connect(pg_dsn)
    yield conn
    conn.close()


@pytest.fixture
def settings(schema: str) -> Any:
    from lightspeed_pipeline.warehouse import DbSettings

    return DbSettings(schema=schema)


@pytest.fixture
def warehouse(pg_dsn: str, settings: Any) -> Iterator[Any]:
    """The sync's way into the test database (its own connection; siblings on demand)."""
    from lightspeed_pipeline.warehouse import Warehouse

    with Warehouse.open(pg_dsn, settings) as wh:
        yield wh


@pytest.fixture
def migrated(db: Any, warehouse: Any) -> Any:
    """The test database migrated; returns the tests' own connection (`db`)."""
    from lightspeed_pipeline.warehouse.migrations import apply_migrations

    apply_migrations(warehouse)
    return db


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess(token=TOKEN)
    yield sim
    sim.stop()


@pytest.fixture(params=API_VERSIONS)
def api_version(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each API version the project supports, set as LIGHTSPEED_API_VERSION: a test taking this
    fixture runs once per version."""
    monkeypatch.setenv("LIGHTSPEED_API_VERSION", request.param)
    return request.param


FAST_RETRIES = {"page_size": 50, "backoff_initial": 0.05, "backoff_max": 0.5, "max_retries": 8}


@pytest.fixture
def connections(simulator: SimulatorProcess, pg_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the two Airflow connections at the simulator and the test database."""
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", simulator.airflow_connection(**FAST_RETRIES))
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pg_dsn)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's own metadata database (SQLite), migrated once per session."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
