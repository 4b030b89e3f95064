"""Airflow hooks: turn the two connections into a Lightspeed client and a Store.

Both connections stay usable by Airflow's stock hooks (`HttpHook`, `PostgresHook`), so
only what those hooks understand belongs in them; our own settings are environment
variables `LIGHTSPEED_<KEY>` (see `API_SETTING_KEYS` and `db.DB_SETTING_KEYS`).

`lightspeed_api` (type http), recommended form:
  host = the store's base URL with scheme; login empty (HttpHook then sends no basic auth);
  password = a personal access token, or for OAuth a JSON object
  {"refresh_token": "...", "client_id": "...", "client_secret": "..."} (a password that is
  not a JSON object is a token); extra: nothing, or only keys HttpHook consumes itself,
  such as `timeout` (read timeout, s), which the client honours too.
  Tuning: LIGHTSPEED_API_BASE_PATH, LIGHTSPEED_PAGE_SIZE, LIGHTSPEED_TIMEOUT,
  LIGHTSPEED_CONNECT_TIMEOUT, LIGHTSPEED_MAX_RETRIES, LIGHTSPEED_BACKOFF_INITIAL,
  LIGHTSPEED_BACKOFF_MAX, LIGHTSPEED_RETRY_BUDGET_S, LIGHTSPEED_MAX_RETRY_AFTER,
  LIGHTSPEED_VERSION_OVERLAP, LIGHTSPEED_RATE_RESERVE, LIGHTSPEED_RATE_WINDOW_S,
  LIGHTSPEED_PREFETCH, LIGHTSPEED_TOKEN_URL.
  Deprecated, still honoured (and winning over the environment, being per connection),
  each with one warning per task: those keys in extra (HttpHook sends every extra key it
  does not know as an HTTP header), and `refresh_token`, `client_id`, `client_secret` in
  extra (secrets in headers).
`lightspeed_postgres` (type postgres): the target database; extra = libpq parameters
  (`sslmode`, `options`, `keepalives*`, `target_session_attrs`, ...), passed through as is.
  Timeouts: LIGHTSPEED_STATEMENT_TIMEOUT, LIGHTSPEED_LOCK_TIMEOUT. Deprecated, still
  honoured: `statement_timeout` / `lock_timeout` in extra (PostgresHook hands them to
  libpq, which rejects them). See `db.connect_kwargs_from_airflow`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

from lightspeed_pipeline.client import ClientConfig, LightspeedClient
from lightspeed_pipeline.db import env_name, env_setting, warn_once
from lightspeed_pipeline.tokens import OAuthConfig

log = logging.getLogger(__name__)

_NUMERIC = {f.name: f.type for f in fields(ClientConfig) if f.type in ("int", "float", int, float)}
# Our settings of the API connection: environment variables LIGHTSPEED_<KEY>.
API_SETTING_KEYS = ("api_base_path", *_NUMERIC, "prefetch", "token_url")
# Keys HttpHook consumes itself (so never sends as a header): fine in extra.
HTTP_HOOK_KEYS = frozenset({"timeout"})
OAUTH_KEYS = ("refresh_token", "client_id", "client_secret")
_OAUTH_JSON_KEYS = (*OAUTH_KEYS, "access_token")
_FALSE = ("false", "0", "no", "off", "")
_OAUTH_FORM = '{"refresh_token": "...", "client_id": "...", "client_secret": "..."}'


class ConnectionConfigError(ValueError):
    """The connection is missing something the sync needs."""


def mask_secret(value: str) -> None:
    """Have Airflow redact `value` from task logs (it masks the whole password, not its parts)."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret as _mask
    except ImportError:  # pragma: no cover - an Airflow without the task SDK's masker
        return
    try:
        _mask(value)
    except Exception:  # pragma: no cover - masking must never break a task
        pass


def _base_url(conn: Any) -> str:
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
        return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    scheme = conn.schema if conn.schema in ("http", "https") else "https"
    netloc = host.rstrip("/")
    if conn.port:
        netloc = f"{netloc}:{conn.port}"
    return f"{scheme}://{netloc}"


def _password_json(conn: Any, password: str) -> dict[str, Any] | None:
    """The password's JSON object (the OAuth form), or None: then the password is a token."""
    text = password.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        # Never a Lightspeed token; sending it as one would hand the secrets to the API as a header.
        raise ConnectionConfigError(
            f"connection `{conn.conn_id}`: the password starts with '{{' but is not valid JSON; for OAuth it must"
            f" be a JSON object {_OAUTH_FORM}"
        ) from None
    return value if isinstance(value, dict) else None


def _oauth_secrets(conn: Any, password: str, extra: dict[str, Any]) -> tuple[dict[str, str] | None, str]:
    """(the OAuth secrets, or None; the access token the connection holds)."""
    in_extra = [k for k in OAUTH_KEYS if k in extra]
    for key in in_extra:
        warn_once(
            conn.conn_id,
            key,
            logger=log,
            message=f"connection `{conn.conn_id}`: extra key {key!r} is deprecated: Airflow's HttpHook would send"
            " it, a secret, as an HTTP header. Put refresh_token, client_id and client_secret in the connection's"
            f" password as a JSON object {_OAUTH_FORM} instead (login empty)",
        )
    given = {k: str(extra[k]) for k in in_extra if extra[k]}
    secrets = _password_json(conn, password)
    if secrets is not None:
        if given:
            raise ConnectionConfigError(
                f"connection `{conn.conn_id}`: OAuth is given twice, in the password (JSON) and in extra"
                f" ({', '.join(given)}); remove {', '.join(given)} from extra"
            )
        unknown = sorted(set(secrets) - set(_OAUTH_JSON_KEYS))
        if unknown:
            warn_once(
                conn.conn_id,
                "password-json",
                *unknown,
                logger=log,
                message=f"connection `{conn.conn_id}`: the password's JSON object has unknown keys"
                f" {', '.join(map(repr, unknown))} (ignored); it takes {', '.join(_OAUTH_JSON_KEYS)}",
            )
        given = {k: str(secrets[k]) for k in _OAUTH_JSON_KEYS if secrets.get(k) not in (None, "")}
        missing = [k for k in OAUTH_KEYS if k not in given]
        if missing:
            raise ConnectionConfigError(
                f"connection `{conn.conn_id}`: the password is a JSON object, so OAuth, which needs"
                f" {', '.join(OAUTH_KEYS)}; missing {', '.join(missing)}"
            )
        for key in ("refresh_token", "client_secret", "access_token"):
            mask_secret(given.get(key, ""))
        return given, given.get("access_token", "")
    if given:
        missing = [k for k in OAUTH_KEYS if k not in given]
        if missing:
            raise ConnectionConfigError(
                f"connection `{conn.conn_id}`: OAuth needs {', '.join(OAUTH_KEYS)} in extra;"
                f" missing {', '.join(missing)}"
            )
        mask_secret(given["refresh_token"])
        mask_secret(given["client_secret"])
        return given, password
    return None, password


def _setting(conn: Any, extra: dict[str, Any], key: str) -> tuple[Any, str] | None:
    """(value, where it came from) of one of our settings: the extra key, else LIGHTSPEED_<KEY>."""
    if key in extra:
        if key not in HTTP_HOOK_KEYS:
            warn_once(
                conn.conn_id,
                key,
                logger=log,
                message=f"connection `{conn.conn_id}`: extra key {key!r} is deprecated: Airflow's HttpHook sends"
                f" every extra key it does not know as an HTTP header; set the environment variable"
                f" {env_name(key)} instead (the extra key still wins while it is there)",
            )
        if extra[key] is not None and (extra[key] != "" or key == "prefetch"):
            return extra[key], f"connection `{conn.conn_id}`: extra {key!r}"
    value = env_setting(key)
    if value is not None:
        return value, f"environment variable {env_name(key)}"
    return None


def client_config_from_connection(conn: Any) -> ClientConfig:
    """Build a `ClientConfig` from an Airflow connection and `LIGHTSPEED_*` variables (unit-tested)."""
    base = _base_url(conn)
    extra = conn.extra_dejson or {}
    oauth_secrets, token = _oauth_secrets(conn, conn.password or "", extra)
    if oauth_secrets is None and not token:
        raise ConnectionConfigError(
            f"connection `{conn.conn_id}` has no password: put the Lightspeed access token there"
            f" (or, for OAuth, a JSON object {_OAUTH_FORM})"
        )
    kwargs: dict[str, Any] = {"base_url": base, "token": token}
    found = {key: got for key in API_SETTING_KEYS if (got := _setting(conn, extra, key)) is not None}
    if "api_base_path" in found and found["api_base_path"][0]:
        kwargs["api_base_path"] = str(found["api_base_path"][0])
    for name, type_ in _NUMERIC.items():
        if name not in found:
            continue
        value, source = found[name]
        try:
            kwargs[name] = int(value) if type_ in ("int", int) else float(value)
        except (TypeError, ValueError):
            raise ConnectionConfigError(f"{source} must be a number, got {value!r}") from None
        if name == "page_size" and kwargs[name] < 1:
            raise ConnectionConfigError(f"{source} must be at least 1, got {value!r}")
    if "prefetch" in found:
        kwargs["prefetch"] = str(found["prefetch"][0]).strip().lower() not in _FALSE
    if oauth_secrets is not None:
        token_url = found.get("token_url", (None, ""))[0]
        kwargs["oauth"] = OAuthConfig(
            client_id=oauth_secrets["client_id"],
            client_secret=oauth_secrets["client_secret"],
            refresh_token=oauth_secrets["refresh_token"],
            token_url=str(token_url or f"{base}/api/1.0/token"),
        )
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

        try:
            kwargs, settings = connect_kwargs_from_airflow(self.get_connection(self.postgres_conn_id))
        except ValueError as exc:  # a setting no retry can fix (a malformed timeout)
            raise ConnectionConfigError(f"connection `{self.postgres_conn_id}`: {exc}") from None
        return Store.open("", settings, **kwargs)
