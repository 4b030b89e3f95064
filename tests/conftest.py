"""Shared test setup: Airflow environment, a real PostgreSQL, the simulator over HTTP.

Airflow reads its configuration once, at first import, so the environment is set
here at module import time, before any test module imports Airflow.
"""

from __future__ import annotations

import json
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

ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="lightspeed-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# Fast retries in tests: the DAG reads these when it is built.
os.environ["LIGHTSPEED_RETRY_DELAY_S"] = "1"
os.environ.setdefault("LIGHTSPEED_TASK_RETRIES", "1")

TOKEN = "lsxs_pt_test-token-0123456789"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


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
    """A pooler-safe psycopg connection to the test database."""
    from lightspeed_pipeline.db import connect

    conn = connect(pg_dsn)
    yield conn
    conn.close()


@pytest.fixture
def settings(schema: str) -> Any:
    from lightspeed_pipeline.db import DbSettings

    return DbSettings(schema=schema)


@pytest.fixture
def migrated(db: Any, settings: Any) -> Any:
    from lightspeed_pipeline.db import apply_migrations

    apply_migrations(db, settings)
    return db


class SimulatorProcess:
    """`python -m simulator` in a subprocess, plus helpers for its control endpoints."""

    def __init__(self, *, scale: str = "test", seed: int = 42, max_page_size: int = 200, extra: list[str] | None = None):
        cmd = [
            sys.executable, "-m", "simulator", "--port", "0", "--seed", str(seed), "--scale", scale,
            "--token", TOKEN, "--max-page-size", str(max_page_size), *(extra or []),
        ]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator did not start (exit code {self.proc.poll()})")
        self.url: str = json.loads(line)["url"]
        import requests

        self.http = requests.Session()

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return self.http.get(f"{self.url}/__sim/state", timeout=30).json()["resources"]

    def stats(self) -> dict[str, Any]:
        return self.http.get(f"{self.url}/__sim/stats", timeout=30).json()

    def reset_stats(self) -> None:
        self.http.post(f"{self.url}/__sim/stats/reset", timeout=30).raise_for_status()

    def faults(self, **config: Any) -> None:
        self.http.post(f"{self.url}/__sim/faults", json=config, timeout=30).raise_for_status()

    def mutate(self, **spec: Any) -> dict[str, Any]:
        resp = self.http.post(f"{self.url}/__sim/mutate", json=spec, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def simulator() -> Iterator[SimulatorProcess]:
    sim = SimulatorProcess()
    yield sim
    sim.stop()


def api_connection(url: str, **extra: Any) -> str:
    """AIRFLOW_CONN_LIGHTSPEED_API value for the simulator (JSON form)."""
    opts = {"page_size": 50, "backoff_initial": 0.05, "backoff_max": 0.5, "max_retries": 8}
    opts.update(extra)
    return json.dumps({"conn_type": "http", "host": url, "password": TOKEN, "extra": opts})


@pytest.fixture
def connections(simulator: SimulatorProcess, pg_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the two Airflow connections at the simulator and the test database."""
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", api_connection(simulator.url))
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pg_dsn)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's own metadata database (SQLite), migrated once per session."""
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True,
                   capture_output=True, env=os.environ.copy())
