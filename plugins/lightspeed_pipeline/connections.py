"""Airflow connections -> the sync's configuration: `ClientConfig` from `lightspeed_api`,
psycopg arguments and `DbSettings` from `lightspeed_postgres`, URLs from http connections.

Both connections stay usable by Airflow's stock hooks (`HttpHook`, `PostgresHook`), so
only what those hooks understand belongs in them; the sync's own settings are `LIGHTSPEED_*`
environment variables (`settings.py`).

`lightspeed_api` (type http), recommended form:
  host = the store's base URL with scheme; login empty (HttpHook then sends no basic auth);
  password = a personal access token, or for OAuth a JSON object
  {"refresh_token": "...", "client_id": "...", "client_secret": "..."} (a password that is
  not a JSON object is a token); extra: nothing, or only keys HttpHook consumes itself,
  such as `timeout` (read timeout, s), which the client honours too.
  Deprecated, still honoured (and winning over the environment, being per connection),
  each with one warning per task: the tuning keys of `settings.API_SETTINGS` in extra
  (HttpHook sends every extra key it does not know as an HTTP header), and `refresh_token`,
  `client_id`, `client_secret` in extra (secrets in headers).
`lightspeed_postgres` (type postgres): the target database; extra = libpq parameters
  (`sslmode`, `options`, `keepalives*`, `target_session_attrs`, ...), passed through as is.
  Deprecated, still honoured: `statement_timeout` / `lock_timeout` in extra (PostgresHook
  hands them to libpq, which rejects them).
"""

from __future__ import annotations

import json
import logging
import re
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from lightspeed_pipeline import settings
from lightspeed_pipeline.entities import V2
from lightspeed_pipeline.settings import Setting, SettingError

if TYPE_CHECKING:  # imported where used: the alerts (loaded when the DAG is parsed) need neither
    from lightspeed_pipeline.api.client import ClientConfig
    from lightspeed_pipeline.warehouse.connection import DbSettings

log = logging.getLogger(__name__)

# Our settings of the API connection: environment variables LIGHTSPEED_<KEY>, formerly extra keys.
API_SETTING_KEYS = tuple(s.key for s in settings.API_SETTINGS)
# ... and of the target database (formerly extra keys of lightspeed_postgres).
DB_SETTING_KEYS = tuple(s.key for s in settings.DB_SETTINGS)
# Keys HttpHook consumes itself (so never sends as a header): fine in extra.
HTTP_HOOK_KEYS = frozenset({"timeout"})
OAUTH_KEYS = ("refresh_token", "client_id", "client_secret")
_OAUTH_JSON_KEYS = (*OAUTH_KEYS, "access_token")
_OAUTH_FORM = '{"refresh_token": "...", "client_id": "...", "client_secret": "..."}'
# Extra keys PostgresHook (postgres provider 7.1.1) consumes itself and never passes to libpq
# (its `ignored_extra_options`), plus its `enable_log_db_messages` option: not ours, not libpq,
# ignored without a word.
POSTGRES_HOOK_EXTRA = frozenset({
    "iam", "redshift", "redshift-serverless", "cursor", "cluster-identifier", "workgroup-name",
    "aws_conn_id", "sqlalchemy_scheme", "sqlalchemy_query", "azure_conn_id", "enable_log_db_messages",
})  # fmt: skip
_CONNECTION_FIELDS = ("host", "port", "user", "password", "dbname")


class ConnectionConfigError(SettingError):
    """The connection is missing something the sync needs (or holds a setting it cannot use)."""


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


_warned: tuple[Any, set[tuple[str, ...]]] = (None, set())


def _task_key() -> Any:
    """The running task instance (so each task warns once), or None outside a task."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return (ti.dag_id, ti.run_id, ti.task_id, ti.map_index, getattr(ti, "try_number", None))
    except Exception:
        return None


def warn_once(*what: str, message: str) -> None:
    """Log `message` (a warning: it shows in the Airflow task log) once per task and `what`.

    The message names keys and variables, never a value (the values may be secrets).
    """
    global _warned
    task = _task_key()
    if _warned[0] != task:
        _warned = (task, set())
    if what in _warned[1]:
        return
    _warned[1].add(what)
    log.warning("%s", message)


def connection_url(conn: Any, *, scheme_from_type: bool = False) -> str | None:
    """`scheme://host[:port][/path]` of an http connection; None when it has no host.

    The host may hold a whole URL (kept as it is, with the connection's port added when the
    URL has none). Otherwise the scheme is `schema` when that is http or https (HttpHook's
    meaning), else, with `scheme_from_type`, the connection type when that is http or https,
    else https; any other `schema` is the path (the URI form `https://host/path` puts the
    path there).
    """
    host = (conn.host or "").strip()
    if not host:
        return None
    if "://" in host:
        parts = urlsplit(host)
        if conn.port and parts.port is None:
            parts = parts._replace(netloc=f"{parts.netloc}:{conn.port}")
        return urlunsplit(parts)
    schema = (conn.schema or "").strip()
    scheme = "https"
    if scheme_from_type and conn.conn_type in ("http", "https"):
        scheme = conn.conn_type
    if schema in ("http", "https"):
        scheme, schema = schema, ""
    netloc = host.rstrip("/")
    if conn.port and ":" not in netloc.split("/")[0]:
        netloc = f"{netloc}:{conn.port}"
    return f"{scheme}://{netloc}" + (f"/{schema.lstrip('/')}" if schema else "")


def api_base_url(conn: Any) -> str:
    """The store URL of `lightspeed_api`, without a trailing slash."""
    url = connection_url(conn)
    if url is None:
        raise ConnectionConfigError(
            f"connection `{conn.conn_id}` has no host: set it to the store URL, e.g. https://mystore.retail.lightspeed.app"
        )
    return url.rstrip("/")


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


def _version_in_path(path: str | None) -> str | None:
    """The API version a base path names (`/api/2026-07` -> 2026-07), if it names one."""
    match = re.fullmatch(r"/?api/([^/]+)/?", (path or "").strip())
    if match is None:
        return None
    try:
        return str(settings.API_VERSION.parse(match.group(1)))
    except SettingError:
        return None


def _setting(conn: Any, extra: dict[str, Any], setting: Setting) -> tuple[Any, str] | None:
    """(raw value, where it came from) of one of our settings: the extra key (deprecated), else
    the environment variable; None when neither is set."""
    key = setting.key
    if key in extra:
        if key not in HTTP_HOOK_KEYS:
            warn_once(
                conn.conn_id,
                key,
                message=f"connection `{conn.conn_id}`: extra key {key!r} is deprecated: Airflow's HttpHook sends"
                f" every extra key it does not know as an HTTP header; set the environment variable"
                f" {setting.env} instead (the extra key still wins while it is there)",
            )
        if extra[key] is not None and (extra[key] != "" or setting.kind == "bool"):
            return extra[key], f"connection `{conn.conn_id}`: extra {key!r}"
    raw = setting.raw()
    return (raw, f"environment variable {setting.env}") if raw is not None else None


def client_config_from_connection(conn: Any, fallback_version: str | None = None) -> ClientConfig:
    """Build a `ClientConfig` from an Airflow connection and `LIGHTSPEED_*` variables (unit-tested).

    The API version: LIGHTSPEED_API_VERSION when set; else the version a configured base path
    names (`/api/2.0` in the deprecated extra key, say); else `fallback_version` (the tasks pass
    the database's, `identity.database_api_version`); else 2.0. A base path naming another
    version than LIGHTSPEED_API_VERSION is an error.
    """
    from lightspeed_pipeline.api.client import ClientConfig
    from lightspeed_pipeline.api.oauth import OAuthConfig

    base = api_base_url(conn)
    extra = conn.extra_dejson or {}
    oauth_secrets, token = _oauth_secrets(conn, conn.password or "", extra)
    if oauth_secrets is None and not token:
        raise ConnectionConfigError(
            f"connection `{conn.conn_id}` has no password: put the Lightspeed access token there"
            f" (or, for OAuth, a JSON object {_OAUTH_FORM})"
        )
    values: dict[str, Any] = {}
    for setting in settings.API_SETTINGS:
        found = _setting(conn, extra, setting)
        try:
            values[setting.key] = setting.default if found is None else setting.parse(*found)
        except SettingError as exc:
            raise ConnectionConfigError(str(exc)) from None
    token_url = values.pop("token_url")
    try:
        explicit = settings.API_VERSION.read()
    except SettingError as exc:
        raise ConnectionConfigError(str(exc)) from None
    named = _version_in_path(values["api_base_path"])
    if explicit and named and explicit != named:
        raise ConnectionConfigError(
            f"environment variable {settings.API_VERSION.env} says API {explicit}, but the base path"
            f" {values['api_base_path']!r} names {named}: remove one of them"
        )
    values["api_version"] = explicit or named or fallback_version or V2
    values["api_base_path"] = values["api_base_path"] or ""  # unset: ClientConfig's /api/<api_version>
    oauth = None
    if oauth_secrets is not None:
        oauth = OAuthConfig(
            client_id=oauth_secrets["client_id"],
            client_secret=oauth_secrets["client_secret"],
            refresh_token=oauth_secrets["refresh_token"],
            token_url=str(token_url or f"{base}/api/1.0/token"),
        )
    return ClientConfig(base_url=base, token=token, oauth=oauth, **values)


# ---- lightspeed_postgres ---------------------------------------------------------------------


@cache
def libpq_keywords() -> frozenset[str]:
    """Every connection parameter the linked libpq knows (`sslmode`, `options`, `keepalives`, ...)."""
    from psycopg import pq

    return frozenset(o.keyword.decode() for o in pq.Conninfo.get_defaults())


def connect_kwargs_from_airflow(conn: Any) -> tuple[dict[str, Any], DbSettings]:
    """psycopg keyword arguments and settings from an Airflow postgres connection.

    Every extra key libpq knows goes to psycopg as is (so `PostgresHook` and the sync see the
    same connection). Keys PostgresHook consumes itself are ignored; `statement_timeout` and
    `lock_timeout` (ours; deprecated there, since PostgresHook hands them to libpq, which
    rejects them) win over `LIGHTSPEED_STATEMENT_TIMEOUT` / `LIGHTSPEED_LOCK_TIMEOUT`; any other
    key is ignored with a warning.
    """
    from lightspeed_pipeline.warehouse.connection import DbSettings

    extra = conn.extra_dejson or {}
    conn_id = getattr(conn, "conn_id", None) or settings.POSTGRES_CONN_ID
    kwargs: dict[str, Any] = {
        "host": conn.host or None,
        "port": conn.port or None,
        "user": conn.login or None,
        "password": conn.password or None,
        "dbname": conn.schema or None,
    }
    known = libpq_keywords()
    for key, value in extra.items():
        if key in DB_SETTING_KEYS or key in POSTGRES_HOOK_EXTRA:
            continue
        if key not in known:
            warn_once(
                conn_id,
                key,
                message=f"connection `{conn_id}`: extra key {key!r} is not a libpq connection parameter;"
                " ignored (Airflow's PostgresHook would fail on it)",
            )
            continue
        if value in (None, ""):
            continue
        if key in _CONNECTION_FIELDS and kwargs[key] is not None:
            continue  # the connection's own field wins (as for `dbname` vs `schema` before)
        kwargs[key] = value
    kwargs.setdefault("application_name", settings.DAG_ID)
    timeouts: dict[str, str] = {}
    for setting in settings.DB_SETTINGS:
        key = setting.key
        if key in extra:
            warn_once(
                conn_id,
                key,
                message=f"connection `{conn_id}`: extra key {key!r} is deprecated: Airflow's PostgresHook"
                f" passes every extra key to libpq, which rejects it; set the environment variable"
                f" {setting.env} instead (the extra key still wins while it is there)",
            )
        if extra.get(key) not in (None, ""):
            timeouts[key] = setting.parse(extra[key], f"connection `{conn_id}`: extra {key!r}")
        else:
            timeouts[key] = setting.read()
    db_settings = DbSettings(schema=settings.target_schema(), **timeouts)
    return {k: v for k, v in kwargs.items() if v is not None}, db_settings
