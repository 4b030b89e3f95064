"""Build the `lightspeed_sync` DAG from the entity registry.

    migrate -> one TaskGroup per entity (sync [-> finished]), wired in dependency order -> finalize

Every task that needs a worker costs about half a CPU-second under a real scheduler, and each
level of the graph a scheduler loop, so the graph holds only what a data team looks at:
`migrate`, one `sync` per entity (which also validates the table it wrote) and `finalize`.

A group's `sync` uses trigger rule NONE_FAILED. Its hard dependencies (`Entity.depends_on`:
a sale needs its products) point at their `sync` tasks, so it is not run when one of those
failed. Its soft dependencies (`soft_depends_on`: a product does not need a fresh brand
list) point at their `finished` task: an EmptyOperator with trigger rule ALL_DONE, which the
scheduler marks done without a worker once the sync ended, however it ended. So the order
holds and a failed reference list blocks nothing.
`migrate` skips the sync tasks of entities not chosen in `params.entities` (the scheduler
then skips what follows them without starting a worker); `finalize` runs whatever happened
(ALL_DONE) and fails the run if any entity failed. Nothing here touches the network or the
database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, TaskGroup

from lightspeed_pipeline import settings
from lightspeed_pipeline.alerts import LightspeedAlertNotifier, LightspeedStaleNotifier, run_deadline
from lightspeed_pipeline.entities import NAMES, ORDERED, Entity
from lightspeed_pipeline.operators import EntitySyncOperator, FinalizeOperator, MigrateOperator
from lightspeed_pipeline.settings import ALERTS_CONN_ID, API_CONN_ID, DAG_ID, POOL, POSTGRES_CONN_ID

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
* Alerts: a failed entity, a run not finished LIGHTSPEED_RUN_DEADLINE_MIN minutes after its
  scheduled time (when set), and stale entities are posted to the webhook of the
  `lightspeed_alerts` connection (off without it).
"""


def _group_doc(entity: Entity) -> str:
    deps = ", ".join(entity.depends_on) or "nothing"
    soft = ""
    if entity.soft_depends_on:
        soft = f" (and, not blocked by their failure, {', '.join(entity.soft_depends_on)})"
    paging = "by version" if entity.versioned else "by id, read in full each run"
    return f"{entity.description} Endpoint {entity.endpoint}, paged {paging}; after {deps}{soft}. Table {entity.table}."


def build_dag(
    dag_id: str = DAG_ID,
    *,
    schedule: str | None = None,
    api_conn_id: str = API_CONN_ID,
    postgres_conn_id: str = POSTGRES_CONN_ID,
    alerts_conn_id: str = ALERTS_CONN_ID,
    run_deadline_min: float | None = None,
) -> DAG:
    """The sync DAG. Schedule, retries, retry delay and sync timeout come from `LIGHTSPEED_*`
    variables read here, at parse time: a bad value raises `SettingError`, which Airflow shows
    as the DAG's import error (see `settings.py`).

    Alerts (alerts.py) go to the `alerts_conn_id` connection's webhook, off without one:
    `migrate` and every `sync` notify their final failure, `finalize` the stale entities, and
    the run's deadline (`run_deadline_min` minutes after its logical date; None: from
    LIGHTSPEED_RUN_DEADLINE_MIN, unset by default; 0: none) a run not finished in time.
    No task is added.
    """
    retries = settings.TASK_RETRIES.read()
    retry_delay = timedelta(seconds=settings.RETRY_DELAY_S.read())
    sync_timeout = timedelta(hours=settings.SYNC_TIMEOUT_H.read())
    default_args = {
        "owner": "data-team",
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
    }
    # ---- alerts (alerts.py): callbacks and the deadline; nothing here touches a connection ----
    secret_conn_ids = (api_conn_id, postgres_conn_id)
    on_failure = LightspeedAlertNotifier(conn_id=alerts_conn_id, secret_conn_ids=secret_conn_ids)
    on_stale = LightspeedStaleNotifier(
        postgres_conn_id=postgres_conn_id, conn_id=alerts_conn_id, secret_conn_ids=secret_conn_ids
    )
    deadline = run_deadline(run_deadline_min, conn_id=alerts_conn_id, secret_conn_ids=secret_conn_ids)
    with DAG(
        dag_id=dag_id,
        description="Sync Lightspeed Retail (X-Series) into PostgreSQL, incrementally by version",
        schedule=schedule if schedule is not None else settings.schedule(),
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=default_args,
        tags=["lightspeed", "sync", "postgres"],
        doc_md=DOC,
        deadline=deadline,  # alerts: the run did not finish in time
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
            "switch_store": Param(
                None,
                type=["null", "string"],
                title="Switch to another store (destructive)",
                description=(
                    "Leave empty. Only when this database should stop mirroring its store and mirror the one the "
                    "lightspeed_api connection now reaches: type that store's domain prefix (or retailer id). "
                    "Every lightspeed_* table is emptied and the new store is imported from scratch."
                ),
            ),
        },
    ) as dag:
        migrate = MigrateOperator(
            task_id="migrate",
            postgres_conn_id=postgres_conn_id,
            api_conn_id=api_conn_id,
            schedule=dag.schedule if isinstance(dag.schedule, str) else None,  # type: ignore[attr-defined]
            on_failure_callback=on_failure,  # alerts
            doc_md=(
                "Apply SQL migrations, create changed views, check the API reaches this database's store,"
                " then skip the sync of every entity not chosen in params.entities."
            ),
        )
        soft_upstreams = {dep for entity in ORDERED for dep in entity.soft_depends_on}
        groups: dict[str, TaskGroup] = {}
        syncs: dict[str, EntitySyncOperator] = {}
        finished: dict[str, EmptyOperator] = {}
        for entity in ORDERED:
            with TaskGroup(group_id=entity.name, tooltip=_group_doc(entity)) as group:
                sync = EntitySyncOperator(
                    task_id="sync",
                    entity=entity.name,
                    api_conn_id=api_conn_id,
                    postgres_conn_id=postgres_conn_id,
                    pool=POOL,
                    trigger_rule="none_failed",
                    max_active_tis_per_dag=1,  # a second run's sync of this entity waits in the scheduler
                    execution_timeout=sync_timeout,
                    doc_md=_group_doc(entity),
                    on_failure_callback=on_failure,  # alerts: after the last try only
                )
                if entity.name in soft_upstreams:
                    finished[entity.name] = EmptyOperator(
                        task_id="finished",
                        trigger_rule="all_done",
                        doc_md=(
                            f"Done when {entity.name}.sync ended, however it ended (no worker runs it): what only"
                            f" needs {entity.name} synced first, not synced successfully, waits for this."
                        ),
                    )
                    sync >> finished[entity.name]
            migrate >> sync
            for dep in entity.depends_on:
                syncs[dep] >> sync
            for dep in entity.soft_depends_on:
                finished[dep] >> sync
            groups[entity.name] = group
            syncs[entity.name] = sync
        finalize = FinalizeOperator(
            task_id="finalize",
            postgres_conn_id=postgres_conn_id,
            trigger_rule="all_done",
            # alerts: stale entities only (it fails whenever an entity failed, already alerted)
            on_success_callback=on_stale,
            on_failure_callback=on_stale,
        )
        for group in groups.values():
            group >> finalize
    return dag
