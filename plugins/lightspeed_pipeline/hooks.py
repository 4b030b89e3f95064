"""Airflow hooks: turn the two connections into a Lightspeed client and a Store.

`lightspeed_api` (type http): host = base URL with scheme, password = access token,
extra = {"api_base_path", "page_size", "timeout", "max_retries", "backoff_initial",
"backoff_max", "retry_budget_s", "max_retry_after", "version_overlap", "rate_reserve",
"rate_window_s", "prefetch", ...}.
`lightspeed_postgres` (type postgres): the target database; extra may carry libpq
options (sslmode, ...) and `statement_timeout` / `lock_timeout`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from lightspeed_pipeline.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.tokens import OAuthConfig

_NUMERIC_EXTRA = {f.name: f.type for f in fields(ClientConfig) if f.type in ("int", "float", int, float)}
_OAUTH_KEYS = ("refresh_token", "client_id", "client_secret")


class ConnectionConfigError(ValueError):
    """The connection is missing something the sync needs."""


def client_config_from_connection(conn: Any) -> ClientConfig:
    """Build a `ClientConfig` from an Airflow connection (pure; unit-tested)."""
    host = (conn.host or "").strip()
    if not host:
        raise ConnectionConfigError(
            f"connection `{conn.conn_id}` has no host: set it to the store URL, e.g. https://mystore.retail.lightspeed.app"
        )
    if "://" in host:
        parts = urlsplit(host)
        netloc = parts.netloc
        if conn.port and ":" not in netloc:
            netloc = f"{netloc}:{conn.port}"
        base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    else:
        scheme = conn.schema if conn.schema in ("http", "https") else "https"
        netloc = host.rstrip("/")
        if conn.port:
            netloc = f"{netloc}:{conn.port}"
        base = f"{scheme}://{netloc}"
    token = conn.password or ""
    extra = conn.extra_dejson or {}
    given = [k for k in _OAUTH_KEYS if extra.get(k)]
    oauth = None
    if given:
        missing = [k for k in _OAUTH_KEYS if k not in given]
        if missing:
            raise ConnectionConfigError(
                f"connection `{conn.conn_id}`: OAuth needs {', '.join(_OAUTH_KEYS)} in extra;"
                f" missing {', '.join(missing)}"
            )
        oauth = OAuthConfig(
            client_id=str(extra["client_id"]),
            client_secret=str(extra["client_secret"]),
            refresh_token=str(extra["refresh_token"]),
            token_url=str(extra.get("token_url") or f"{base}/api/1.0/token"),
        )
    elif not token:
        raise ConnectionConfigError(
            f"connection `{conn.conn_id}` has no password: put the Lightspeed access token there"
            " (or refresh_token, client_id and client_secret in extra for OAuth)"
        )
    kwargs: dict[str, Any] = {"base_url": base, "token": token, "oauth": oauth}
    if extra.get("api_base_path"):
        kwargs["api_base_path"] = str(extra["api_base_path"])
    for name, type_ in _NUMERIC_EXTRA.items():
        if name in extra and extra[name] not in (None, ""):
            try:
                kwargs[name] = int(extra[name]) if type_ in ("int", int) else float(extra[name])
            except (TypeError, ValueError):
                raise ConnectionConfigError(
                    f"connection `{conn.conn_id}`: extra {name!r} must be a number, got {extra[name]!r}"
                ) from None
    if "prefetch" in extra:
        kwargs["prefetch"] = str(extra["prefetch"]).strip().lower() not in ("false", "0", "no", "off", "")
    if kwargs.get("page_size", 1) < 1:
        raise ConnectionConfigError(f"connection `{conn.conn_id}`: page_size must be at least 1")
    return ClientConfig(**kwargs)


class LightspeedHook(BaseHook):
    """Hook over the `lightspeed_api` connection; `get_conn()` returns a `LightspeedClient`."""

    conn_name_attr = "lightspeed_conn_id"
    default_conn_name = "lightspeed_api"
    conn_type = "http"
    hook_name = "Lightspeed Retail (X-Series)"

    def __init__(self, lightspeed_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.lightspeed_conn_id = lightspeed_conn_id

    def get_config(self) -> ClientConfig:
        return client_config_from_connection(self.get_connection(self.lightspeed_conn_id))

    def get_conn(self, token_store: Any = None) -> LightspeedClient:
        """A client; with OAuth, `token_store` (a `PostgresTokenStore`) makes token rotation durable."""
        return LightspeedClient(self.get_config(), token_store=token_store)


class LightspeedPostgresHook(BaseHook):
    """Hook over the `lightspeed_postgres` connection; `get_store()` returns a `Store`."""

    conn_name_attr = "postgres_conn_id"
    default_conn_name = "lightspeed_postgres"
    conn_type = "postgres"
    hook_name = "Lightspeed target PostgreSQL"

    def __init__(self, postgres_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.postgres_conn_id = postgres_conn_id

    def get_store(self) -> Any:
        from lightspeed_pipeline.db import connect_kwargs_from_airflow
        from lightspeed_pipeline.store import Store

        kwargs, settings = connect_kwargs_from_airflow(self.get_connection(self.postgres_conn_id))
        return Store.open("", settings, **kwargs)
