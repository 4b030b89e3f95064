"""Alerts: the message (entity, one-line error, log link, no secret), off without a connection,
webhook failures swallowed, the deadline, stale selection, the DAG wiring. Over real HTTP: a
local receiver records every POST."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from lightspeed_pipeline import alerts
from lightspeed_pipeline.alerts import (
    Alert,
    LightspeedAlertNotifier,
    LightspeedStaleNotifier,
    deadline_alert,
    deadline_missed,
    one_line_error,
    run_deadline,
    stale_alerts,
)
from lightspeed_pipeline.api.errors import LightspeedAuthError
from lightspeed_pipeline.connections import connection_url
from lightspeed_pipeline.settings import RUN_DEADLINE_MIN, SettingError, run_deadline_minutes

from tests.conftest import TOKEN

PG_PASSWORD = "pg-Sup3r-s3cret-pw"
OAUTH_SECRET = "oauth-client-s3cret-42"
HOOK_SECRET = "webhook-path-s3cret-XYZ"
BASE = "http://airflow.example:8080"


class WebhookReceiver:
    """A real HTTP endpoint: records every POST (path, headers, JSON body); answers `statuses` in
    turn (then 200)."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.posts.append(
                        {"path": self.path, "headers": dict(self.headers), "raw": raw.decode(), "body": json.loads(raw)}
                    )
                    status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [p["body"] for p in self.posts]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Any:
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "_off_logged", set())
    monkeypatch.setattr(alerts, "RETRY_DELAY_S", 0.0)
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE)
    for name in ("AIRFLOW_CONN_LIGHTSPEED_ALERTS", "AIRFLOW_CONN_LIGHTSPEED_API", "AIRFLOW_CONN_LIGHTSPEED_POSTGRES"):
        monkeypatch.delenv(name, raising=False)


def configure(monkeypatch: pytest.MonkeyPatch, url: str, **conn: Any) -> None:
    """The three connections as a deployment has them: the webhook, the API token, the database."""
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_ALERTS", json.dumps({"conn_type": "http", "host": url, **conn}))
    api = {"conn_type": "http", "host": "https://s.example", "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_LIGHTSPEED_API", json.dumps(api))
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_POSTGRES",
        json.dumps(
            {"conn_type": "postgres", "host": "db.example", "login": "sync", "password": PG_PASSWORD,
             "schema": "lightspeed", "extra": {"sslmode": "require", "sslpassword": OAUTH_SECRET}}
        ),
    )  # fmt: skip


def context(task_id: str = "customers.sync", error: BaseException | None = None, **ti: Any) -> dict[str, Any]:
    """What the task runner hands an on_failure_callback (the parts the notifier reads)."""
    fields = {"dag_id": "lightspeed_sync", "run_id": "manual__2026-01-02T03:04:05+00:00", "task_id": task_id}
    fields.update({"try_number": 2, **ti})
    task = SimpleNamespace(task_id=task_id, entity=task_id.split(".")[0] if "." in task_id else None)
    return {"ti": SimpleNamespace(**fields), "task": task, "run_id": fields["run_id"], "exception": error}


def leaky_error() -> LightspeedAuthError:
    """An error whose text carries every kind of secret the deployment holds."""
    return LightspeedAuthError(
        f"customers: HTTP 403 on /api/2.0/customers?after=0: the API refused the token {TOKEN}; "
        f"db postgresql://sync:{PG_PASSWORD}@db.example:5432/lightspeed password={PG_PASSWORD} "
        f"sslpassword {OAUTH_SECRET} via {HOOK_SECRET} Authorization: Bearer abcdef123456 "
        + "x" * 400
        + "\nTraceback (most recent call last):\n  second line",
        status=403,
    )


def assert_no_secret(text: str) -> None:
    for secret in (TOKEN, PG_PASSWORD, OAUTH_SECRET, HOOK_SECRET, "abcdef123456"):
        assert secret not in text, secret


# ---- entity_failed ---------------------------------------------------------------------------------


def test_a_failure_names_the_entity_the_error_in_one_line_and_links_the_log(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, f"{receiver.url}/services/{HOOK_SECRET}")
    LightspeedAlertNotifier()(context(error=leaky_error()))

    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["path"] == f"/services/{HOOK_SECRET}"
    assert post["headers"]["Content-Type"].startswith("application/json")
    body = post["body"]
    assert body["kind"] == "entity_failed" and body["entity"] == "customers"
    assert (body["dag_id"], body["task_id"]) == ("lightspeed_sync", "customers.sync")
    assert body["run_id"] == "manual__2026-01-02T03:04:05+00:00"
    error = body["error"]
    assert error.startswith("LightspeedAuthError: customers: HTTP 403 on /api/2.0/customers")
    assert "\n" not in error and len(error) <= alerts.MAX_ERROR_CHARS and error.endswith("…")
    assert "Traceback" not in error
    # The Airflow UI's task log page (built from [api] base_url when the context has no ti.log_url).
    assert body["log_url"] == (
        f"{BASE}/dags/lightspeed_sync/runs/manual__2026-01-02T03%3A04%3A05%2B00%3A00/tasks/customers.sync?try_number=2"
    )
    text = body["text"]
    assert "customers" in text and error in text and body["log_url"] in text
    assert text.startswith("Lightspeed sync: entity customers failed in run manual__")
    assert_no_secret(post["raw"])  # nothing anywhere in the body: text, fields
    assert_no_secret(json.dumps(post["headers"]))


def test_the_task_sdk_log_url_is_used_when_the_context_has_one(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, receiver.url)
    url = f"{BASE}/dags/lightspeed_sync/runs/r1/tasks/sales.sync?try_number=3"
    LightspeedAlertNotifier()(context("sales.sync", RuntimeError("boom"), log_url=url))
    assert receiver.bodies[0]["log_url"] == url
    assert receiver.bodies[0]["error"] == "RuntimeError: boom"


def test_migrate_failing_is_reported_for_all_entities(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    configure(monkeypatch, receiver.url)
    LightspeedAlertNotifier()(context("migrate", AirflowFailException("this database mirrors store a, not b")))
    body = receiver.bodies[0]
    assert (body["entity"], body["task_id"]) == ("all", "migrate")
    assert body["error"] == "this database mirrors store a, not b"  # no wrapper class name
    assert "migrate failed, no entity synced" in body["text"]


def test_secrets_airflow_masks_and_oauth_passwords_are_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.log import mask_secret

    mask_secret("registered-elsewhere-s3cret")
    assert one_line_error(RuntimeError("got registered-elsewhere-s3cret back")) == "RuntimeError: got *** back"
    oauth = {"refresh_token": "rt-s3cret-value-1", "client_id": "cid", "client_secret": OAUTH_SECRET}
    monkeypatch.setenv(
        "AIRFLOW_CONN_LIGHTSPEED_API", json.dumps({"conn_type": "http", "host": "h", "password": json.dumps(oauth)})
    )
    secrets = alerts.connection_secrets(["lightspeed_api"])
    line = one_line_error(ValueError(f"refresh with rt-s3cret-value-1 and {OAUTH_SECRET} failed"), secrets)
    assert "rt-s3cret-value-1" not in line and OAUTH_SECRET not in line and "failed" in line
    # Patterns catch what no connection holds.
    assert one_line_error("connect postgresql://u:pw-123456@h/db failed") == "connect postgresql://u:***@h/db failed"
    assert one_line_error('{"access_token": "abc123456"} lsxs_pt_ABCDEF') == '{"access_token": "***"} ***'
    assert one_line_error("sent Basic dXNlcjpwYXNz; Basic authentication") == "sent Basic ***; Basic authentication"
    assert one_line_error(None).startswith("no error was reported")


# ---- off, and failures of the webhook ------------------------------------------------------------


def test_no_connection_means_off_said_once_and_nothing_sent(
    receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lightspeed_pipeline.alerts"):
        for _ in range(2):
            LightspeedAlertNotifier()(context(error=RuntimeError("x")))
        LightspeedStaleNotifier()(context("finalize"))  # off: no database query either
    off = [r for r in caplog.records if "alerts are off" in r.getMessage()]
    assert len(off) == 1 and off[0].levelno == logging.INFO
    assert receiver.posts == []
    assert asyncio.run(deadline_missed(context=late_context(), minutes=1)).startswith("not sent")


@pytest.mark.parametrize("statuses", [[500, 500], [404]])
def test_a_failing_webhook_is_logged_and_never_raises(
    statuses: list[int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = WebhookReceiver(statuses)
    try:
        configure(monkeypatch, f"{receiver.url}/{HOOK_SECRET}")
        with caplog.at_level(logging.INFO, logger="lightspeed_pipeline.alerts"):
            LightspeedAlertNotifier()(context(error=RuntimeError("x")))
        assert len(receiver.posts) == len(statuses)  # a 5xx is tried once more, a 4xx is not
        warning = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warning) == 1 and f"HTTP {statuses[-1]}" in warning[0].getMessage()
        assert HOOK_SECRET not in caplog.text and receiver.url not in caplog.text
    finally:
        receiver.close()


def test_an_unreachable_webhook_is_logged_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed = WebhookReceiver()
    closed.close()  # nothing listens there any more
    configure(monkeypatch, f"{closed.url}/{HOOK_SECRET}")
    with caplog.at_level(logging.WARNING, logger="lightspeed_pipeline.alerts"):
        LightspeedAlertNotifier()(context(error=RuntimeError("x")))
        assert alerts.send_alert(Alert("stale", "d", "r", "e", None, "x", None)) is False
    assert "not delivered" in caplog.text and HOOK_SECRET not in caplog.text


def test_webhook_auth_from_the_connection(receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, receiver.url, password="hook-bearer-token")
    LightspeedAlertNotifier()(context(error=RuntimeError("hook-bearer-token leaked")))
    post = receiver.posts[0]
    assert post["headers"]["Authorization"] == "Bearer hook-bearer-token"
    assert "hook-bearer-token" not in post["raw"]
    # The URI form: host and path.
    conn = SimpleNamespace(host="hooks.slack.com", schema="services/T/B/X", conn_type="https", port=None)
    assert connection_url(conn, scheme_from_type=True) == "https://hooks.slack.com/services/T/B/X"


# ---- deadline ------------------------------------------------------------------------------------


def late_context(**run: Any) -> dict[str, Any]:
    """What the scheduler passes a deadline callback: the run as the REST API shows it."""
    scheduled = datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    dag_run = {"dag_id": "lightspeed_sync", "dag_run_id": "scheduled__2026-01-02T03:00:00+00:00", "state": "queued"}
    dag_run.update({"logical_date": scheduled.isoformat(), "queued_at": "2026-01-02T03:00:01Z", "start_date": None})
    dag_run.update({"end_date": None, **run})
    return {"dag_run": dag_run, "deadline": {"id": "d1", "deadline_time": scheduled + timedelta(minutes=120)}}


def test_a_missed_deadline_is_one_message_with_the_run_link(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, receiver.url)
    assert asyncio.run(deadline_missed(context=late_context(), minutes=120)) == "sent"
    body = receiver.bodies[0]
    assert body["kind"] == "deadline_missed" and body["entity"] is None
    assert body["run_id"] == "scheduled__2026-01-02T03:00:00+00:00"
    assert "not finished within 120 min of its logical date 2026-01-02 03:00:00 UTC" in body["error"]
    assert "never started" in body["error"]
    assert body["log_url"] == f"{BASE}/dags/lightspeed_sync/runs/scheduled__2026-01-02T03%3A00%3A00%2B00%3A00"
    assert body["text"].startswith(
        "Lightspeed sync: run scheduled__2026-01-02T03:00:00+00:00 of lightspeed_sync is late"
    )
    running = deadline_alert(late_context(state="running", start_date="2026-01-02T03:00:05Z"), 120)
    assert running is not None and "still running at the deadline" in running.error
    created_late = deadline_alert(late_context(queued_at="2026-01-02T16:00:00Z"), 120)  # unpaused at 16:00
    assert created_late is not None and "only created at 2026-01-02 16:00:00 UTC" in created_late.error


def test_a_run_that_ended_before_its_deadline_sends_nothing(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow 3.3 keeps the deadline of a failed run (apache/airflow#60927): its entities alerted."""
    configure(monkeypatch, receiver.url)
    ended = late_context(state="failed", start_date="2026-01-02T03:00:05Z", end_date="2026-01-02T03:10:00Z")
    assert asyncio.run(deadline_missed(context=ended, minutes=120)).startswith("not sent: the run ended")
    assert receiver.posts == []
    late = late_context(state="success", start_date="2026-01-02T03:00:05Z", end_date="2026-01-02T05:10:00Z")
    assert deadline_alert(late, 120) is not None  # ended after it: late all the same


def test_the_deadline_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference
    from airflow.sdk._shared.module_loading import import_string

    monkeypatch.delenv(RUN_DEADLINE_MIN.env, raising=False)
    assert run_deadline_minutes() is None and run_deadline() is None  # off unless set (apache/airflow#73428)
    for raw, expected in (("", None), ("0", None), (" 0.05 ", 0.05), ("120", 120)):
        monkeypatch.setenv(RUN_DEADLINE_MIN.env, raw)
        assert run_deadline_minutes() == expected, raw
    # The settings' one rule: a bad value fails (at parse time: the DAG's import error), naming the variable.
    for raw in ("-3", "soon"):
        monkeypatch.setenv(RUN_DEADLINE_MIN.env, raw)
        with pytest.raises(SettingError, match=f"environment variable LIGHTSPEED_RUN_DEADLINE_MIN must be .*{raw}"):
            run_deadline()
    monkeypatch.setenv(RUN_DEADLINE_MIN.env, "0.05")
    alert = run_deadline()
    # Not DAGRUN_QUEUED_AT: clearing a failed run with one fails on 3.3.2 (apache/airflow#70368).
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert alert.interval == timedelta(seconds=3)
    assert isinstance(alert.callback, AsyncCallback)
    assert import_string(alert.callback.path) is deadline_missed  # importable where it runs (triggerer)
    assert alert.callback.kwargs["minutes"] == 0.05
    monkeypatch.setenv(RUN_DEADLINE_MIN.env, "")
    assert run_deadline() is None
    assert run_deadline(30).interval == timedelta(minutes=30)


# ---- stale ---------------------------------------------------------------------------------------


def test_stale_alerts_leave_failures_to_their_own_alert() -> None:
    old = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    rows = [
        {"entity_type": "brands", "sync_status": "ALERT", "status": "success", "health_reason": "no successful sync for 30.0 h", "last_successful_sync": old},  # noqa: E501
        {"entity_type": "taxes", "sync_status": "ALERT", "status": "pending", "health_reason": "never synced successfully", "last_successful_sync": None},  # noqa: E501
        {"entity_type": "customers", "sync_status": "ALERT", "status": "failed", "health_reason": "latest sync failed", "last_successful_sync": old},  # noqa: E501
        {"entity_type": "sales", "sync_status": "ALERT", "status": "success", "health_reason": "no successful sync for 30.0 h", "last_successful_sync": old},  # noqa: E501
    ]  # fmt: skip
    states = {"brands": "skipped", "taxes": "success", "customers": "failed", "sales": "upstream_failed"}
    out = stale_alerts(rows, states, dag_id="lightspeed_sync", run_id="r", task_id="finalize", log_url="u")
    assert [(a.kind, a.entity) for a in out] == [("stale", "brands"), ("stale", "taxes")]
    assert out[0].error == "no successful sync for 30.0 h (last success 2026-01-01 01:00:00 UTC)"
    assert out[1].error == "never synced successfully"
    assert out[0].text().startswith("Lightspeed sync: entity brands is stale: no successful sync for 30.0 h")


def test_a_stale_entity_is_alerted_at_most_once_a_day() -> None:
    now = datetime(2026, 1, 3, 12, 0, tzinfo=UTC)
    old = datetime(2026, 1, 1, 1, 0, tzinfo=UTC)
    row = {"entity_type": "brands", "sync_status": "ALERT", "status": "success",
           "health_reason": "no successful sync for 59.0 h", "last_successful_sync": old}  # fmt: skip
    kw: dict[str, Any] = {"dag_id": "lightspeed_sync", "run_id": "r", "task_id": "finalize", "log_url": "u", "now": now}
    assert len(stale_alerts([row], {}, **kw)) == 1  # never alerted
    assert stale_alerts([{**row, "last_stale_alert": now - timedelta(hours=23, minutes=59)}], {}, **kw) == []
    assert len(stale_alerts([{**row, "last_stale_alert": now - timedelta(hours=24)}], {}, **kw)) == 1


# ---- the DAG -------------------------------------------------------------------------------------


def test_the_dag_alerts_from_migrate_and_each_sync_and_adds_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightspeed_pipeline.entities import NAMES
    from lightspeed_pipeline.factory import build_dag

    monkeypatch.setenv(RUN_DEADLINE_MIN.env, "120")
    dag = build_dag()
    failing = {
        t.task_id for t in dag.tasks if any(type(c) is LightspeedAlertNotifier for c in t.on_failure_callback or [])
    }
    assert failing == {"migrate"} | {f"{n}.sync" for n in NAMES}
    finalize = dag.get_task("finalize")
    assert [type(c) for c in finalize.on_failure_callback] == [LightspeedStaleNotifier]  # no second failure alert
    assert [type(c) for c in finalize.on_success_callback] == [LightspeedStaleNotifier]
    for task in dag.tasks:
        if task.task_id.endswith(".finished"):  # the scheduler completes these without a worker
            assert not (task.on_failure_callback or task.on_success_callback), task.task_id
    (deadline,) = dag.deadline
    assert deadline.interval == timedelta(minutes=120)
    assert deadline.callback.path == "lightspeed_pipeline.alerts.deadline_missed"
    assert len(dag.tasks) == len(build_dag(run_deadline_min=0).tasks)
    assert build_dag(run_deadline_min=0).deadline is None
    monkeypatch.delenv(RUN_DEADLINE_MIN.env)
    assert build_dag().deadline is None
