"""What Airflow says about a run, shared by the operators, the alerts and the health page:
the state of each entity's `sync` task, the try of a task, and the paths of Airflow's pages.

No Airflow import at module level: the task instance comes in as an argument.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from lightspeed_pipeline.entities import BY_NAME

log = logging.getLogger(__name__)

# Task states of a sync that failed in a run, or did not run because what it needs failed.
FAILED_STATES = frozenset({"failed", "upstream_failed"})


def try_number(context: Any) -> int | None:
    """The task instance's try (1, 2, ...), recorded so a failure links to that try's log."""
    number = getattr(context.get("ti"), "try_number", None)
    return number if isinstance(number, int) else None


def sync_task_states(ti: Any, dag_id: str, run_id: str | None) -> dict[str, str]:
    """Entity -> the state of its group's `sync` task in this run (the `finished` gates succeed
    whatever the sync did, so they say nothing about the entity); empty when the task SDK
    cannot tell."""
    if ti is None or not run_id:
        return {}
    try:
        raw = ti.get_task_states(dag_id=dag_id, run_ids=[run_id])
    except Exception as exc:
        log.warning("could not read this run's task states (%s)", type(exc).__name__)
        return {}
    states = raw.get(run_id, {}) if isinstance(raw, dict) else {}
    out = {}
    for task_id, state in states.items():
        group, _, name = str(task_id).partition(".")
        if group in BY_NAME and name == "sync":
            out[group] = str(getattr(state, "value", state) or "none")
    return out


def run_path(dag_id: str, run_id: str) -> str:
    """The run's page in the Airflow UI, relative to the UI's base URL."""
    return f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def task_log_path(dag_id: str, run_id: str, task_id: str, try_number: int | None = None) -> str:
    """A task instance's log page (of one try) in the Airflow UI, relative to the UI's base URL."""
    path = f"{run_path(dag_id, run_id)}/tasks/{quote(task_id, safe='')}"
    return f"{path}?try_number={try_number}" if isinstance(try_number, int) and try_number > 0 else path
