"""Token expiry: personal tokens fail fast; OAuth refreshes once, rotates durably, and is shared."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.api.oauth import OAuthConfig
from lightspeed_pipeline.warehouse import DbSettings, Warehouse
from lightspeed_pipeline.warehouse.migrations import apply_migrations
from lightspeed_pipeline.warehouse.tokens import PostgresTokenVault

from tests.conftest import FAST_RETRIES, TOKEN
from tests.integration.helpers import (
    assert_database_equals_source,
    requests_by_resource,
    run_dag,
    run_dag_disturbed,
    sync_state,
)

CLIENT = {"client_id": "ls-client-1", "client_secret": "ls-secret-0123456789abcdef", "refresh_token": "lsxs_rt_seed_1"}


def oauth_connection(simulator: Any, **extra: Any) -> str:
    return simulator.airflow_connection(**FAST_RETRIES, **CLIENT, **extra)


def oauth_config(simulator: Any, client: dict[str, str] = CLIENT) -> OAuthConfig:
    return OAuthConfig(**client, token_url=f"{simulator.url}/api/1.0/token")


def migrated_oauth(simulator: Any, pg_dsn: str, schema: str) -> tuple[DbSettings, OAuthConfig]:
    """Tables in `schema`, the simulator's OAuth set up for CLIENT; (settings, config)."""
    settings = DbSettings(schema=schema)
    with Warehouse.open(pg_dsn, settings) as warehouse:
        apply_migrations(warehouse)
    simulator.setup_oauth(**CLIENT, access_token=TOKEN)
    return settings, oauth_config(simulator)


def stored_tokens(pg_dsn: str, schema: str, simulator: Any) -> tuple[int, str | None]:
    """(refresh_count, the access token the vault would use now)."""
    with Warehouse.open(pg_dsn, DbSettings(schema=schema)) as warehouse:
        vault = PostgresTokenVault(warehouse, oauth_config(simulator), simulator.url)
        with warehouse.transaction() as conn:
            count = conn.execute(f'SELECT refresh_count FROM "{schema}".lightspeed_oauth_tokens').fetchone()
        return (count[0] if count else 0), vault.current()


def test_a_rejected_personal_token_fails_fast_with_a_clear_message(
    connections: None, simulator: Any, db: Any, schema: str, airflow_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIGHTSPEED_TASK_RETRIES", "0")
    conn = simulator.airflow_connection(**FAST_RETRIES).replace(TOKEN, "lsxs_pt_revoked")
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", conn)
    run = run_dag(entities=["brands"])
    assert run.state == "failed"
    # The run's first request (the store check) is refused: no retry, no entity request.
    assert simulator.stats()["by_resource"] == {"retailer": 1}
    error = sync_state(db, schema)["brands"][2]
    assert error.startswith("store identity (GET /retailer): HTTP 401 on GET /api/2.0/retailer")
    assert "check the password (access token) of the `lightspeed_api` connection" in error
    assert "lsxs_pt_revoked" not in error


def test_oauth_refreshes_once_rotates_durably_and_a_restart_uses_the_newest_token(
    connections: None,
    simulator: Any,
    db: Any,
    pg_dsn: str,
    schema: str,
    airflow_db: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulator.setup_oauth(**CLIENT, access_token=TOKEN)
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", oauth_connection(simulator))
    simulator.expire_access_token()  # the connection's access token is dead before the run starts
    run = run_dag()
    assert run.state == "success"
    assert_database_equals_source(db, schema, simulator.state())
    sim_oauth = simulator.oauth_state()
    assert sim_oauth["refreshes"] == 1 and sim_oauth["rejected_refreshes"] == 0
    count, current = stored_tokens(pg_dsn, schema, simulator)
    assert count == 1 and current == sim_oauth["access_token"]
    raw = db.execute(f'SELECT access_token, refresh_token FROM "{schema}".lightspeed_oauth_tokens').fetchone()
    assert sim_oauth["access_token"] not in raw[0] and sim_oauth["refresh_token"] not in raw[1]  # encrypted

    # Expiry in the middle of sales: one 401, one refresh, and the sync carries on.
    simulator.mutate(seed=3, new={"sales": 60})
    simulator.faults(delay={"sales": 0.2})
    simulator.reset_stats()
    run, expired = run_dag_disturbed(
        lambda: len(requests_by_resource(simulator.stats()).get("sales", [])) >= 2,
        simulator.expire_access_token,
        every=0.05,
        entities=["sales"],
    )
    simulator.faults()
    assert expired and run.state == "success"
    statuses = [r["status"] for r in requests_by_resource(simulator.stats())["sales"]]
    assert statuses.count(401) == 1
    assert_database_equals_source(db, schema, simulator.state(), only=("sales",))
    # A "restart": the connection still holds the spent seed token; the stored chain is used.
    simulator.expire_access_token()
    run = run_dag(entities=["brands"])
    assert run.state == "success"
    sim_oauth = simulator.oauth_state()
    assert sim_oauth["refreshes"] == 3 and sim_oauth["rejected_refreshes"] == 0


def test_concurrent_401s_refresh_once_and_share_the_new_token(simulator: Any, pg_dsn: str, schema: str) -> None:
    settings, oauth = migrated_oauth(simulator, pg_dsn, schema)
    config = ClientConfig(base_url=simulator.url, token=TOKEN, oauth=oauth, page_size=50)
    simulator.expire_access_token()
    barrier = threading.Barrier(4)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        vault_db = Warehouse.open(pg_dsn, settings)
        try:
            client = LightspeedClient(config, token_vault=PostgresTokenVault(vault_db, oauth, simulator.url))
            barrier.wait()
            results.append(client.get_json("/outlets", {"page_size": 5}, what="outlets"))
        except BaseException as exc:
            errors.append(exc)
        finally:
            vault_db.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(results) == 4 and all(r["data"] for r in results)
    sim_oauth = simulator.oauth_state()
    assert sim_oauth["refreshes"] == 1 and sim_oauth["rejected_refreshes"] == 0


def test_a_reauthorised_connection_restarts_the_token_chain(simulator: Any, pg_dsn: str, schema: str) -> None:
    settings, oauth = migrated_oauth(simulator, pg_dsn, schema)
    with Warehouse.open(pg_dsn, settings) as vault_db:
        vault = PostgresTokenVault(vault_db, oauth, simulator.url)
        simulator.expire_access_token()
        LightspeedClient(ClientConfig(base_url=simulator.url, token=TOKEN, oauth=oauth), token_vault=vault).get_json(
            "/outlets", {}, what="outlets"
        )
        # The user re-authorises the app: a brand-new refresh token goes into the connection.
        fresh = {**CLIENT, "refresh_token": "lsxs_rt_reauthorised"}
        simulator.setup_oauth(**fresh, access_token="lsxs_at_whatever")
        simulator.expire_access_token()
        oauth2 = oauth_config(simulator, fresh)
        vault2 = PostgresTokenVault(vault_db, oauth2, simulator.url)
        client = LightspeedClient(ClientConfig(base_url=simulator.url, token=TOKEN, oauth=oauth2), token_vault=vault2)
        assert client.get_json("/outlets", {}, what="outlets")["data"]
    sim_oauth = simulator.oauth_state()
    assert sim_oauth["refreshes"] == 1 and sim_oauth["rejected_refreshes"] == 0
