"""Build the `lightspeed_sync` DAG from the entity registry.

    migrate -> one TaskGroup per entity (sync -> validate), wired in dependency order -> finalize

A group's `sync` uses trigger rule NONE_FAILED: it runs when its dependencies
succeeded or were skipped (not selected in params.entities), and not when one
failed. `finalize` runs whatever happened (ALL_DONE) and fails the run if any
entity failed. Nothing here touches the network or the database.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, TaskGroup

from lightspeed_pipeline.entities import NAMES, ORDERED, Entity
from lightspeed_pipeline.operators import (
    API_CONN_ID,
    POSTGRES_CONN_ID,
    EntitySyncOperator,
    EntityValidateOperator,
    FinalizeOperator,
    MigrateOperator,
)

DAG_ID = "lightspeed_sync"
POOL = "lightspeed_api"

DOC = """
### Lightspeed Retail (X-Series) -> PostgreSQL

Keeps every Lightspeed entity in PostgreSQL (`lightspeed_*` tables), incrementally by
the API's `version` cursor. Each page is written in one transaction together with the
cursor, so a crash loses at most one page and a rerun resumes where it stopped.

* **Rerun one entity**: clear its task group (with *downstream*), or trigger with
  `entities` set to it.
* **Full refresh**: trigger with `full_refresh` on: re-reads from version 0 and rewrites
  only rows whose version changed.
* Health: the `sync_health` view, `sync_state`, `sync_log`, `sync_validation`.
"""


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def _group_doc(entity: Entity) -> str:
    deps = ", ".join(entity.depends_on) or "nothing"
    paging = "by version" if entity.versioned else "by id, read in full each run"
    return f"{entity.description} Endpoint {entity.endpoint}, paged {paging}; after {deps}. Table {entity.table}."


def build_dag(
    dag_id: str = DAG_ID,
    *,
    schedule: str | None = None,
    api_conn_id: str = API_CONN_ID,
    postgres_conn_id: str = POSTGRES_CONN_ID,
) -> DAG:
    """The sync DAG. Retries and schedule can be tuned with environment variables."""
    retries = _env_int("LIGHTSPEED_TASK_RETRIES", 2)
    retry_delay = timedelta(seconds=_env_int("LIGHTSPEED_RETRY_DELAY_S", 60))
    default_args = {
        "owner": "data-team",
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    }
    with DAG(
        dag_id=dag_id,
        description="Sync Lightspeed Retail (X-Series) into PostgreSQL, incrementally by version",
        schedule=schedule if schedule is not None else os.environ.get("LIGHTSPEED_SYNC_SCHEDULE", "@daily"),
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=["lightspeed", "sync", "postgres"],
        doc_md=DOC,
        params={
            "full_refresh": Param(
                False,
                type="boolean",
                title="Full refresh",
                description=(
                    "Re-read the selected entities from version 0 (rows whose version is unchanged are not rewritten)."
                ),
            ),
            "entities": Param(
                list(NAMES),
                type="array",
                items={"type": "string", "enum": list(NAMES)},
                examples=list(NAMES),
                title="Entities",
                description="Entities to sync (default: all). Entities not listed are skipped.",
            ),
        },
    ) as dag:
        migrate = MigrateOperator(task_id="migrate", postgres_conn_id=postgres_conn_id, doc_md="Apply SQL migrations.")
        groups: dict[str, TaskGroup] = {}
        for entity in ORDERED:
            with TaskGroup(group_id=entity.name, tooltip=_group_doc(entity)) as group:
                sync = EntitySyncOperator(
                    task_id="sync",
                    entity=entity.name,
                    api_conn_id=api_conn_id,
                    postgres_conn_id=postgres_conn_id,
                    pool=POOL,
                    trigger_rule="none_failed",
                    execution_timeout=timedelta(hours=_env_int("LIGHTSPEED_SYNC_TIMEOUT_H", 12)),
                    doc_md=_group_doc(entity),
                )
                validate = EntityValidateOperator(
                    task_id="validate", entity=entity.name, postgres_conn_id=postgres_conn_id
                )
                sync >> validate
            upstream = [groups[d] for d in entity.depends_on] or [migrate]
            for up in upstream:
                up >> group
            groups[entity.name] = group
        finalize = FinalizeOperator(
            task_id="finalize", postgres_conn_id=postgres_conn_id, trigger_rule="all_done", retries=0
        )
        for group in groups.values():
            group >> finalize
    return dag
