"""The sync ledger: `sync_state` (one row per entity: status and cursor), `sync_log` (what
each sync, run and alert did) and `sync_validation` (the counts after each sync).

The cursor itself moves in the page's own transaction (`pages.PageWriter.write`); everything
else the sync records about itself is written here, each in a short transaction of its own.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from lightspeed_pipeline.entities import Entity
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.locks import entity_lock_key

MAX_MESSAGE = 4000


@dataclass(frozen=True)
class SyncStart:
    """The entity's state as a sync starts."""

    last_version: int | None
    status_before: str | None
    last_reconciled_at: Any = None  # datetime of the last complete, reconciled listing
    api_version: str | None = None  # the API version of the entity's last successful sync


class SyncLedger:
    """Writes sync_state, sync_log and sync_validation rows."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def start(self, entity: Entity, *, run_id: str | None) -> SyncStart:
        """Mark `entity` running; returns the committed cursor it resumes from."""
        with self.warehouse.transaction() as conn:
            row = conn.execute(
                sql.SQL(
                    "WITH before AS (SELECT status FROM {st} WHERE entity_type = %(e)s)"
                    " INSERT INTO {st} AS s (entity_type, status, last_attempt_at, last_run_id)"
                    " VALUES (%(e)s, 'running', now(), %(run)s)"
                    " ON CONFLICT (entity_type) DO UPDATE SET status = 'running', error_message = NULL,"
                    " last_attempt_at = now(), last_run_id = %(run)s, updated_at = now()"
                    " RETURNING s.last_version, (SELECT status FROM before), s.last_reconciled_at, s.api_version"
                ).format(st=self.warehouse.table("sync_state")),
                {"e": entity.name, "run": run_id},
            ).fetchone()
        assert row is not None
        return SyncStart(last_version=row[0], status_before=row[1], last_reconciled_at=row[2], api_version=row[3])

    def log_event(
        self,
        entity_type: str,
        action: str,
        status: str,
        *,
        duration_s: float | None = None,
        records: int = 0,
        error: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """One sync_log row (`entity_type` is an entity's name, or `all` for the run)."""
        with self.warehouse.transaction() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {log} (entity_type, action, status, duration_seconds, records_processed,"
                    " error_details, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
                ).format(log=self.warehouse.table("sync_log")),
                (
                    entity_type,
                    action,
                    status,
                    round(duration_s, 3) if duration_s is not None else None,
                    records,
                    error,
                    json.dumps(metadata or {}, default=str),
                ),
            )

    def finish(
        self, entity: Entity, *, warning: str | None = None, reconciled: bool = False, api_version: str | None = None
    ) -> None:
        """Mark a sync successful (through `api_version`); `warning` (or its absence) replaces the
        entity's standing warning."""
        with self.warehouse.transaction() as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE {st} SET status = 'success', error_message = NULL, last_sync_time = now(),"
                    " warning_message = %s,"
                    " last_reconciled_at = CASE WHEN %s THEN now() ELSE last_reconciled_at END,"
                    " api_version = coalesce(%s, api_version), updated_at = now() WHERE entity_type = %s"
                ).format(st=self.warehouse.table("sync_state")),
                (warning[:MAX_MESSAGE] if warning else None, reconciled, api_version, entity.name),
            )

    def set_disabled(self, disabled: Collection[str] | Mapping[str, str | None]) -> dict[str, list[str]]:
        """Set sync_state.disabled_at of the `disabled` entities (kept when already set: it says
        since when) and clear it on the others; a mapping also gives each one's reason (None: the
        setting's). Returns the entities switched off and on."""
        reasons = dict(disabled) if isinstance(disabled, Mapping) else dict.fromkeys(disabled)
        with self.warehouse.transaction() as conn:
            rows = conn.execute(
                sql.SQL(
                    "WITH d AS (SELECT * FROM unnest(%s::text[], %s::text[]) AS d(name, reason))"
                    " UPDATE {st} s SET updated_at = now(),"
                    " disabled_at = CASE WHEN d.name IS NOT NULL THEN coalesce(s.disabled_at, now()) END,"
                    " disabled_reason = d.reason"
                    " FROM {st} s0 LEFT JOIN d ON d.name = s0.entity_type"
                    " WHERE s0.entity_type = s.entity_type AND ((d.name IS NOT NULL) IS DISTINCT FROM"
                    " (s.disabled_at IS NOT NULL) OR d.reason IS DISTINCT FROM s.disabled_reason)"
                    " RETURNING s.entity_type, s.disabled_at IS NOT NULL, s0.disabled_at IS NOT NULL"
                ).format(st=self.warehouse.table("sync_state")),
                (list(reasons), list(reasons.values())),
            ).fetchall()
        return {
            "off": sorted(r[0] for r in rows if r[1] and not r[2]),
            "on": sorted(r[0] for r in rows if not r[1] and r[2]),
        }

    def fail(self, entity: Entity, message: str) -> None:
        with self.warehouse.transaction() as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE {st} SET status = 'failed', error_message = %s, updated_at = now() WHERE entity_type = %s"
                ).format(st=self.warehouse.table("sync_state")),
                (message[:MAX_MESSAGE], entity.name),
            )

    def fail_all(self, message: str, *, run_id: str | None) -> None:
        """A run-wide failure (the store check): every entity is failed with the message, and
        sync_log has a row of the run that says why; cursors and tables stay as they are."""
        with self.warehouse.transaction() as conn:
            conn.execute(
                sql.SQL("UPDATE {st} SET status = 'failed', error_message = %s, updated_at = now()").format(
                    st=self.warehouse.table("sync_state")
                ),
                (message[:MAX_MESSAGE],),
            )
        self.log_event("all", "store_identity", "failed", error=message, metadata={"run_id": run_id})

    def fail_abandoned(self, run_id: str | None) -> list[str]:
        """Syncs of `run_id` still marked running whose entity lock nobody holds died without
        recording it (SIGKILL, execution timeout): mark them failed so health tells the truth."""
        state = self.warehouse.table("sync_state")
        with self.warehouse.transaction() as conn:
            rows = conn.execute(
                sql.SQL("SELECT entity_type FROM {st} WHERE status = 'running' AND last_run_id = %s").format(st=state),
                (run_id,),
            ).fetchall()
            dead = []
            for (name,) in rows:
                key = entity_lock_key(self.warehouse.schema, name)
                if conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                    dead.append(name)
            if dead:
                conn.execute(
                    sql.SQL(
                        "UPDATE {st} SET status = 'failed', updated_at = now(), error_message ="
                        " entity_type || ': the sync did not finish (its worker was killed or timed out); the next"
                        " run resumes from the last committed page' WHERE entity_type = ANY(%s)"
                    ).format(st=state),
                    (dead,),
                )
        return dead

    def record_validation(self, entity: str, run_id: str | None, counts: dict[str, Any]) -> None:
        """One sync_validation row: the counts of `validate.validate_entity`."""
        with self.warehouse.transaction() as conn:
            conn.execute(
                sql.SQL(
                    "INSERT INTO {v} (entity_type, run_id, row_count, deleted_count, orphan_count, duplicate_count,"
                    " unknown_shape_count, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)"
                ).format(v=self.warehouse.table("sync_validation")),
                (
                    entity,
                    run_id,
                    counts["row_count"],
                    counts["deleted_count"],
                    counts["orphan_count"],
                    counts["duplicate_count"],
                    counts.get("unknown_shape_count", 0),
                    json.dumps({k: counts[k] for k in ("orphans", "duplicates", "children")}),
                ),
            )
