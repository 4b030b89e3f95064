"""The read model: every query that reports on the copy, side by side.

The health page (`health.py`), the stale alerts (`alerts.py`), the run summary (`report.py`)
and validation (`validate.py`) read through here; they shape the rows, this module fetches
them. Rows come as dicts (psycopg's `dict_row`); identifiers come from the registry and the
warehouse's schema only.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from lightspeed_pipeline.entities import BY_NAME, UNKNOWN_SHAPE, Entity
from lightspeed_pipeline.warehouse.connection import Warehouse

SYNC_ACTIONS = ("historical_import", "incremental_sync")


class ReadModel:
    """Read-only queries over the warehouse (each method one transaction)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.table = warehouse.table

    # ---- the health page ------------------------------------------------------------------

    def health(self, *, scan_rows: int) -> dict[str, Any]:
        """The health page's rows: `sync_health` with the latest validation per entity, each
        entity's outcome per recent run and the run summaries (both from the newest `scan_rows`
        sync_log rows), the 10 latest failures, and the business strip (outlets with today's and
        yesterday's sales in their local day, the low-stock count, this month's new customers, the
        gift card and store credit liability, the open purchase orders' value, the stock's value over
        the last 30 days), and history mode per entity."""
        with self.warehouse.transaction() as conn:
            cur = conn.cursor(row_factory=dict_row)
            entities = cur.execute(
                sql.SQL(
                    "SELECT h.entity_type, h.sync_status, h.health_reason, h.status, h.last_successful_sync,"
                    " h.last_sync_timestamp, h.last_version, h.error_message, h.warning_message,"
                    " h.hours_since_success, h.warning_after_hours, h.alert_after_hours, h.unknown_shape_count,"
                    " v.row_count,"
                    " v.deleted_count, v.orphan_count, v.duplicate_count, v.checked_at AS validated_at"
                    " FROM {health} h LEFT JOIN LATERAL (SELECT * FROM {val} v WHERE v.entity_type = h.entity_type"
                    " ORDER BY v.id DESC LIMIT 1) v ON true ORDER BY h.entity_type"
                ).format(health=self.table("sync_health"), val=self.table("sync_validation"))
            ).fetchall()
            # The outcome of each entity in each recent run: its last completed/failed row there.
            outcomes = cur.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (run_id, entity_type) run_id, entity_type, id, timestamp, status,"
                    " duration_seconds, records_processed, error_details, metadata"
                    " FROM (SELECT id, timestamp, entity_type, status, duration_seconds, records_processed,"
                    " error_details, metadata, metadata->>'run_id' AS run_id, action FROM {log}"
                    " ORDER BY id DESC LIMIT %s) recent"
                    " WHERE run_id IS NOT NULL AND status IN ('completed', 'failed') AND action = ANY(%s)"
                    " ORDER BY run_id, entity_type, id DESC"
                ).format(log=self.table("sync_log")),
                (scan_rows, list(SYNC_ACTIONS)),
            ).fetchall()
            summaries = cur.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (metadata->>'run_id') metadata->>'run_id' AS run_id, id, timestamp, status,"
                    " duration_seconds, records_processed, error_details FROM {log}"
                    " WHERE action = 'run_summary' AND id > (SELECT coalesce(max(id), 0) - %s FROM {log})"
                    " ORDER BY metadata->>'run_id', id DESC"
                ).format(log=self.table("sync_log")),
                (scan_rows,),
            ).fetchall()
            # A failure is resolved once a later sync of the same entity completed.
            failures = cur.execute(
                sql.SQL(
                    "SELECT f.timestamp AS at, f.entity_type AS entity, f.error_details AS error,"
                    " f.metadata->>'run_id' AS run_id, f.metadata->>'try_number' AS try_number, f.action,"
                    " EXISTS (SELECT 1 FROM {log} c WHERE c.id > f.id AND c.status = 'completed'"
                    " AND (c.entity_type = f.entity_type"
                    " OR (f.entity_type = 'all' AND c.action = ANY(%s)))) AS resolved"
                    " FROM {log} f WHERE f.status = 'failed' AND f.action <> 'run_summary' ORDER BY f.id DESC LIMIT 10"
                ).format(log=self.table("sync_log")),
                (list(SYNC_ACTIONS),),
            ).fetchall()
            outlets = cur.execute(
                sql.SQL(
                    "WITH o AS (SELECT id, name, time_zone AS stored_zone, CASE WHEN time_zone IN"
                    " (SELECT name FROM pg_timezone_names) THEN time_zone ELSE 'UTC' END AS zone FROM {outlets}"
                    " WHERE deleted_at IS NULL),"
                    " d AS (SELECT o.*, (now() AT TIME ZONE o.zone)::date AS today FROM o)"
                    " SELECT d.id AS outlet_id, d.name AS outlet_name, d.zone AS time_zone, d.stored_zone, d.today,"
                    " coalesce(t.completed_count, 0) AS today_sales,"
                    " coalesce(t.completed_revenue, 0) AS today_revenue,"
                    " coalesce(y.completed_count, 0) AS yesterday_sales,"
                    " coalesce(y.completed_revenue, 0) AS yesterday_revenue"
                    " FROM d LEFT JOIN {daily} t ON t.outlet_id = d.id AND t.sale_date = d.today"
                    " LEFT JOIN {daily} y ON y.outlet_id = d.id AND y.sale_date = d.today - 1"
                    " ORDER BY d.name NULLS LAST, d.id"
                ).format(outlets=self.table("lightspeed_outlets"), daily=self.table("daily_transactions_by_outlet"))
            ).fetchall()
            low_stock = cur.execute(
                sql.SQL("SELECT count(*) AS n FROM {v}").format(v=self.table("low_stock_products"))
            ).fetchone()
            store = cur.execute(sql.SQL("SELECT api_version FROM {}").format(self.table("sync_store"))).fetchone()
            # What the store owes and has on order (0 where the API version lists none of it).
            money = cur.execute(
                sql.SQL(
                    "SELECT (SELECT coalesce(sum(current_balance_total), 0) FROM {gift}) AS gift_card_liability,"
                    " (SELECT coalesce(sum(current_balance_total), 0) FROM {credit}) AS store_credit_liability,"
                    " coalesce(sum(p.cost_outstanding), 0) AS open_purchase_order_value,"
                    " count(p.*) AS open_purchase_orders,"
                    " count(p.*) FILTER (WHERE p.overdue) AS overdue_purchase_orders"
                    " FROM {pipeline} p"
                ).format(
                    gift=self.table("gift_card_liability"),
                    credit=self.table("store_credit_liability"),
                    pipeline=self.table("purchase_order_pipeline"),
                )
            ).fetchone()
            # History mode per entity, as `finalize` last counted it; the stock's value at the close
            # of each of the last 30 days (inventory_daily, summed by `finalize`: measure_stock_value).
            kept = cur.execute(
                sql.SQL(
                    "SELECT entity_type, enabled, enabled_at, versions_rows, oldest_at FROM {} ORDER BY entity_type"
                ).format(self.table("sync_history"))
            ).fetchall()
            stock_value = cur.execute(
                sql.SQL(
                    "SELECT day, value FROM {} WHERE metric = 'stock_value'"
                    " AND day > (now() AT TIME ZONE 'UTC')::date - 30 ORDER BY day"
                ).format(self.table("sync_daily_figures"))
            ).fetchall()
            new_customers = cur.execute(
                sql.SQL(
                    "SELECT coalesce(sum(new_customers), 0) AS n FROM {v}"
                    " WHERE month = date_trunc('month', now() AT TIME ZONE 'UTC')::date"
                ).format(v=self.table("customer_growth_by_month"))
            ).fetchone()
        return {
            "entities": entities,
            "outcomes": outcomes,
            "summaries": summaries,
            "failures": failures,
            "outlets": outlets,
            "api_version": store["api_version"] if store else None,
            "low_stock_count": int(low_stock["n"]) if low_stock else 0,
            "new_customers_this_month": int(new_customers["n"]) if new_customers else 0,
            "money": dict(money) if money else {},
            "history": {r["entity_type"]: r for r in kept},
            "stock_value": stock_value,
        }

    # ---- alerts -----------------------------------------------------------------------------

    def stale(self) -> list[dict[str, Any]]:
        """`sync_health` rows rated ALERT whose latest sync did not fail, with when each entity
        was last alerted as stale (`last_stale_alert`)."""
        with self.warehouse.transaction() as conn:
            return (
                conn.cursor(row_factory=dict_row)
                .execute(
                    sql.SQL(
                        "SELECT h.entity_type, h.sync_status, h.status, h.health_reason, h.last_successful_sync,"
                        " (SELECT max(l.timestamp) FROM {log} l WHERE l.entity_type = h.entity_type"
                        " AND l.action = 'alert' AND l.status = 'stale') AS last_stale_alert FROM {health} h"
                        " WHERE h.sync_status = 'ALERT' AND h.status IS DISTINCT FROM 'failed'"
                        " ORDER BY h.entity_type"
                    ).format(health=self.table("sync_health"), log=self.table("sync_log"))
                )
                .fetchall()
            )

    # ---- the run summary --------------------------------------------------------------------

    def run_log(self, run_id: str | None) -> dict[str, Any]:
        """What `run_id` left in the ledger: per entity its last completed/failed sync row (with
        the records and the number of every attempt of the run), the run-wide failure if any,
        and the sync_state status of the entities the run touched last."""
        with self.warehouse.transaction() as conn:
            cur = conn.cursor(row_factory=dict_row)
            outcomes = cur.execute(
                sql.SQL(
                    "SELECT DISTINCT ON (entity_type) entity_type, status, duration_seconds,"
                    " sum(records_processed) OVER (PARTITION BY entity_type) AS records, error_details, metadata,"
                    " count(*) OVER (PARTITION BY entity_type) AS attempts FROM {log}"
                    " WHERE metadata->>'run_id' = %s AND status IN ('completed', 'failed') AND action = ANY(%s)"
                    " ORDER BY entity_type, id DESC"
                ).format(log=self.table("sync_log")),
                (run_id, list(SYNC_ACTIONS)),
            ).fetchall()
            run_failure = cur.execute(
                sql.SQL(
                    "SELECT error_details FROM {log} WHERE entity_type = 'all' AND action = 'store_identity'"
                    " AND status = 'failed' AND metadata->>'run_id' = %s ORDER BY id DESC LIMIT 1"
                ).format(log=self.table("sync_log")),
                (run_id,),
            ).fetchone()
            states = cur.execute(
                sql.SQL("SELECT entity_type, status FROM {st} WHERE last_run_id = %s").format(
                    st=self.table("sync_state")
                ),
                (run_id,),
            ).fetchall()
        return {
            "outcomes": outcomes,
            "run_failure": run_failure["error_details"] if run_failure else None,
            "states": {r["entity_type"]: r["status"] for r in states},
        }

    # ---- validation -------------------------------------------------------------------------

    def validation_counts(self, entity: Entity, *, unchecked: Collection[str] = ()) -> dict[str, Any]:
        """Rows, deleted rows, orphans (references to ids the referenced table lacks) and
        duplicates (of the registry's unique keys among live rows) of `entity` and its children.
        References to the `unchecked` entities (disabled ones: their tables stay empty) are not
        counted as orphans."""
        orphans: dict[str, int] = {}
        duplicates: dict[str, int] = {}
        children: dict[str, int] = {}
        with self.warehouse.transaction() as conn:

            def count(query: sql.Composable) -> int:
                row = conn.execute(query).fetchone()
                return int(row[0]) if row else 0

            row = conn.execute(
                sql.SQL("SELECT count(*), count(*) FILTER (WHERE deleted_at IS NOT NULL) FROM {t}").format(
                    t=self.table(entity.table)
                )
            ).fetchone()
            assert row is not None
            for col in entity.columns:
                if col.references and col.references not in unchecked:
                    query = self._orphans(entity.table, col.name, BY_NAME[col.references].table)
                    orphans[f"{col.name}->{col.references}"] = count(query)
            for key in entity.unique_keys:
                duplicates[key] = count(self._duplicates(entity.table, key, live_only=True))
            unknown_shapes = 0
            if entity.shapes:  # records the reader recognised in no published shape
                unknown_shapes = count(
                    sql.SQL("SELECT count(*) FROM {t} WHERE data_shape = {unknown}").format(
                        t=self.table(entity.table), unknown=sql.Literal(UNKNOWN_SHAPE)
                    )
                )
            for child in entity.children:
                children[child.name] = count(sql.SQL("SELECT count(*) FROM {t}").format(t=self.table(child.table)))
                query = self._orphans(child.table, child.parent_key, entity.table)
                orphans[f"{child.name}.{child.parent_key}->{entity.name}"] = count(query)
                for col in child.columns:
                    if col.references and col.references not in unchecked:
                        query = self._orphans(child.table, col.name, BY_NAME[col.references].table)
                        orphans[f"{child.name}.{col.name}->{col.references}"] = count(query)
                duplicates[f"{child.name}.id"] = count(self._duplicates(child.table, "id", live_only=False))
        return {
            "row_count": int(row[0]),
            "deleted_count": int(row[1]),
            "orphans": orphans,
            "duplicates": duplicates,
            "children": children,
            "unknown_shapes": unknown_shapes,
        }

    def without_costs(self, entity: Entity) -> tuple[int, int]:
        """(live rows, live rows with every cost column empty) of an entity whose cost members
        need `products:read:costs` (all empty: the token most likely lacks the scope)."""
        empty = sql.SQL(" AND ").join(sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in entity.cost_members)
        with self.warehouse.transaction() as conn:
            row = conn.execute(
                sql.SQL("SELECT count(*), count(*) FILTER (WHERE {empty}) FROM {t} WHERE deleted_at IS NULL").format(
                    empty=empty, t=self.table(entity.table)
                )
            ).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def _orphans(self, table: str, column: str, ref_table: str) -> sql.Composed:
        return sql.SQL(
            "SELECT count(*) FROM {t} x WHERE x.{c} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {r} r WHERE r.id = x.{c})"
        ).format(t=self.table(table), c=sql.Identifier(column), r=self.table(ref_table))

    def _duplicates(self, table: str, column: str, *, live_only: bool) -> sql.Composed:
        where = sql.SQL("deleted_at IS NULL AND ") if live_only else sql.SQL("")
        return sql.SQL(
            "SELECT COALESCE(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {t} WHERE {w}{c} IS NOT NULL"
            " GROUP BY {c} HAVING count(*) > 1) d"
        ).format(t=self.table(table), w=where, c=sql.Identifier(column))
