"""The settings module: one declaration per variable, one rule for a bad value, docs generated from it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from lightspeed_pipeline import settings
from lightspeed_pipeline.api.client import ClientConfig
from lightspeed_pipeline.settings import SETTINGS, Setting, SettingError
from lightspeed_pipeline.warehouse import DbSettings

from devtools.docs import CONFIGURATION, rendered


def test_the_docs_table_is_generated_from_the_settings() -> None:
    text = CONFIGURATION.read_text()
    assert rendered(text) == text, "docs/configuration.md is out of date: run python -m devtools.docs"
    for setting in SETTINGS:
        assert f"| `{setting.env}` |" in text


def test_every_variable_is_declared_once_and_the_defaults_are_the_code_defaults() -> None:
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert all(s.env.startswith("LIGHTSPEED_") and s.key == s.key.lower() for s in SETTINGS)
    client = {f.name: f.default for f in dataclasses.fields(ClientConfig)}
    for setting in settings.API_SETTINGS:
        if setting.key not in ("token_url", "api_base_path"):  # derived from the host / the version when unset
            assert client[setting.key] == setting.default, setting.key
    db = {f.name: f.default for f in dataclasses.fields(DbSettings)}
    for setting in (*settings.DB_SETTINGS, settings.SCHEMA):
        assert db[setting.key] == setting.default, setting.key


@pytest.mark.parametrize(
    ("setting", "raw", "value"),
    [
        (settings.PAGE_SIZE, " 250 ", 250),
        (settings.PAGE_SIZE, "1e3", 1000),
        (settings.TIMEOUT, "7.5", 7.5),
        (settings.RECONCILE_DAYS, "-1", -1.0),  # <= 0: only on a full refresh
        (settings.PREFETCH, "Off", False),
        (settings.PREFETCH, "yes", True),
        (settings.LOCK_BUSY, "skip", "skip"),
        (settings.LOCK_TIMEOUT, "250ms", "250ms"),
        (settings.SYNC_SCHEDULE, "0 3 * * 1-5", "0 3 * * 1-5"),
        (settings.API_VERSION, "2026-07", "2026-07"),
        (settings.API_VERSION, "2.0", "2.0"),
        (settings.ENTITIES_DISABLED, " brands, outlets,,brands ", ("brands", "outlets")),
    ],
)
def test_good_values_are_typed(setting: Setting, raw: str, value: Any) -> None:
    typed = setting.parse(raw)
    assert typed == value and type(typed) is type(value)


@pytest.mark.parametrize(
    ("setting", "raw", "says"),
    [
        (settings.PAGE_SIZE, "0", "must be at least 1, got '0'"),
        (settings.PAGE_SIZE, "2.5", "must be a whole number, got '2.5'"),
        (settings.TASK_RETRIES, "two", "must be a number, got 'two'"),
        (settings.TIMEOUT, "-1", "must be at least 0, got '-1'"),
        (settings.TIMEOUT, "inf", "must be a finite number, got 'inf'"),
        (settings.PREFETCH, "maybe", "must be true or false"),
        (settings.LOCK_BUSY, "later", "must be one of wait, skip, got 'later'"),
        (settings.STATEMENT_TIMEOUT, "1 minute", "must be a duration such as 15min"),
        (settings.RUN_DEADLINE_MIN, "soon", "must be a number, got 'soon'"),
        (settings.API_VERSION, "2026-13", "must be an API version: 2.0 or a dated one, YYYY-MM"),
        (settings.API_VERSION, "3.0", "must be an API version"),
        (
            settings.ENTITIES_DISABLED,
            "brands,gift_vouchers",
            "must be `none` or a comma-separated list of entity names: outlets,",
        ),
        (settings.HISTORY, "gift_cards", "must be `none` or a comma-separated list of entity names: outlets,"),
        (settings.HISTORY_RETENTION_DAYS, "-1", "must be at least 0, got '-1'"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_accepts(
    setting: Setting, raw: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(setting.env, raw)
    with pytest.raises(SettingError) as err:
        setting.read()
    assert str(err.value).startswith(f"environment variable {setting.env} {says}")
    assert err.value.permanent


def test_unset_or_blank_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env, raising=False)
        assert setting.read() == setting.default
        monkeypatch.setenv(setting.env, "  ")
        assert setting.read() == setting.default


def test_a_bad_task_setting_fails_the_task_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read when the task runs, before anything is opened: AirflowFailException (no retry)."""
    from airflow.sdk.exceptions import AirflowFailException
    from lightspeed_pipeline.operators import EntitySyncOperator

    operator = EntitySyncOperator(task_id="sync", entity="brands")
    for name, raw in (
        ("LIGHTSPEED_LOCK_WAIT_S", "an hour"),
        ("LIGHTSPEED_LOCK_BUSY", "later"),
        ("LIGHTSPEED_ENTITIES_DISABLED", "brand"),
    ):
        with monkeypatch.context() as env:
            env.setenv(name, raw)
            with pytest.raises(AirflowFailException, match=f"environment variable {name} must be"):
                operator.execute({"params": {}})


def test_a_disabled_entity_skips_its_sync_before_opening_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowSkipException
    from lightspeed_pipeline.operators import EntitySyncOperator

    monkeypatch.setenv("LIGHTSPEED_ENTITIES_DISABLED", "brands")
    with pytest.raises(AirflowSkipException, match="brands is disabled by LIGHTSPEED_ENTITIES_DISABLED"):
        EntitySyncOperator(task_id="sync", entity="brands").execute({"params": {}})


def test_the_schedule_interval_is_the_longest_gap() -> None:
    assert settings.schedule_interval_s("@daily") == 86400
    assert settings.schedule_interval_s("0 3 * * 1-5") == 3 * 86400  # Friday to Monday
    assert settings.schedule_interval_s("not a cron") is None and settings.schedule_interval_s(None) is None
