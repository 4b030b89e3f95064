"""The two connections in their recommended forms work for Airflow's stock hooks AND for the sync
(real PostgreSQL, the simulator over HTTP); the deprecated forms still work for the sync."""

from __future__ import annotations

import json
import logging
from typing import Any

import psycopg
import pytest
from lightspeed_pipeline import connections, settings
from lightspeed_pipeline import entities as reg
from lightspeed_pipeline.api.paginators import VersionPaginator
from lightspeed_pipeline.hooks import LightspeedHook, LightspeedPostgresHook
from lightspeed_pipeline.warehouse.migrations import apply_migrations

from tests.conftest import TOKEN
from tests.integration.helpers import assert_database_equals_source, run_dag, sync_state

CLIENT = {"client_id": "ls-client-7", "client_secret": "ls-secret-7-0123456789abcdef", "refresh_token": "lsxs_rt_7"}
# Every libpq extra docs/configuration.md documents for `lightspeed_postgres`.
LIBPQ_EXTRA = {
    "options": "-c statement_timeout=60000",
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "application_name": "lightspeed_conn_test",
    "connect_timeout": 10,
    "target_session_attrs": "any",
}


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in settings.SETTINGS:
        if setting.extra_of:
            monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setattr(connections, "_warned", (None, set()))


def postgres_connection(pg_dsn: str, extra: dict[str, Any]) -> str:
    """AIRFLOW_CONN_LIGHTSPEED_POSTGRES (JSON form) for the test database, with `extra`."""
    parts = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    conn = {
        "conn_type": "postgres",
        "host": parts.get("host"),
        "port": int(parts["port"]) if parts.get("port") else None,
        "login": parts.get("user"),
        "password": parts.get("password"),
        "schema": parts.get("dbname"),
        "extra": extra,
    }
    return json.dumps({k: v for k, v in conn.items() if v is not None})


def api_connection(simulator: Any, password: str, extra: dict[str, Any] | None = None) -> str:
    conn: dict[str, Any] = {"conn_type": "http", "host": simulator.url, "password": password}
    if extra:
        conn["extra"] = extra
    return json.dumps(conn)


def session_value(conn: Any, query: str) -> Any:
    return conn.execute(query).fetchone()[0]


@pytest.mark.parametrize("sslmode", ["disable", "prefer"])
def test_postgres_hook_and_the_warehouse_share_the_recommended_connection(
    pg_dsn: str, schema: str, sslmode: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_POSTGRES", postgres_connection(pg_dsn, {**LIBPQ_EXTRA, "sslmode": sslmode})
    )
    monkeypatch.setenv("LIGHTSPEED_STATEMENT_TIMEOUT", "20min")
    monkeypatch.setenv("LIGHTSPEED_LOCK_TIMEOUT", "5s")

    hook = PostgresHook(postgres_conn_id="lightspeed_postgres")
    assert hook.get_first("select 1") == (1,)
    assert hook.get_first("show statement_timeout") == ("1min",)  # `options` reached the server

    with caplog.at_level(logging.WARNING):
        warehouse = LightspeedPostgresHook().get_warehouse()
    try:
        assert [r.getMessage() for r in caplog.records if "lightspeed" in r.name and r.levelno >= logging.WARNING] == []
        conn = warehouse._conn  # the session itself, outside the sync's transactions
        assert session_value(conn, "SHOW statement_timeout") == "1min"  # the session default from `options`
        assert session_value(conn, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()") == (
            "lightspeed_conn_test"
        )
        with warehouse.transaction() as tx:  # our per-transaction settings, from LIGHTSPEED_*
            assert session_value(tx, "SHOW statement_timeout") == "20min"
            assert session_value(tx, "SHOW lock_timeout") == "5s"
        assert session_value(conn, "SHOW statement_timeout") == "1min"  # SET LOCAL ended with the transaction
        apply_migrations(warehouse)  # the warehouse works on it
        with warehouse.sibling() as sibling:
            assert session_value(sibling._conn, "SHOW statement_timeout") == "1min"
    finally:
        warehouse.close()


def test_the_deprecated_postgres_extra_still_works_for_the_warehouse_but_breaks_postgres_hook(
    pg_dsn: str, schema: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    extra = {"sslmode": "disable", "statement_timeout": "3min", "lock_timeout": "7s"}
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", postgres_connection(pg_dsn, extra))
    monkeypatch.setenv("LIGHTSPEED_LOCK_TIMEOUT", "5s")  # the connection's key wins
    with caplog.at_level(logging.WARNING):
        warehouse = LightspeedPostgresHook().get_warehouse()
    try:
        with warehouse.transaction() as tx:
            assert session_value(tx, "SHOW statement_timeout") == "3min"
            assert session_value(tx, "SHOW lock_timeout") == "7s"
        apply_migrations(warehouse)
    finally:
        warehouse.close()
    messages = [r.getMessage() for r in caplog.records if "lightspeed" in r.name and r.levelno >= logging.WARNING]
    assert len(messages) == 2
    assert any("'statement_timeout' is deprecated" in m and "LIGHTSPEED_STATEMENT_TIMEOUT" in m for m in messages)
    assert any("'lock_timeout' is deprecated" in m and "LIGHTSPEED_LOCK_TIMEOUT" in m for m in messages)
    # Why: PostgresHook hands every extra key to libpq.
    with pytest.raises(Exception, match=r'invalid connection option "(statement|lock)_timeout"'):
        PostgresHook(postgres_conn_id="lightspeed_postgres").get_first("select 1")


def test_the_client_on_the_recommended_api_forms(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token in the password, or OAuth as a JSON password; tuning from LIGHTSPEED_* (over real HTTP)."""
    monkeypatch.setenv("LIGHTSPEED_PAGE_SIZE", "7")
    monkeypatch.setenv("LIGHTSPEED_MAX_RETRIES", "2")
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", api_connection(simulator, TOKEN, {"timeout": 20}))
    with LightspeedHook().get_conn() as client:
        assert client.config.page_size == 7 and client.config.timeout == 20.0
        assert client.retailer()["id"]
        page = next(VersionPaginator(client, "brands", "/brands", after=0).pages())
        assert 0 < len(page.records) <= 7
    assert simulator.stats()["requests"][-1]["query"]["page_size"] == "7"

    simulator.setup_oauth(**CLIENT, access_token=TOKEN)
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", api_connection(simulator, json.dumps(CLIENT)))
    with LightspeedHook().get_conn() as client:
        assert client.config.oauth is not None
        assert client.retailer()["id"]  # with a fresh access token from the refresh token
    oauth = simulator.oauth_state()
    assert oauth["refreshes"] == 1 and oauth["rejected_refreshes"] == 0


def test_a_whole_run_on_the_recommended_forms(
    simulator: Any,
    pg_dsn: str,
    db: Any,
    schema: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OAuth JSON password, no API extra, libpq extras, tuning by LIGHTSPEED_*: a full sync, no warning."""
    simulator.setup_oauth(**CLIENT, access_token=TOKEN)
    simulator.expire_access_token()
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", api_connection(simulator, json.dumps(CLIENT)))
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_POSTGRES", postgres_connection(pg_dsn, {**LIBPQ_EXTRA, "sslmode": "prefer"})
    )
    for name, value in {"PAGE_SIZE": "50", "BACKOFF_INITIAL": "0.05", "BACKOFF_MAX": "0.5", "MAX_RETRIES": "8",
                        "STATEMENT_TIMEOUT": "10min", "LOCK_TIMEOUT": "30s"}.items():  # fmt: skip
        monkeypatch.setenv(f"LIGHTSPEED_{name}", value)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    ours = logging.getLogger("lightspeed_pipeline")
    ours.addHandler(handler)
    try:
        run = run_dag()
    finally:
        ours.removeHandler(handler)
    assert run.state == "success", sync_state(db, schema)
    assert_database_equals_source(db, schema, simulator.state())
    assert any("applied migration" in r.getMessage() for r in records)  # the tasks' log records reach us...
    assert [r.getMessage() for r in records if r.levelno >= logging.WARNING] == []  # ...and none warns
    own = {e.name for e in reg.ENTITIES if hasattr(e.paging, "max_size")}  # ask for the documented size
    pages = {
        r["query"].get("page_size") for r in simulator.stats()["requests"] if r["resource"] not in {"retailer", *own}
    }
    assert pages == {"50"}
