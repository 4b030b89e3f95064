"""The sync-health page inside the Airflow API server: protected, and showing real data."""

from __future__ import annotations

from typing import Any

import pytest
from lightspeed_pipeline import entities as reg


@pytest.fixture
def client(migrated: Any, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Any:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", pg_dsn)
    return TestClient(create_app())


def token(role: str = "viewer") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="someone", role=role))


def test_anonymous_and_forged_requests_are_refused(client: Any) -> None:
    for path in ("/lightspeed/health", "/lightspeed/api/health"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403


def test_no_unguarded_route_in_the_plugin(client: Any) -> None:
    """FastAPI's docs and schema routes bypass app dependencies: they are switched off, and
    every route the plugin still has needs a login."""
    from lightspeed_pipeline.ui import create_app

    for path in (
        "/lightspeed/docs",
        "/lightspeed/redoc",
        "/lightspeed/openapi.json",
        "/lightspeed/docs/oauth2-redirect",
    ):
        for headers in ({}, {"Authorization": f"Bearer {token()}"}):
            assert client.get(path, headers=headers).status_code == 404, path
    routes = [r.path for r in create_app().routes]
    assert sorted(routes) == ["/api/health", "/health"]
    for path in routes:
        assert client.get(f"/lightspeed{path}").status_code == 401


def test_health_json_and_page_for_a_logged_in_user(client: Any, migrated: Any, schema: str) -> None:
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() - interval '3 hours',"
        " last_version = 42 WHERE entity_type = 'sales'"
    )
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() WHERE entity_type = 'brands'"
    )
    migrated.execute(
        f"UPDATE \"{schema}\".sync_state SET status = 'success', last_sync_time = now() - interval '26 hours'"
        " WHERE entity_type = 'taxes'"
    )
    resp = client.get("/lightspeed/api/health", headers={"Authorization": f"Bearer {token()}"})
    assert resp.status_code == 200
    body = resp.json()
    health = {e["entity_type"]: e["sync_status"] for e in body["entities"]}
    assert set(health) == set(reg.NAMES)
    # Daily schedule (the default): 3 h since the last success is OK, 26 h is ALERT.
    assert health["brands"] == "OK" and health["sales"] == "OK" and health["customers"] == "ALERT"
    assert health["taxes"] == "ALERT"
    assert body["overall"] == "ALERT" and body["last_run"] is None
    page = client.get("/lightspeed/health", cookies={"_token": token()})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "Lightspeed sync health" in page.text and "never synced successfully" in page.text and "sales" in page.text
