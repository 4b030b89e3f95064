"""Connections usable by Airflow's stock hooks: our settings from LIGHTSPEED_* variables,
OAuth secrets in the password, libpq extras passed through, the old forms deprecated but working.

Headers are checked on real HTTP requests (a recording server), not on a mocked session.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk import Connection
from lightspeed_pipeline import connections
from lightspeed_pipeline.connections import (
    API_SETTING_KEYS,
    DB_SETTING_KEYS,
    ConnectionConfigError,
    client_config_from_connection,
    connect_kwargs_from_airflow,
)
from lightspeed_pipeline.settings import BY_KEY

from tests.unit.scripted_http import ScriptedServer, ok

TOKEN = "lsxs_pt_unit-token-0123456789"
OAUTH = {
    "refresh_token": "lsxs_rt_unit-refresh-0123456789",
    "client_id": "ls-client-unit",
    "client_secret": "ls-secret-unit-0123456789abcdef",
}
SECRETS = (TOKEN, OAUTH["refresh_token"], OAUTH["client_secret"])
# Every tuning key, as the old (deprecated) extra and as the environment gives it.
TUNING = {
    "api_base_path": "/api/2.1",
    "page_size": "25",
    "connect_timeout": "4",
    "max_retries": "3",
    "backoff_initial": "0.25",
    "backoff_max": "2",
    "retry_budget_s": "30",
    "max_retry_after": "12",
    "version_overlap": "2",
    "rate_reserve": "1",
    "rate_window_s": "60",
    "prefetch": "false",
    "token_url": "http://auth.example/token",
}
EXPECTED = {
    "api_base_path": "/api/2.1",
    "page_size": 25,
    "connect_timeout": 4.0,
    "max_retries": 3,
    "backoff_initial": 0.25,
    "backoff_max": 2.0,
    "retry_budget_s": 30.0,
    "max_retry_after": 12.0,
    "version_overlap": 2,
    "rate_reserve": 1,
    "rate_window_s": 60.0,
    "prefetch": False,
}


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LIGHTSPEED_<KEY> from the caller's environment; warnings not yet given."""
    for key in (*API_SETTING_KEYS, *DB_SETTING_KEYS):
        monkeypatch.delenv(BY_KEY[key].env, raising=False)
    monkeypatch.setattr(connections, "_warned", (None, set()))


def api_conn(password: str = TOKEN, extra: dict[str, Any] | None = None, login: str | None = None) -> Connection:
    return Connection(
        conn_id="lightspeed_api",
        conn_type="http",
        host="https://mystore.retail.lightspeed.app",
        login=login,
        password=password,
        extra=json.dumps(extra) if extra is not None else None,
    )


def pg_conn(extra: dict[str, Any]) -> Connection:
    return Connection(
        conn_id="lightspeed_postgres",
        conn_type="postgres",
        host="db.example",
        port=5432,
        login="sync",
        password="pg-password-0123456789",
        schema="postgres",
        extra=json.dumps(extra),
    )


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "lightspeed" in r.name]


# -- lightspeed_api: environment variables, precedence, deprecation ------------------------------


def test_every_tuning_key_comes_from_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert set(API_SETTING_KEYS) == {*TUNING, "timeout"}  # the list docs/configuration.md documents
    for key, value in TUNING.items():
        monkeypatch.setenv(f"LIGHTSPEED_{key.upper()}", value)
    monkeypatch.setenv("LIGHTSPEED_TIMEOUT", "7.5")
    cfg = client_config_from_connection(api_conn(json.dumps(OAUTH)))
    for name, want in EXPECTED.items():
        assert getattr(cfg, name) == want, name
    assert cfg.timeout == 7.5
    assert cfg.oauth is not None and cfg.oauth.token_url == "http://auth.example/token"


def test_defaults_without_environment_or_extra() -> None:
    cfg = client_config_from_connection(api_conn())
    assert (cfg.page_size, cfg.api_base_path, cfg.timeout, cfg.prefetch) == (1000, "/api/2.0", 60.0, True)
    assert cfg.token == TOKEN and cfg.oauth is None


def test_an_extra_key_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTSPEED_PAGE_SIZE", "500")
    monkeypatch.setenv("LIGHTSPEED_MAX_RETRIES", "2")
    monkeypatch.setenv("LIGHTSPEED_TIMEOUT", "90")
    cfg = client_config_from_connection(api_conn(extra={"page_size": 40, "timeout": 5}))
    assert (cfg.page_size, cfg.max_retries, cfg.timeout) == (40, 2, 5.0)


def test_deprecated_extra_keys_warn_once_per_task_and_name_the_replacement(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = api_conn(TOKEN, extra={**TUNING, **OAUTH, "timeout": 30})
    with caplog.at_level(logging.WARNING):
        cfg = client_config_from_connection(conn)
        client_config_from_connection(conn)  # the same task again (get_config, then get_conn)
    for name, want in EXPECTED.items():
        assert getattr(cfg, name) == want, name  # the old form keeps working
    assert cfg.oauth is not None and cfg.oauth.refresh_token == OAUTH["refresh_token"]
    messages = warnings_of(caplog)
    assert len(messages) == len(TUNING) + len(OAUTH)  # one per deprecated key; `timeout` is HttpHook's own
    for key in TUNING:
        (msg,) = [m for m in messages if f"extra key {key!r}" in m]
        assert f"LIGHTSPEED_{key.upper()}" in msg and "HTTP header" in msg
    for key in OAUTH:
        (msg,) = [m for m in messages if f"extra key {key!r}" in m]
        assert "password" in msg and "JSON object" in msg and "HTTP header" in msg
    assert not any(s in m for m in messages for s in SECRETS)  # never a value

    # Another task warns again.
    monkeypatch.setattr(connections, "_task_key", lambda: ("lightspeed_sync", "run", "brands.sync", -1, 1))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        client_config_from_connection(api_conn(extra={"page_size": 40}))
        client_config_from_connection(api_conn(extra={"page_size": 40}))
    assert len(warnings_of(caplog)) == 1


def test_the_recommended_form_warns_about_nothing(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIGHTSPEED_PAGE_SIZE", "200")
    with caplog.at_level(logging.WARNING):
        client_config_from_connection(api_conn(extra={"timeout": 20}))
        client_config_from_connection(api_conn(json.dumps(OAUTH)))
    assert warnings_of(caplog) == []


# -- lightspeed_api: OAuth in the password -------------------------------------------------------


def test_an_oauth_json_password_is_parsed_and_its_secrets_masked() -> None:
    from airflow.sdk._shared.secrets_masker import redact

    cfg = client_config_from_connection(api_conn(json.dumps(OAUTH)))
    assert cfg.oauth is not None
    assert (cfg.oauth.client_id, cfg.oauth.client_secret, cfg.oauth.refresh_token) == (
        OAUTH["client_id"],
        OAUTH["client_secret"],
        OAUTH["refresh_token"],
    )
    assert cfg.oauth.token_url == "https://mystore.retail.lightspeed.app/api/1.0/token"
    assert cfg.token == ""  # no access token yet: the client refreshes first
    line = f"refresh={OAUTH['refresh_token']} secret={OAUTH['client_secret']}"
    assert redact(line) == "refresh=*** secret=***"
    assert OAUTH["client_secret"] not in repr(cfg)

    with_access = client_config_from_connection(api_conn(json.dumps({**OAUTH, "access_token": "lsxs_at_current_1"})))
    assert with_access.token == "lsxs_at_current_1"


@pytest.mark.parametrize("password", [TOKEN, "123", '"a json string"', "[1, 2]"])
def test_a_password_that_is_not_a_json_object_is_a_token(password: str) -> None:
    cfg = client_config_from_connection(api_conn(password))
    assert cfg.token == password and cfg.oauth is None


@pytest.mark.parametrize(
    ("password", "extra", "message"),
    [
        ('{"refresh_token": "rt-1", "client_id": "c"}', None, "missing client_secret"),
        ('{"refresh_token": "rt-1", ', None, "not valid JSON"),
        (json.dumps(OAUTH), {"refresh_token": "rt-old"}, "remove refresh_token from extra"),
        ("", {"refresh_token": "rt-1"}, "missing client_id, client_secret"),
        ("", {}, "has no password"),
    ],
)
def test_incomplete_oauth_gives_a_clear_error_without_the_values(
    password: str, extra: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(ConnectionConfigError, match=message) as err:
        client_config_from_connection(api_conn(password, extra=extra))
    assert "rt-1" not in str(err.value) and "rt-old" not in str(err.value)


@pytest.mark.parametrize(
    ("env", "extra", "message"),
    [
        (
            {"LIGHTSPEED_PAGE_SIZE": "many"},
            None,
            "environment variable LIGHTSPEED_PAGE_SIZE must be a number, got 'many'",
        ),
        ({}, {"page_size": "many"}, "connection `lightspeed_api`: extra 'page_size' must be a number, got 'many'"),
        ({"LIGHTSPEED_BACKOFF_MAX": "1m"}, None, "environment variable LIGHTSPEED_BACKOFF_MAX must be a number"),
        ({"LIGHTSPEED_PAGE_SIZE": "0"}, None, "environment variable LIGHTSPEED_PAGE_SIZE must be at least 1"),
        ({"LIGHTSPEED_TIMEOUT": "soon"}, None, "environment variable LIGHTSPEED_TIMEOUT must be a number"),
    ],
)
def test_bad_numbers_say_which_setting_is_wrong(
    env: dict[str, str], extra: dict[str, Any] | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConnectionConfigError) as err:
        client_config_from_connection(api_conn(extra=extra))
    assert message in str(err.value)


# -- lightspeed_postgres: libpq pass-through ------------------------------------------------------


def test_libpq_extras_pass_through_and_postgres_hook_keys_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    libpq = {
        "sslmode": "require",
        "options": "-c statement_timeout=60000",
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "target_session_attrs": "read-write",
        "gssencmode": "disable",
        "connect_timeout": 10,
    }
    extra = {
        **libpq,
        # PostgresHook's own: ignored without a word
        "cursor": "dictcursor",
        "iam": False,
        "aws_conn_id": "aws_default",
        "sqlalchemy_scheme": "postgresql+psycopg",
        "enable_log_db_messages": True,
        "redshift": False,
    }
    with caplog.at_level(logging.WARNING):
        kwargs, settings = connect_kwargs_from_airflow(pg_conn(extra))
    assert warnings_of(caplog) == []
    assert kwargs == {
        "host": "db.example",
        "port": 5432,
        "user": "sync",
        "password": "pg-password-0123456789",
        "dbname": "postgres",
        **libpq,
        "application_name": "lightspeed_sync",
    }
    assert (settings.statement_timeout, settings.lock_timeout) == ("15min", "60s")
    assert connect_kwargs_from_airflow(pg_conn({"application_name": "etl"}))[0]["application_name"] == "etl"


def test_an_unknown_postgres_extra_key_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        kwargs, _ = connect_kwargs_from_airflow(pg_conn({"sslmode": "disable", "ssl_mode": "verify-full"}))
    assert "ssl_mode" not in kwargs and kwargs["sslmode"] == "disable"
    (msg,) = warnings_of(caplog)
    assert "'ssl_mode'" in msg and "not a libpq connection parameter" in msg and "verify-full" not in msg


def test_db_timeouts_from_the_environment_and_deprecated_extra(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIGHTSPEED_STATEMENT_TIMEOUT", "20min")
    monkeypatch.setenv("LIGHTSPEED_LOCK_TIMEOUT", "5s")
    with caplog.at_level(logging.WARNING):
        kwargs, settings = connect_kwargs_from_airflow(pg_conn({}))
    assert (settings.statement_timeout, settings.lock_timeout) == ("20min", "5s")
    assert "statement_timeout" not in kwargs and warnings_of(caplog) == []

    with caplog.at_level(logging.WARNING):
        kwargs, settings = connect_kwargs_from_airflow(pg_conn({"lock_timeout": "1s"}))
        connect_kwargs_from_airflow(pg_conn({"lock_timeout": "1s"}))
    assert (settings.statement_timeout, settings.lock_timeout) == ("20min", "1s")  # the extra key wins
    assert "lock_timeout" not in kwargs
    (msg,) = warnings_of(caplog)
    assert "'lock_timeout' is deprecated" in msg and "LIGHTSPEED_LOCK_TIMEOUT" in msg and "PostgresHook" in msg


@pytest.mark.parametrize(
    ("env", "extra", "message"),
    [
        ("abc", {}, "environment variable LIGHTSPEED_STATEMENT_TIMEOUT must be a duration"),
        (None, {"statement_timeout": "1 minute"}, "extra 'statement_timeout' must be a duration"),
    ],
)
def test_a_bad_db_timeout_names_the_setting(
    env: str | None, extra: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if env is not None:
        monkeypatch.setenv("LIGHTSPEED_STATEMENT_TIMEOUT", env)
    with pytest.raises(ValueError, match=message):
        connect_kwargs_from_airflow(pg_conn(extra))


def test_a_bad_db_setting_fails_the_task_without_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """No retry fixes a typo: the operators' warehouse opener turns it into AirflowFailException."""
    from airflow.sdk.exceptions import AirflowFailException
    from lightspeed_pipeline.operators import open_warehouse

    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_POSTGRES", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("LIGHTSPEED_LOCK_TIMEOUT", "a minute")
    with pytest.raises(AirflowFailException, match="LIGHTSPEED_LOCK_TIMEOUT"):
        open_warehouse("lightspeed_postgres")


# -- HttpHook on lightspeed_api: what reaches the server -----------------------------------------


@pytest.fixture
def receiver() -> Iterator[ScriptedServer]:
    """A real HTTP server recording every request's headers."""
    server = ScriptedServer(lambda path, query: ok({"data": {}}))
    yield server
    server.close()


def http_hook_headers(receiver: ScriptedServer, password: str, extra: dict[str, Any] | None) -> dict[str, str]:
    """The headers Airflow's stock HttpHook sends on `lightspeed_api` (one real GET)."""
    from airflow.providers.http.hooks.http import HttpHook

    conn = {"conn_type": "http", "host": receiver.url, "password": password}
    if extra is not None:
        conn["extra"] = extra
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_LIGHTSPEED_API", json.dumps(conn))
        before = len(receiver.requests)
        HttpHook(method="GET", http_conn_id="lightspeed_api").run("/api/2.0/retailer")
    (request,) = receiver.requests[before:]
    return {k.lower(): v for k, v in request["headers"].items()}


def leaks(headers: dict[str, str]) -> list[str]:
    """Headers carrying a secret, one of our keys, or any credentials."""
    ours = {*API_SETTING_KEYS, *OAUTH, *DB_SETTING_KEYS} - {"timeout"}
    return sorted(
        k for k, v in headers.items() if k in ours or k == "authorization" or any(s in k or s in v for s in SECRETS)
    )


@pytest.mark.parametrize("password", [TOKEN, json.dumps(OAUTH)], ids=["token", "oauth-json"])
def test_http_hook_sends_nothing_of_the_recommended_form(
    receiver: ScriptedServer, password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in TUNING.items():  # the tuning lives in the environment
        monkeypatch.setenv(f"LIGHTSPEED_{key.upper()}", value)
    headers = http_hook_headers(receiver, password, {"timeout": 30})
    assert leaks(headers) == []
    assert set(headers) <= {"host", "user-agent", "accept-encoding", "accept", "connection"}
    # ...and the same connection drives the sync.
    cfg = client_config_from_connection(api_conn(password, extra={"timeout": 30}))
    assert cfg.page_size == 25 and cfg.timeout == 30.0


def test_http_hook_would_send_the_deprecated_extra_as_headers(receiver: ScriptedServer) -> None:
    """Why the old form is deprecated: every key HttpHook does not know becomes a header."""
    headers = http_hook_headers(receiver, TOKEN, {**OAUTH, "page_size": "50", "max_retries": "8", "timeout": 30})
    assert headers["refresh_token"] == OAUTH["refresh_token"]
    assert headers["client_secret"] == OAUTH["client_secret"]
    assert headers["page_size"] == "50" and headers["max_retries"] == "8"
    assert "timeout" not in headers  # the one key HttpHook consumes
    assert leaks(headers) == ["client_id", "client_secret", "max_retries", "page_size", "refresh_token"]


def test_http_hook_sends_the_password_as_basic_auth_only_with_a_login(receiver: ScriptedServer) -> None:
    """Why the recommended form leaves `login` empty."""
    from airflow.providers.http.hooks.http import HttpHook

    with pytest.MonkeyPatch.context() as mp:
        conn = {"conn_type": "http", "host": receiver.url, "login": "me", "password": TOKEN}
        mp.setenv("AIRFLOW_CONN_LIGHTSPEED_API", json.dumps(conn))
        HttpHook(method="GET", http_conn_id="lightspeed_api").run("/api/2.0/retailer")
    assert receiver.requests[-1]["headers"]["Authorization"].startswith("Basic ")


# -- the one URL helper (the API's store URL and the alerts' webhook) ---------------------------


@pytest.mark.parametrize(
    ("fields", "from_type", "url"),
    [
        ({"host": "https://mystore.retail.lightspeed.app/"}, False, "https://mystore.retail.lightspeed.app/"),
        ({"host": "http://127.0.0.1", "port": 8080}, False, "http://127.0.0.1:8080"),
        ({"host": "http://127.0.0.1:9000", "port": 8080}, False, "http://127.0.0.1:9000"),  # the URL's port wins
        ({"host": "mystore.retail.lightspeed.app"}, False, "https://mystore.retail.lightspeed.app"),
        ({"host": "localhost", "schema": "http", "port": 5000}, False, "http://localhost:5000"),  # HttpHook's scheme
        ({"host": "hooks.slack.com", "schema": "services/T/B/X"}, False, "https://hooks.slack.com/services/T/B/X"),
        ({"host": "hooks.internal", "conn_type": "http"}, True, "http://hooks.internal"),  # the webhook's type
        ({"host": "hooks.internal", "conn_type": "http"}, False, "https://hooks.internal"),  # not the API's
        ({"host": ""}, False, None),
    ],
)
def test_connection_url(fields: dict[str, Any], from_type: bool, url: str | None) -> None:
    from types import SimpleNamespace

    from lightspeed_pipeline.connections import connection_url

    conn = SimpleNamespace(**{"schema": None, "port": None, "conn_type": "http", **fields})
    assert connection_url(conn, scheme_from_type=from_type) == url


# -- the API version: the variable, a base path that names one, the database's ---------------------


def test_a_base_path_naming_a_version_sets_it_and_conflicts_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIGHTSPEED_API_VERSION", raising=False)
    # Nothing says: the database's version (the tasks pass it), else 2.0.
    assert client_config_from_connection(api_conn(), "2026-07").api_base_path == "/api/2026-07"
    assert client_config_from_connection(api_conn()).api_version == "2.0"
    # The deprecated extra key (still honoured) names 2.0: that wins over the database's default.
    cfg = client_config_from_connection(api_conn(extra={"api_base_path": "/api/2.0"}), "2026-07")
    assert (cfg.api_version, cfg.api_base_path) == ("2.0", "/api/2.0")
    # A proxy path names no version: the version comes from elsewhere, the path stays.
    monkeypatch.setenv("LIGHTSPEED_API_BASE_PATH", "/proxy/lightspeed")
    cfg = client_config_from_connection(api_conn(), "2026-07")
    assert (cfg.api_version, cfg.api_base_path) == ("2026-07", "/proxy/lightspeed")
    # The variable wins over the database; a base path naming another version is an error.
    monkeypatch.setenv("LIGHTSPEED_API_VERSION", "2.0")
    assert client_config_from_connection(api_conn(), "2026-07").api_version == "2.0"
    monkeypatch.setenv("LIGHTSPEED_API_BASE_PATH", "/api/2026-07")
    with pytest.raises(ConnectionConfigError, match=r"says API 2\.0, but the base path '/api/2026-07' names 2026-07"):
        client_config_from_connection(api_conn())
