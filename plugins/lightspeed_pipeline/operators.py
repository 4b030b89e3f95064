"""Thin operators joining the client, the store and the DAG. Only counts go to XCom.

Heavy imports (requests, psycopg) happen inside `execute`, so parsing the DAG stays fast.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.skipmixin import SkipMixin
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from lightspeed_pipeline import entities as registry
from lightspeed_pipeline import settings
from lightspeed_pipeline.settings import API_CONN_ID, POSTGRES_CONN_ID, SettingError
from lightspeed_pipeline.taskinfo import FAILED_STATES, sync_task_states, try_number

log = logging.getLogger(__name__)


def selected_entities(params: dict[str, Any] | None) -> set[str]:
    """Entity names chosen by the `entities` param; empty or missing means all."""
    chosen = (params or {}).get("entities") or []
    if isinstance(chosen, str):
        chosen = [s.strip() for s in chosen.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(registry.NAMES))
    if unknown:
        raise AirflowException(f"unknown entities in params.entities: {unknown}; known: {list(registry.NAMES)}")
    return set(chosen) or set(registry.NAMES)


def fail_fast(exc: BaseException) -> BaseException:
    """`AirflowFailException` (no retries) for errors no retry can fix (`permanent`: a refused
    token, a 4xx, an unusable setting), else the error itself."""
    if getattr(exc, "permanent", False):
        return AirflowFailException(str(exc))
    return exc


def open_warehouse(postgres_conn_id: str) -> Any:
    """The target database; a setting the sync cannot use fails the task at once."""
    from lightspeed_pipeline.hooks import LightspeedPostgresHook

    try:
        return LightspeedPostgresHook(postgres_conn_id).get_warehouse()
    except SettingError as exc:
        raise fail_fast(exc) from None


@contextmanager
def api_client(api_conn_id: str, warehouse: Any) -> Iterator[Any]:
    """A Lightspeed client for the task; with OAuth its tokens rotate durably in the target DB
    (a token vault on a connection of its own). A connection the sync cannot use fails the
    task at once (no retry fixes a typo)."""
    from lightspeed_pipeline.api.client import LightspeedClient
    from lightspeed_pipeline.hooks import LightspeedHook
    from lightspeed_pipeline.identity import database_api_version
    from lightspeed_pipeline.warehouse.tokens import PostgresTokenVault

    hook = LightspeedHook(api_conn_id)
    try:
        config = hook.get_config(fallback_version=database_api_version(warehouse))
    except SettingError as exc:
        raise fail_fast(exc) from None
    vault_db = warehouse.sibling() if config.oauth is not None else None
    try:
        vault = None
        if vault_db is not None and config.oauth is not None:
            vault = PostgresTokenVault(vault_db, config.oauth, config.base_url)
        with LightspeedClient(config, token_vault=vault) as client:
            yield client
    finally:
        if vault_db is not None:
            vault_db.close()


class MigrateOperator(BaseOperator, SkipMixin):
    """Apply pending SQL migrations, seed sync_state, create changed views, check the store.

    The store check (`GET /retailer`, one request) runs before any entity task: a connection
    now reaching another store fails the run here, and nothing is written. Then it skips the
    sync tasks of the entities `params.entities` leaves out, so the scheduler skips them
    (and what only follows them) without starting a worker for each.
    """

    ui_color = "#e8f0fe"
    inherits_from_skipmixin = True  # a cleared sync it skipped stays skipped (NotPreviouslySkippedDep)

    def __init__(
        self,
        *,
        postgres_conn_id: str = POSTGRES_CONN_ID,
        api_conn_id: str = API_CONN_ID,
        schedule: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id
        self.api_conn_id = api_conn_id
        self.schedule = schedule

    def execute(self, context: Any) -> dict[str, Any]:
        from lightspeed_pipeline.identity import verify_store
        from lightspeed_pipeline.warehouse.ledger import SyncLedger
        from lightspeed_pipeline.warehouse.migrations import apply_migrations

        params = context.get("params") or {}
        try:
            chosen = selected_entities(params)
            disabled = settings.disabled_entities()
            history = settings.history_entities()
        except AirflowException as exc:
            raise AirflowFailException(str(exc)) from None
        except SettingError as exc:
            raise fail_fast(exc) from None
        switch_to = str(params.get("switch_store") or "").strip() or None
        warehouse = open_warehouse(self.postgres_conn_id)
        try:
            interval = settings.schedule_interval_s(self.schedule)
            result = apply_migrations(
                warehouse, run_settings={"schedule_interval_s": interval} if interval else None, history=history
            )
            log.info(
                "schema %s: applied %s, seeded %d sync_state rows, views (re)created: %s",
                warehouse.schema,
                result["applied"] or "nothing new",
                result["seeded"],
                result["views"] or "none (unchanged)",
            )
            with api_client(self.api_conn_id, warehouse) as client:
                try:
                    result["store"] = verify_store(warehouse, client, switch_to=switch_to)
                except Exception as exc:
                    if getattr(exc, "permanent", False):
                        warehouse.ensure_connected()
                        SyncLedger(warehouse).fail_all(str(exc), run_id=context.get("run_id"))
                    raise fail_fast(exc) from None
                unlisted = registry.unavailable(client.config.api_version)
            switched = SyncLedger(warehouse).set_disabled(unlisted | dict.fromkeys(disabled))
        finally:
            warehouse.close()
        for name, why in unlisted.items():
            log.info("%s: %s; skipped", name, why)
        _log_disabled(disabled | frozenset(unlisted), switched, quiet=frozenset(unlisted))
        disabled = disabled | frozenset(unlisted)
        left_out = [name for name in registry.NAMES if name not in chosen or name in disabled]
        result["entities"] = [name for name in registry.NAMES if name not in left_out]
        result["disabled"] = sorted(disabled, key=registry.NAMES.index)
        if left_out and self.dag is not None:
            log.info("syncing %s; skipping %s", result["entities"], left_out)
            ti = context["ti"]
            ti.xcom_push(key="return_value", value=result)  # skip() ends the task before the return
            self.skip(ti, [self.dag.get_task(f"{name}.sync") for name in left_out])
        return result


def _log_disabled(
    disabled: frozenset[str], switched: dict[str, list[str]], *, quiet: frozenset[str] = frozenset()
) -> None:
    """Say which entities were switched off (LIGHTSPEED_ENTITIES_DISABLED; those the API version
    does not list, `quiet`, were logged already) or back on, and tell the entities that need a
    disabled one that their references to it will not resolve."""
    if off := [name for name in switched["off"] if name not in quiet]:
        log.warning("switched off by LIGHTSPEED_ENTITIES_DISABLED: %s (their tables are kept)", off)
    if switched["on"]:
        log.info("switched back on: %s", switched["on"])
    for name in disabled:
        if needing := registry.dependants(name, exclude=disabled):
            log.warning(
                "%s is disabled: %s still sync, but their references to %s will not resolve and are not checked",
                name,
                ", ".join(needing),
                name,
            )


class EntitySyncOperator(BaseOperator):
    """Sync one entity from its stored cursor (or from 0 with params.full_refresh), then validate it.

    Validation (rows, orphans, duplicates, recorded in sync_validation) runs in the same task,
    also after a failed sync (the table as it stands): a separate task per entity cost a
    worker each and a scheduler loop on the critical path. Its counts are in the XCom
    (`validation`) and the log, and feed sync_health.
    """

    ui_color = "#e6f4ea"

    def __init__(
        self,
        *,
        entity: str,
        api_conn_id: str = API_CONN_ID,
        postgres_conn_id: str = POSTGRES_CONN_ID,
        **kwargs: Any,
    ) -> None:
        from lightspeed_pipeline.assets import entity_alias

        registry.get(entity)  # fail at parse time on a typo
        # The table's Asset is updated through this alias, and only when rows changed.
        kwargs.setdefault("outlets", [entity_alias(entity)])
        super().__init__(**kwargs)
        self.entity = entity
        self.api_conn_id = api_conn_id
        self.postgres_conn_id = postgres_conn_id
        self.disabled: frozenset[str] = frozenset()

    def execute(self, context: Any) -> dict[str, Any]:
        from lightspeed_pipeline.assets import emit_if_changed, entity_asset
        from lightspeed_pipeline.identity import ensure_same_store
        from lightspeed_pipeline.metrics import emit_stats
        from lightspeed_pipeline.sync import EntitySyncError, sync_entity
        from lightspeed_pipeline.warehouse.locks import EntityBusyError

        params = context.get("params") or {}
        if self.entity not in selected_entities(params):
            raise AirflowSkipException(f"{self.entity} is not in params.entities")
        entity = registry.get(self.entity)
        try:
            self.disabled = settings.disabled_entities()
            if self.entity in self.disabled:
                raise AirflowSkipException(f"{self.entity} is disabled by LIGHTSPEED_ENTITIES_DISABLED")
            if missing := [n for n in registry.NAMES if n in self.disabled and self.entity in registry.dependants(n)]:
                log.warning(
                    "%s needs %s, disabled by LIGHTSPEED_ENTITIES_DISABLED: references to them stay unresolved",
                    self.entity,
                    ", ".join(missing),
                )
            skip_if_busy = settings.LOCK_BUSY.read() == "skip"
            lock_wait_s = settings.LOCK_WAIT_S.read()
            reconcile_every_days = settings.RECONCILE_DAYS.read()
        except SettingError as exc:
            raise fail_fast(exc) from None
        warehouse = open_warehouse(self.postgres_conn_id)
        try:
            with api_client(self.api_conn_id, warehouse) as client:
                if not entity.available(client.config.api_version):
                    raise AirflowSkipException(
                        f"{self.entity}: {registry.unavailable(client.config.api_version)[self.entity]}"
                    )
                self.disabled = self.disabled | frozenset(registry.unavailable(client.config.api_version))
                result = sync_entity(
                    entity.at(client.config.api_version),  # how that API version lists it
                    client,
                    warehouse,
                    full_refresh=bool(params.get("full_refresh")),
                    run_id=context.get("run_id"),
                    try_number=try_number(context),
                    lock_wait_s=lock_wait_s,
                    skip_if_busy=skip_if_busy,
                    reconcile_every_days=reconcile_every_days,
                    check_store=lambda: ensure_same_store(warehouse, client),
                )
        except EntityBusyError as exc:
            if skip_if_busy:
                raise AirflowSkipException(str(exc)) from None
            self._after_failure(warehouse, context, None)
            raise
        except EntitySyncError as exc:
            self._after_failure(warehouse, context, exc.result.as_dict() if exc.result else None)
            raise fail_fast(exc) from exc.__cause__
        except BaseException:
            self._after_failure(warehouse, context, None)
            raise
        else:
            out = result.as_dict()
            emit_stats(self.entity, out, ok=True)
            out["validation"] = self._validate(warehouse, context)
            if emit_if_changed(context, self.entity, out):
                log.info("%s: rows changed, Asset %s updated", self.entity, entity_asset(self.entity).name)
            return out
        finally:
            warehouse.close()

    def _after_failure(self, warehouse: Any, context: Any, metrics: dict[str, Any] | None) -> None:
        """A failed sync still sends its metrics (the figures up to the failure) and validates the table."""
        from lightspeed_pipeline.metrics import emit_stats

        emit_stats(self.entity, metrics, ok=False)
        self._validate(warehouse, context, after_failure=True)

    def _validate(self, warehouse: Any, context: Any, *, after_failure: bool = False) -> dict[str, Any] | None:
        """Validate the table; after a failed sync a failing validation only logs (the sync's error counts)."""
        from lightspeed_pipeline.validate import validate_entity

        try:
            warehouse.ensure_connected()
            return validate_entity(
                registry.get(self.entity), warehouse, run_id=context.get("run_id"), disabled=self.disabled
            ).as_dict()
        except Exception as exc:
            if not after_failure:
                raise
            log.warning("%s: validation after the failed sync did not run either: %s", self.entity, exc)
            return None


class FinalizeOperator(BaseOperator):
    """Refresh the views, write the run summary, and fail the run if any entity failed.

    Runs with trigger rule ALL_DONE; it is the DAG's only leaf, so raising here is
    what makes a run with a failed entity end `failed`.
    """

    ui_color = "#fce8e6"

    def __init__(self, *, postgres_conn_id: str = POSTGRES_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.postgres_conn_id = postgres_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from lightspeed_pipeline.report import run_summary
        from lightspeed_pipeline.warehouse.history import measure_history, measure_stock_value, prune_history
        from lightspeed_pipeline.warehouse.ledger import SyncLedger
        from lightspeed_pipeline.warehouse.migrations import refresh_views

        try:
            keep_days = float(settings.HISTORY_RETENTION_DAYS.read())
        except SettingError as exc:
            raise fail_fast(exc) from None
        run_id = context.get("run_id")
        ti = context["ti"]
        states = sync_task_states(ti, ti.dag_id, run_id)
        started = time.monotonic()
        warehouse = open_warehouse(self.postgres_conn_id)
        try:
            ledger = SyncLedger(warehouse)
            died = ledger.fail_abandoned(run_id)
            if died:
                log.warning("syncs that did not finish (worker killed or timed out), now marked failed: %s", died)
            views = refresh_views(warehouse)
            pruned = prune_history(warehouse, keep_days)
            if pruned:
                log.info("history older than %g days removed (rows per entity): %s", keep_days, pruned)
            measure_history(warehouse)
            measure_stock_value(warehouse)
            summary = run_summary(warehouse, run_id=run_id, task_states=states)
            failed = sorted(e for e, s in summary["entities"].items() if s["state"] in FAILED_STATES)
            ledger.log_event(
                "all",
                "run_summary",
                "failed" if failed else "completed",
                duration_s=time.monotonic() - started,
                records=summary["records"],
                error=f"failed entities: {', '.join(failed)}" if failed else None,
                metadata={"run_id": run_id, "views": views, **summary},
            )
        finally:
            warehouse.close()
        for line in summary["table"]:
            log.info(line)
        if failed:
            details = "; ".join(f"{e}: {summary['entities'][e].get('error') or 'failed'}" for e in failed)
            # Not retried: the entities failed, not this task (clear their groups to rerun them).
            raise AirflowFailException(f"{len(failed)} entit{'y' if len(failed) == 1 else 'ies'} failed: {details}")
        return {k: v for k, v in summary.items() if k != "table"}
