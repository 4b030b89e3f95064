"""Alerts: a failed entity, a run not finished in time, a stale entity -> one JSON POST each.

Target: the Airflow connection `lightspeed_alerts` (type http). Its `host` is the webhook URL
(a Slack or Teams incoming webhook, or any endpoint taking a JSON POST), written in full in
the JSON form (`{"conn_type": "http", "host": "https://hooks.slack.com/services/..."}`); the
URI form works too (`https://hooks.slack.com/services/...`: host + path). Optional `login` and
`password` are sent as HTTP basic auth, a `password` alone as `Authorization: Bearer ...`;
`extra` is not used. No such connection: alerts are off (said once per process at INFO). A
webhook that fails or cannot be reached logs a WARNING; an alert never fails a task.

Body: `{"text": "<message>"}` (what Slack and Teams show) plus the same facts as fields:
`kind` (`entity_failed` | `deadline_missed` | `stale`), `entity`, `dag_id`, `run_id`, `task_id`,
`error` (one line, at most 300 characters), `log_url` (the task's log page in the Airflow UI;
for a late run, the run's page). No token, password, DSN or webhook URL goes into it: the
error line is run through Airflow's secrets masker, after the secrets of the project's
connections (and the webhook URL) are registered with it, and through patterns for URI
passwords, `password=...`, bearer tokens and Lightspeed personal tokens.

Where each alert comes from:
- `entity_failed`: `LightspeedAlertNotifier`, the `on_failure_callback` of `migrate` and of
  every `sync` task. Airflow calls it once the last try failed (a retry calls
  `on_retry_callback`), in the task's own process (or in the dag-processor when the task
  process died). Entities skipped because an upstream entity failed (`upstream_failed`) never
  ran, so they send nothing; neither does `finalize`, which fails whenever an entity failed.
- `deadline_missed`: `run_deadline()`, a `DeadlineAlert` on the DAG: the run's logical date (a
  scheduled run's time) + LIGHTSPEED_RUN_DEADLINE_MIN minutes (unset, empty or 0: no deadline).
  The scheduler checks deadlines in its loop, also for a run it never started (a paused DAG, the
  previous run still going), and hands `deadline_missed` (an AsyncCallback) to the triggerer.
  Airflow 3.3 drops the deadline of a run that succeeds in time but not of one that failed
  (apache/airflow#60927): such a run was already reported by its failed entities, so a run that
  ended before its deadline sends nothing. Why not the run's queued time and why off by default:
  Airflow 3.3.2 bugs, see `run_deadline`.
- `stale`: `LightspeedStaleNotifier`, the success and failure callback of `finalize`: every
  entity `sync_health` rates `ALERT` for staleness (no successful sync for too long, or never)
  rather than because its latest sync failed; an entity whose sync failed or was blocked by a
  failed upstream in this run is left to that run's `entity_failed` alert. At most one per
  entity per STALE_REPEAT (24 h): a sent one is recorded in sync_log (action `alert`, status
  `stale`), so an hourly schedule does not repeat it every hour.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import BaseNotifier

from lightspeed_pipeline import settings
from lightspeed_pipeline.connections import connection_url, mask_secret
from lightspeed_pipeline.settings import ALERTS_CONN_ID, API_CONN_ID, POSTGRES_CONN_ID
from lightspeed_pipeline.taskinfo import FAILED_STATES, run_path, sync_task_states, task_log_path

log = logging.getLogger(__name__)

# Connections whose secrets must never reach a message (besides the alerts connection itself).
SECRET_CONN_IDS = (API_CONN_ID, POSTGRES_CONN_ID)
MAX_ERROR_CHARS = 300
TIMEOUT_S = 10.0
ATTEMPTS = 2  # a 5xx, 429 or network error is tried once more after RETRY_DELAY_S
RETRY_DELAY_S = 1.0
_MASK = "***"
_SENSITIVE_KEY = re.compile(r"pass|secret|token|key|credential|auth|private|cert", re.I)
_PATTERNS = (
    # scheme://user:PASSWORD@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{_MASK}@"),
    # password=..., "token": "...", client_secret: ... (libpq DSNs, JSON, query strings)
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|client_secret|token|access_token|refresh_token|api_?key)"
            r"(\"?\s*[:=]\s*\"?)([^\s\"'&,;}]+)"
        ),
        rf"\1\2{_MASK}",
    ),
    # Authorization values: a credential has a digit, a symbol or an inner capital ("Basic auth" stays)
    (
        re.compile(r"\b([Bb]earer|[Bb]asic|BEARER|BASIC)\s+(?=\S*[0-9._~+/=-]|\S+[A-Z])[A-Za-z0-9._~+/=-]{6,}"),
        rf"\1 {_MASK}",
    ),
    (re.compile(r"\blsxs_[a-z]{2}_[A-Za-z0-9_-]+"), _MASK),  # Lightspeed personal access tokens
)
_off_logged: set[str] = set()


# ---- the message ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """One alert; `payload()` is the JSON body posted to the webhook."""

    kind: str
    dag_id: str
    run_id: str | None
    entity: str | None
    task_id: str | None
    error: str
    log_url: str | None

    def text(self) -> str:
        if self.kind == "entity_failed":
            what = f"entity {self.entity} failed"
            if self.entity == "all":  # migrate
                what = f"{self.task_id} failed, no entity synced"
            head = f"Lightspeed sync: {what} in run {self.run_id} ({self.dag_id}): {self.error}"
            link = "Log"
        elif self.kind == "deadline_missed":
            head = f"Lightspeed sync: run {self.run_id} of {self.dag_id} is late: {self.error}"
            link = "Run"
        else:
            head = f"Lightspeed sync: entity {self.entity} is stale: {self.error} (run {self.run_id}, {self.dag_id})"
            link = "Log"
        return f"{head}\n{link}: {self.log_url}" if self.log_url else head

    def payload(self) -> dict[str, Any]:
        return {"text": self.text(), **asdict(self)}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` without the given secrets, what Airflow's secrets masker knows, and secret-looking parts."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, _MASK)
    try:
        from airflow.sdk.log import redact

        text = str(redact(text))
    except Exception:  # pragma: no cover - masking is best effort; the patterns below still apply
        pass
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def one_line_error(error: BaseException | str | None, secrets: Iterable[str] = ()) -> str:
    """The error's first line (with its class, unless a generic Airflow wrapper), secrets masked,
    at most MAX_ERROR_CHARS characters."""
    if error is None or error == "":
        line = "no error was reported (the task process may have been killed or lost its heartbeat)"
    elif isinstance(error, BaseException):
        lines = str(error).strip().splitlines()
        first = lines[0].strip() if lines else ""
        name = type(error).__name__
        if not first:
            line = name
        elif name in ("AirflowException", "AirflowFailException"):  # the operators' wrappers: say nothing
            line = first
        else:
            line = f"{name}: {first}"
    else:
        lines = str(error).strip().splitlines()
        line = lines[0].strip() if lines else ""
    line = scrub(line, secrets)  # before trimming: a cut secret would no longer match
    if len(line) > MAX_ERROR_CHARS:
        line = line[: MAX_ERROR_CHARS - 1].rstrip() + "…"
    return line


def ui_url(path: str) -> str:
    """A page of the Airflow UI (`path` from `taskinfo`), under `[api] base_url` (what the task
    SDK's `ti.log_url` uses)."""
    try:
        from airflow.sdk.configuration import conf

        base = conf.get("api", "base_url", fallback="") or ""
    except Exception:  # pragma: no cover
        base = ""
    return (base or "http://localhost:8080/").rstrip("/") + path


def task_log_url(ti: Any, dag_id: str, run_id: str | None, task_id: str | None) -> str | None:
    """The task instance's log page: `ti.log_url` (the task SDK's, with the try), else built here."""
    try:
        url = getattr(ti, "log_url", None)
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            return url
    except Exception:
        pass
    if not (run_id and task_id):
        return None
    return ui_url(task_log_path(dag_id, run_id, task_id, getattr(ti, "try_number", None)))


def failure_alert(context: Mapping[str, Any], secrets: Iterable[str] = ()) -> Alert:
    """The `entity_failed` alert of a task's failure callback context."""
    ti = context.get("ti") or context.get("task_instance")
    task = context.get("task") or getattr(ti, "task", None)
    dag = context.get("dag")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", None)
    entity = getattr(task, "entity", None)
    if not isinstance(entity, str):
        group, dot, _ = str(task_id or "").partition(".")
        entity = group if dot else "all"  # migrate: no entity synced in this run
    return Alert(
        kind="entity_failed",
        dag_id=dag_id,
        run_id=str(run_id) if run_id else None,
        entity=entity,
        task_id=str(task_id) if task_id else None,
        error=one_line_error(context.get("exception"), secrets),
        log_url=task_log_url(ti, dag_id, run_id, task_id),
    )


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            return _when(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _shown(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "?"


def deadline_alert(context: Mapping[str, Any] | None, minutes: float | None) -> Alert | None:
    """The `deadline_missed` alert from a deadline callback's context (`dag_run`: the run as the
    REST API shows it, `deadline`: its id and time); None when the run ended before the deadline."""
    context = context or {}
    run = context.get("dag_run") or {}
    deadline_at = _when((context.get("deadline") or {}).get("deadline_time"))
    state = str(run.get("state") or "unknown")
    ended = _when(run.get("end_date"))
    if state in ("success", "failed") and ended is not None and (deadline_at is None or ended <= deadline_at):
        return None  # it finished in time (a failure is reported by its entities)
    dag_id = str(run.get("dag_id") or "?")
    run_id = run.get("dag_run_id") or run.get("run_id")
    limit = f"{minutes:g} min" if minutes else "the deadline"
    queued = _when(run.get("queued_at"))
    if deadline_at is not None and queued is not None and queued > deadline_at:
        now = f"the run was only created at {_shown(queued)} (the DAG paused, or the scheduler down)"
    elif run.get("start_date") is None:
        now = "it never started (still queued: the DAG paused, or the previous run still going)"
    elif ended is None:
        now = f"still {state} at the deadline"
    else:
        now = f"ended {state} at {_shown(ended)}, after the deadline"
    scheduled = _shown(_when(run.get("logical_date")))
    error = f"not finished within {limit} of its logical date {scheduled}; {now}"
    return Alert(
        kind="deadline_missed",
        dag_id=dag_id,
        run_id=str(run_id) if run_id else None,
        entity=None,
        task_id=None,
        error=one_line_error(error),
        log_url=ui_url(run_path(dag_id, str(run_id)) if run_id else f"/dags/{dag_id}"),
    )


STALE_REPEAT = timedelta(hours=24)


def stale_alerts(
    rows: Sequence[Mapping[str, Any]],
    sync_states: Mapping[str, str],
    *,
    dag_id: str,
    run_id: str | None,
    task_id: str | None,
    log_url: str | None,
    now: datetime | None = None,
) -> list[Alert]:
    """One `stale` alert per `sync_health` row rated ALERT for staleness, except entities whose
    latest sync failed (`status` failed), whose sync failed or was blocked in this run, or that
    were alerted as stale less than STALE_REPEAT ago (`last_stale_alert`)."""
    now = now or datetime.now(UTC)
    out = []
    for row in rows:
        entity = str(row["entity_type"])
        if row.get("sync_status") not in (None, "ALERT") or row.get("status") == "failed":
            continue
        if sync_states.get(entity) in FAILED_STATES:
            continue
        alerted = _when(row.get("last_stale_alert"))
        if alerted is not None and now - alerted < STALE_REPEAT:
            continue
        last = _when(row.get("last_successful_sync"))
        reason = str(row.get("health_reason") or "no recent successful sync")
        error = f"{reason} (last success {_shown(last)})" if last else reason
        out.append(Alert("stale", dag_id, run_id, entity, task_id, one_line_error(error), log_url))
    return out


# ---- the target ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where alerts go; repr hides the URL (a Slack webhook URL is a secret)."""

    url: str = field(repr=False)
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    conn_id: str = ALERTS_CONN_ID


def _get_connection(conn_id: str) -> Any | None:
    """The connection, or None when it is not defined (anything else raises)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def webhook_url_secrets(url: str) -> set[str]:
    """A webhook URL is a credential (Slack's, Teams'): the URL, its path and query, and their
    long parts (the token in .../services/T.../B.../<token>)."""
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    out = {url, tail} if len(tail) >= 8 else {url}
    out.update(p for p in re.split(r"[/?&=]", tail) if len(p) >= 16)
    return out


def webhook_target(conn_id: str = ALERTS_CONN_ID) -> Target | None:
    """The configured webhook; None (alerts off) when the connection does not exist or is unusable."""
    try:
        conn = _get_connection(conn_id)
    except Exception as exc:
        log.warning("alerts: connection `%s` could not be read (%s); alert not sent", conn_id, type(exc).__name__)
        return None
    if conn is None:
        if conn_id not in _off_logged:
            _off_logged.add(conn_id)
            log.info("alerts are off: no connection `%s` (its host would be the webhook URL)", conn_id)
        return None
    url = connection_url(conn, scheme_from_type=True)
    if not url or not url.startswith(("http://", "https://")):
        log.warning("alerts: connection `%s` has no http(s) webhook URL in its host; alert not sent", conn_id)
        return None
    for secret in webhook_url_secrets(url):
        mask_secret(secret)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "lightspeed-airflow-alerts"}
    if conn.password:
        mask_secret(conn.password)
        if conn.login:
            pair = base64.b64encode(f"{conn.login}:{conn.password}".encode()).decode()
            headers["Authorization"] = f"Basic {pair}"
        else:
            headers["Authorization"] = f"Bearer {conn.password}"
    return Target(url=url, headers=headers, conn_id=conn_id)


def connection_secrets(conn_ids: Iterable[str]) -> set[str]:
    """Passwords (and the values inside a JSON password), secret-named extra values and the
    webhook URL of these connections, registered with Airflow's masker and returned."""
    out: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 4:
            out.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                add(v)

    for conn_id in dict.fromkeys(conn_ids):
        try:
            conn = _get_connection(conn_id)
        except Exception:
            continue
        if conn is None:
            continue
        password = conn.password or ""
        add(password)
        if password.strip().startswith("{"):
            try:
                add(json.loads(password))
            except ValueError:
                pass
        try:
            extra = json.loads(conn.extra) if conn.extra else {}
        except ValueError:
            extra = {}
        if isinstance(extra, dict):
            for key, value in extra.items():
                if _SENSITIVE_KEY.search(str(key)):
                    add(value if isinstance(value, str | dict) else str(value))
        if conn_id == ALERTS_CONN_ID and (url := connection_url(conn, scheme_from_type=True)):
            out.update(webhook_url_secrets(url))
    for secret in out:
        mask_secret(secret)
    return out


def post(target: Target, body: Mapping[str, Any], *, timeout: float = TIMEOUT_S) -> bool:
    """POST `body` as JSON; False (and a warning naming no URL) when it was not accepted."""
    import urllib.error
    import urllib.request

    data = json.dumps(body, default=str).encode()
    problem = "nothing"
    for attempt in range(1, ATTEMPTS + 1):
        request = urllib.request.Request(target.url, data=data, headers=target.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                resp.read(4096)
            return True
        except urllib.error.HTTPError as exc:
            problem, again = f"HTTP {exc.code}", exc.code >= 500 or exc.code == 429
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            problem, again = scrub(f"{type(exc).__name__}: {reason}", webhook_url_secrets(target.url)), True
        if not again or attempt == ATTEMPTS:
            break
        time.sleep(RETRY_DELAY_S)
    log.warning(
        "alert %s not delivered: the webhook of connection `%s` answered %s", body.get("kind"), target.conn_id, problem
    )
    return False


def send(alert: Alert, target: Target) -> bool:
    ok = post(target, alert.payload())
    if ok:
        log.info("alert sent: %s %s (%s)", alert.kind, alert.entity or alert.run_id, alert.error)
    return ok


def send_alert(
    alert: Alert, *, conn_id: str = ALERTS_CONN_ID, secret_conn_ids: Iterable[str] = SECRET_CONN_IDS
) -> bool:
    """Send one alert to the connection's webhook; never raises. False: off or not delivered."""
    try:
        target = webhook_target(conn_id)
        return send(alert, target) if target is not None else False
    except Exception as exc:  # an alert must never fail a task or a callback
        log.warning("alert %s not sent: %s", alert.kind, scrub(f"{type(exc).__name__}: {exc}"))
        return False


# ---- Airflow: notifiers (task callbacks) and the deadline ----------------------------------------


class LightspeedAlertNotifier(BaseNotifier):
    """`on_failure_callback` of `migrate` and of each `sync`: an `entity_failed` alert."""

    def __init__(
        self, *, conn_id: str = ALERTS_CONN_ID, secret_conn_ids: Sequence[str] = SECRET_CONN_IDS, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.secret_conn_ids = tuple(secret_conn_ids)

    def notify(self, context: Any) -> None:
        try:
            target = webhook_target(self.conn_id)
            if target is None:
                return
            secrets = connection_secrets((*self.secret_conn_ids, self.conn_id))
            send(failure_alert(context, secrets), target)
        except Exception as exc:
            log.warning("failure alert not sent: %s", scrub(f"{type(exc).__name__}: {exc}"))


class LightspeedStaleNotifier(LightspeedAlertNotifier):
    """Success and failure callback of `finalize`: a `stale` alert per stale entity (see module doc)."""

    def __init__(self, *, postgres_conn_id: str = POSTGRES_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id

    def notify(self, context: Any) -> None:
        try:
            target = webhook_target(self.conn_id)
            if target is None:
                return  # off: not even a database query
            connection_secrets((*self.secret_conn_ids, self.conn_id))
            ti = context.get("ti")
            dag_id = str(getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?"))
            run_id = context.get("run_id") or getattr(ti, "run_id", None)
            task_id = getattr(ti, "task_id", None)
            alerts = stale_alerts(
                read_stale(self.postgres_conn_id),
                sync_task_states(ti, dag_id, run_id),
                dag_id=dag_id,
                run_id=run_id,
                task_id=task_id,
                log_url=task_log_url(ti, dag_id, run_id, task_id),
            )
            sent = [alert.entity for alert in alerts if send(alert, target)]
            if sent:
                record_stale_alerts(self.postgres_conn_id, [e for e in sent if e], run_id)
        except Exception as exc:
            log.warning("stale alerts not sent: %s", scrub(f"{type(exc).__name__}: {exc}"))


def read_stale(postgres_conn_id: str) -> list[dict[str, Any]]:
    """`sync_health` rows rated ALERT whose latest sync did not fail (the read model's `stale`)."""
    from lightspeed_pipeline.hooks import LightspeedPostgresHook
    from lightspeed_pipeline.warehouse.reads import ReadModel

    with LightspeedPostgresHook(postgres_conn_id).get_warehouse() as warehouse:
        return ReadModel(warehouse).stale()


def record_stale_alerts(postgres_conn_id: str, entities: Sequence[str], run_id: str | None) -> None:
    """Note in sync_log that these entities were alerted as stale (so the next runs hold off)."""
    from lightspeed_pipeline.hooks import LightspeedPostgresHook
    from lightspeed_pipeline.warehouse.ledger import SyncLedger

    with LightspeedPostgresHook(postgres_conn_id).get_warehouse() as warehouse:
        ledger = SyncLedger(warehouse)
        for entity in entities:
            ledger.log_event(entity, "alert", "stale", metadata={"run_id": run_id, "kind": "stale"})


async def deadline_missed(
    context: dict[str, Any] | None = None,
    *,
    conn_id: str = ALERTS_CONN_ID,
    minutes: float | None = None,
    secret_conn_ids: Sequence[str] = SECRET_CONN_IDS,
) -> str:
    """The DAG's deadline callback (an AsyncCallback: runs in the triggerer). Returns what it did
    (Airflow stores it as the callback's output)."""
    alert = deadline_alert(context, minutes)
    if alert is None:
        return "not sent: the run ended before its deadline"

    def deliver() -> bool:
        # The connection lookups are synchronous SDK calls: off the triggerer's event loop.
        connection_secrets((*secret_conn_ids, conn_id))
        return send_alert(alert, conn_id=conn_id, secret_conn_ids=())

    sent = await asyncio.to_thread(deliver)
    return "sent" if sent else "not sent (alerts off, or the webhook failed: see the triggerer log)"


def run_deadline(
    minutes: float | None = None,
    *,
    conn_id: str = ALERTS_CONN_ID,
    secret_conn_ids: Sequence[str] = SECRET_CONN_IDS,
) -> Any:
    """The DAG's `deadline`: logical date + `minutes` (None: from LIGHTSPEED_RUN_DEADLINE_MIN, read
    at parse time; a bad value fails the DAG's import), or None when off. Builds objects only:
    no connection or database is touched at parse time.

    Two Airflow 3.3.2 bugs shape this:
    - a `DAGRUN_QUEUED_AT` deadline makes clearing a failed run (how an entity is rerun) fail
      with HTTP 500 (apache/airflow#70368); `DAGRUN_LOGICAL_DATE` is not recalculated on a clear,
      so it is safe. A scheduled run's logical date is its scheduled time; a run triggered
      without one (REST `logical_date: null`, `airflow dags test`/`trigger` without a date)
      gets no deadline (Airflow logs a warning);
    - `dag.test()` / `airflow dags test` of a DAG with any deadline crashes once the run
      succeeded (apache/airflow#73428), which `make demo` and the integration tests use: hence
      no deadline unless LIGHTSPEED_RUN_DEADLINE_MIN is set (a deployment sets it in .env).
    """
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    if minutes is None:
        minutes = settings.run_deadline_minutes()
    if not minutes or minutes <= 0:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=timedelta(minutes=minutes),
        callback=AsyncCallback(
            deadline_missed,
            kwargs={"conn_id": conn_id, "minutes": minutes, "secret_conn_ids": list(secret_conn_ids)},
        ),
        name=f"run finished within {minutes:g} min of its logical date",
    )
