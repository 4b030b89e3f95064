"""Airflow hooks: the two connections as a Lightspeed client and a `Warehouse`.

What the connections may hold, and how they become configuration: `connections.py`.
"""

from __future__ import annotations

from airflow.sdk import BaseHook

from lightspeed_pipeline import settings
from lightspeed_pipeline.api.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.api.oauth import TokenVault
from lightspeed_pipeline.connections import (
    ConnectionConfigError,
    client_config_from_connection,
    connect_kwargs_from_airflow,
)
from lightspeed_pipeline.settings import SettingError
from lightspeed_pipeline.warehouse.connection import Warehouse


class LightspeedHook(BaseHook):
    """Hook over the `lightspeed_api` connection; `get_conn()` returns a `LightspeedClient`."""

    conn_name_attr = "lightspeed_conn_id"
    default_conn_name = settings.API_CONN_ID
    conn_type = "http"
    hook_name = "Lightspeed Retail (X-Series)"

    def __init__(self, lightspeed_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.lightspeed_conn_id = lightspeed_conn_id

    def get_config(self, fallback_version: str | None = None) -> ClientConfig:
        return client_config_from_connection(self.get_connection(self.lightspeed_conn_id), fallback_version)

    def get_conn(self, token_vault: TokenVault | None = None) -> LightspeedClient:
        """A client; with OAuth, `token_vault` (a `PostgresTokenVault`) makes token rotation durable."""
        return LightspeedClient(self.get_config(), token_vault=token_vault)


class LightspeedPostgresHook(BaseHook):
    """Hook over the `lightspeed_postgres` connection; `get_warehouse()` returns a `Warehouse`."""

    conn_name_attr = "postgres_conn_id"
    default_conn_name = settings.POSTGRES_CONN_ID
    conn_type = "postgres"
    hook_name = "Lightspeed target PostgreSQL"

    def __init__(self, postgres_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.postgres_conn_id = postgres_conn_id

    def get_warehouse(self) -> Warehouse:
        """A warehouse on a new connection; `ConnectionConfigError` (permanent) when a setting is unusable."""
        try:
            kwargs, db_settings = connect_kwargs_from_airflow(self.get_connection(self.postgres_conn_id))
        except SettingError as exc:  # a setting no retry can fix (a malformed timeout)
            raise ConnectionConfigError(f"connection `{self.postgres_conn_id}`: {exc}") from None
        return Warehouse.open("", db_settings, **kwargs)
