"""Every setting of the sync, declared once: the `LIGHTSPEED_*` environment variables, the
connection ids, the DAG id and the pool. Nothing else in the package reads the environment.

One rule for a bad value: `SettingError`, naming the variable and what it accepts. Where it
surfaces depends on when the setting is read (`Setting.read_by`):
* **task** (read when a task runs): the operators turn it into `AirflowFailException`, so
  the task fails at once instead of burning its retries (no retry fixes a typo);
* **parse** (read when the DAG file is parsed): it propagates out of `build_dag`, so the
  DAG does not import and Airflow shows the message as the DAG's import error.
Unset or blank means the default. `docs/configuration.md`'s table of variables is
`markdown_table()` (`python -m devtools.docs` rewrites it; a test checks it).
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lightspeed_pipeline.entities import HISTORY_DEFAULT, VERSIONED_NAMES
from lightspeed_pipeline.entities import NAMES as ENTITY_NAMES

API_CONN_ID = "lightspeed_api"
POSTGRES_CONN_ID = "lightspeed_postgres"
ALERTS_CONN_ID = "lightspeed_alerts"
DAG_ID = "lightspeed_sync"
POOL = "lightspeed_api"  # the Airflow pool of the sync tasks (pools.json)
PREFIX = "LIGHTSPEED_"

Kind = Literal["text", "int", "number", "bool", "duration", "choice", "version", "names"]
ReadBy = Literal["parse", "task", "parse, task, api-server"]

_DURATION = re.compile(r"\d+(\.\d+)?\s*(us|ms|s|min|h|d)?")  # PostgreSQL's units are case-sensitive
_API_VERSION = re.compile(r"2\.0|20\d\d-(0[1-9]|1[0-2])")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


class SettingError(ValueError):
    """A setting holds a value the sync cannot use; the message names it and what it accepts.

    `permanent`: no retry can fix it (the operators fail the task at once).
    """

    permanent = True


@dataclass(frozen=True)
class Setting:
    """One `LIGHTSPEED_<KEY>` environment variable."""

    key: str  # lower case: `page_size` is LIGHTSPEED_PAGE_SIZE (and the deprecated extra key, if any)
    kind: Kind
    default: Any
    read_by: ReadBy
    doc: str
    minimum: float | None = None
    choices: tuple[str, ...] = ()
    # The connection whose extra may still hold `key` (deprecated; the extra key wins): see connections.py.
    extra_of: str | None = None
    default_doc: str | None = None  # how the docs show a default that is not a plain value

    @property
    def env(self) -> str:
        return PREFIX + self.key.upper()

    def accepts(self) -> str:
        """What the setting accepts, as the error message and the docs say it."""
        if self.kind == "int":
            return "a whole number" + (f" of at least {self.minimum:g}" if self.minimum is not None else "")
        if self.kind == "number":
            return "a number" + (f" of at least {self.minimum:g}" if self.minimum is not None else "")
        if self.kind == "bool":
            return "true or false (also 1/0, yes/no, on/off)"
        if self.kind == "duration":
            return "a duration such as 15min, 60s or 30000 (milliseconds; 0: no limit)"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "version":
            return "an API version: 2.0 or a dated one, YYYY-MM (e.g. 2026-07)"
        if self.kind == "names":
            return "`none` or a comma-separated list of entity names: " + ", ".join(self.choices)
        return "text"

    def parse(self, raw: Any, source: str | None = None) -> Any:
        """The typed value of `raw`; `SettingError` naming `source` (default: the variable) when unusable."""
        source = source or f"environment variable {self.env}"
        text = str(raw).strip()

        def bad(why: str | None = None) -> SettingError:
            return SettingError(f"{source} must be {why or self.accepts()}, got {text!r}")

        if self.kind == "text":
            return text
        if self.kind == "bool":
            low = text.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise bad()
        if self.kind == "duration":
            if not _DURATION.fullmatch(text):
                raise bad()
            return text
        if self.kind == "choice":
            if text not in self.choices:
                raise bad()
            return text
        if self.kind == "version":
            if not _API_VERSION.fullmatch(text):
                raise bad()
            return text
        if self.kind == "names":
            if text.lower() == "none":
                return ()
            names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
            unknown = [n for n in names if n not in self.choices]
            if unknown:
                raise bad(f"{self.accepts()} (unknown: {', '.join(unknown)})")
            return names
        try:
            number = float(text)
        except ValueError:
            raise bad("a number") from None
        if not math.isfinite(number):
            raise bad("a finite number")
        if self.kind == "int":
            if not number.is_integer():
                raise bad("a whole number")
            number = int(number)
        if self.minimum is not None and number < self.minimum:
            raise bad(f"at least {self.minimum:g}")
        return number

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable's text, stripped; None when unset or blank."""
        value = (os.environ if environ is None else environ).get(self.env, "").strip()
        return value or None

    def read(self, environ: Mapping[str, str] | None = None) -> Any:
        """The typed value from the environment, or the default when unset or blank."""
        raw = self.raw(environ)
        return self.default if raw is None else self.parse(raw)


def _api(key: str, kind: Kind, default: Any, doc: str, **more: Any) -> Setting:
    """A tuning setting of the API client (formerly an extra key of `lightspeed_api`)."""
    return Setting(key, kind, default, "task", doc, extra_of=API_CONN_ID, **more)


SCHEMA = Setting(
    "schema", "text", "public", "parse, task, api-server",
    "the schema of the target database the tables live in (also in the Assets' URIs)",
)  # fmt: skip
SYNC_SCHEDULE = Setting("sync_schedule", "text", "@daily", "parse", "the DAG's schedule (cron or preset)")
TASK_RETRIES = Setting("task_retries", "int", 2, "parse", "Airflow retries of every task", minimum=0)
RETRY_DELAY_S = Setting(
    "retry_delay_s", "number", 60, "parse", "seconds before the first task retry, doubling up to 30 min", minimum=0
)
SYNC_TIMEOUT_H = Setting(
    "sync_timeout_h", "number", 12, "parse", "hours a `sync` task may run (`execution_timeout`)", minimum=0.01
)
RUN_DEADLINE_MIN = Setting(
    "run_deadline_min", "number", None, "parse",
    "alert when a run has not finished this many minutes after its logical date (`0`: off)",
    minimum=0, default_doc="unset: off",
)  # fmt: skip
LOCK_WAIT_S = Setting(
    "lock_wait_s", "number", 3600, "task", "how long a second sync of the same entity waits for the first", minimum=0
)
LOCK_BUSY = Setting(
    "lock_busy", "choice", "wait", "task",
    "`skip`: skip such a second sync at once instead of waiting", choices=("wait", "skip"),
)  # fmt: skip
RECONCILE_DAYS = Setting(
    "reconcile_days", "number", 7, "task",
    "how often inventory is listed in full to find removals (`0`: only on a full refresh)",
)  # fmt: skip
STATEMENT_TIMEOUT = Setting(
    "statement_timeout", "duration", "15min", "task",
    "`statement_timeout` of every sync transaction (a PostgreSQL duration)", extra_of=POSTGRES_CONN_ID,
)  # fmt: skip
LOCK_TIMEOUT = Setting(
    "lock_timeout", "duration", "60s", "task",
    "`lock_timeout` of every sync transaction (a PostgreSQL duration)", extra_of=POSTGRES_CONN_ID,
)  # fmt: skip
ENTITIES_DISABLED = Setting(
    "entities_disabled", "names", (), "task",
    "entities the store does not grant (or you do not want): never synced, shown as DISABLED on the health"
    " page, references to them not checked",
    choices=ENTITY_NAMES, default_doc="none",
)  # fmt: skip
HISTORY = Setting(
    "history", "names", HISTORY_DEFAULT, "task",
    "entities whose past versions are kept (history mode: `lightspeed_<entity>_history`); `none`: no entity",
    choices=VERSIONED_NAMES, default_doc=", ".join(HISTORY_DEFAULT),
)  # fmt: skip
HISTORY_RETENTION_DAYS = Setting(
    "history_retention_days", "number", 0, "task",
    "past versions that ended longer ago than this many days are removed by `finalize` (`0`: keep everything)",
    minimum=0,
)  # fmt: skip
API_VERSION = Setting(
    "api_version", "version", None, "task",
    "the Lightspeed API version the sync speaks (its base path: /api/<version>); unset: the version the"
    " database was filled with, 2026-07 for a new one; another value switches it",
    default_doc="the database's",
)  # fmt: skip
API_BASE_PATH = _api(
    "api_base_path", "text", None, "the API's base path, when not /api/<LIGHTSPEED_API_VERSION> (a proxy)",
    default_doc="/api/<version>",
)  # fmt: skip
PAGE_SIZE = _api("page_size", "int", 1000, "records per API page", minimum=1)
TIMEOUT = _api("timeout", "number", 60.0, "read timeout of one request, s", minimum=0)
CONNECT_TIMEOUT = _api("connect_timeout", "number", 10.0, "connect timeout of one request, s", minimum=0)
MAX_RETRIES = _api("max_retries", "int", 8, "retries per request", minimum=0)
BACKOFF_INITIAL = _api(
    "backoff_initial", "number", 1.0, "first backoff, s (capped exponential, with jitter)", minimum=0
)
BACKOFF_MAX = _api("backoff_max", "number", 60.0, "longest backoff, s", minimum=0)
RETRY_BUDGET_S = _api(
    "retry_budget_s", "number", 900.0, "total seconds one request may spend waiting to retry", minimum=0
)
MAX_RETRY_AFTER = _api("max_retry_after", "number", 600.0, "cap on a single `Retry-After` wait, s", minimum=0)
VERSION_OVERLAP = _api("version_overlap", "int", 0, "re-read this many versions below the stored cursor", minimum=0)
RATE_RESERVE = _api(
    "rate_reserve", "int", 3,
    "requests left to the other entity tasks before this one paces itself (the `lightspeed_api` pool's slots"
    " minus one)", minimum=0,
)  # fmt: skip
RATE_WINDOW_S = _api(
    "rate_window_s", "number", 300.0,
    "the rate-limit window when the API does not send `X-RateLimit-Window`, s", minimum=0,
)  # fmt: skip
PREFETCH = _api("prefetch", "bool", True, "fetch the next page while one is written")
TOKEN_URL = _api("token_url", "text", None, "the OAuth token endpoint", default_doc="<host>/api/1.0/token")

SETTINGS: tuple[Setting, ...] = (
    SCHEMA, SYNC_SCHEDULE, TASK_RETRIES, RETRY_DELAY_S, SYNC_TIMEOUT_H, RUN_DEADLINE_MIN,
    LOCK_WAIT_S, LOCK_BUSY, RECONCILE_DAYS, STATEMENT_TIMEOUT, LOCK_TIMEOUT,
    ENTITIES_DISABLED, HISTORY, HISTORY_RETENTION_DAYS,
    API_VERSION, API_BASE_PATH, PAGE_SIZE, TIMEOUT, CONNECT_TIMEOUT, MAX_RETRIES,
    BACKOFF_INITIAL, BACKOFF_MAX,
    RETRY_BUDGET_S, MAX_RETRY_AFTER, VERSION_OVERLAP, RATE_RESERVE, RATE_WINDOW_S, PREFETCH, TOKEN_URL,
)  # fmt: skip
BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}
# The API client's settings, each also a `ClientConfig` field of the same name.
API_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.extra_of == API_CONN_ID)
# Per-transaction database settings (`DbSettings` fields of the same name).
DB_SETTINGS: tuple[Setting, ...] = tuple(s for s in SETTINGS if s.extra_of == POSTGRES_CONN_ID)


def target_schema() -> str:
    """The schema all tables live in (`LIGHTSPEED_SCHEMA`, default `public`)."""
    return str(SCHEMA.read())


def schedule() -> str:
    return str(SYNC_SCHEDULE.read())


def schedule_interval_s(cron: str | None) -> float | None:
    """The longest gap between two runs of a cron or preset schedule (None: not a cron).

    sync_health warns when an entity's last success is older than this plus an hour, so a
    weekday-only schedule is judged by its weekend gap, not by its daily one.
    """
    if not cron or not isinstance(cron, str):
        return None
    from datetime import UTC, datetime

    from croniter import croniter

    try:
        it = croniter(cron, datetime(2025, 1, 1, tzinfo=UTC))
    except (ValueError, KeyError, TypeError):
        return None
    times = [it.get_next(datetime) for _ in range(60)]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(times))


def run_deadline_minutes() -> float | None:
    """LIGHTSPEED_RUN_DEADLINE_MIN; None (no deadline) when unset or 0."""
    value = RUN_DEADLINE_MIN.read()
    return float(value) if value else None


def _default_text(setting: Setting) -> str:
    if setting.default_doc is not None:
        return f"`{setting.default_doc}`" if "<" in setting.default_doc else setting.default_doc
    value = setting.default
    if isinstance(value, bool):
        value = str(value).lower()
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def _former(setting: Setting) -> str:
    if setting.extra_of == POSTGRES_CONN_ID:
        return f"postgres `{setting.key}`"
    if setting.key == "timeout":
        return "`timeout` (still fine in extra: `HttpHook` consumes it)"
    return f"`{setting.key}`" if setting.extra_of else ""


def markdown_table() -> str:
    """The table of variables in docs/configuration.md, from `SETTINGS`."""
    lines = [
        "| variable | default | read by | what | accepts | former extra key |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        accepts = s.accepts() if s.kind != "text" else "text"
        lines.append(f"| `{s.env}` | {_default_text(s)} | {s.read_by} | {s.doc} | {accepts} | {_former(s)} |")
    return "\n".join(lines) + "\n"


def disabled_entities() -> frozenset[str]:
    """The entities LIGHTSPEED_ENTITIES_DISABLED switches off (`SettingError` on an unknown name)."""
    return frozenset(ENTITIES_DISABLED.read())


def history_entities() -> frozenset[str]:
    """The entities LIGHTSPEED_HISTORY keeps the past versions of (`SettingError` on a bad name)."""
    return frozenset(HISTORY.read())
