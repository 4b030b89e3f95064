"""History mode: every version of a record the sync wrote, with the interval it was valid in.

The layout of SQL Server's system-versioned temporal tables: the entity table keeps the
current version of each record, as always; `lightspeed_<entity>_versions` keeps the versions
it replaced, each with `valid_from` and `valid_to`; the view `lightspeed_<entity>_history`
is both (the current rows with `valid_to` NULL and `is_current`), and
`lightspeed_<entity>_as_of(ts)` returns the records as they stood at `ts`.

A statement-level AFTER UPDATE trigger over transition tables (one INSERT ... SELECT per
statement, as the audit trail does) moves each replaced version into the versions table,
inside the statement that replaced it, so inside the page's transaction: a crash loses the
page and its history together, and a replayed page, which the version guard lets write
nothing, records nothing. Only a new version or a change of deleted-ness is a version: a
restatement of the same version (an API version switch, costs granted) is not. A first
import writes no history at all (the COPY path of new rows fires no UPDATE trigger), so
the import stays at raw-COPY speed.

When a version became valid (`valid_from`), one rule, in the trigger and the view alike:
the record's `updated_at` when it is later than the previous version's `valid_from` and not
in the future, otherwise the time the sync wrote it (a row marked deleted because a listing
no longer holds it keeps its updated_at: its deletion is dated when the sync saw it). The
first version known of a record: its `updated_at` (at most when it was written).

Every versioned entity has its versions table, view and as-of function (so switching
history on needs no DDL but the trigger); LIGHTSPEED_HISTORY says which have the trigger.
DDL is run only where something is missing or changed: `migrate` runs daily and must not
queue behind report queries.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Collection
from typing import Any

from psycopg import sql

from lightspeed_pipeline.entities import ENTITIES, Entity
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.pages import entity_columns

log = logging.getLogger(__name__)

TRIGGER = "lightspeed_history"
HISTORY_COLUMNS = (
    ("valid_from", "timestamptz NOT NULL"),
    ("valid_to", "timestamptz NOT NULL"),
    ("deleted", "boolean NOT NULL"),  # the version was a deletion (the record was deleted from valid_from on)
    ("seeded", "boolean NOT NULL"),  # written before history was switched on: history starts here
)


_RESERVED = {n for n, _ in HISTORY_COLUMNS} | {"is_current", "history_id", "recorded_at"}


def _columns(entity: Entity) -> list[tuple[str, str, str]]:
    """The entity table's columns as the versions table and the view repeat them: (column,
    name in history, type). A column named like a history column (a price book's own
    `valid_from`) is `record_<name>` there."""
    return [
        (n, f"record_{n}" if n in _RESERVED else n, t)
        for n, t in [*entity_columns(entity), ("synced_at", "timestamptz")]
    ]


def valid_from_sql(row: str, last_to: str) -> str:
    """When the version in `row` became valid, given `last_to`, the end of its previous version
    (NULL when none is known): its updated_at, never before the previous version ended nor
    after it was written."""
    return f"GREATEST({last_to}, LEAST(COALESCE({row}.updated_at, {row}.synced_at), {row}.synced_at))"


def _versions_ddl(entity: Entity, schema: str) -> sql.Composed:
    cols = [
        sql.SQL("{} {}").format(sql.Identifier(h), sql.SQL('text COLLATE "C" NOT NULL' if n == "id" else t))
        for n, h, t in _columns(entity)
    ]
    cols += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in HISTORY_COLUMNS]
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} (history_id bigserial PRIMARY KEY, {cols},"
        " recorded_at timestamptz NOT NULL DEFAULT now())"
    ).format(t=sql.Identifier(schema, entity.versions_table), cols=sql.SQL(", ").join(cols))


def _view_ddl(entity: Entity, schema: str) -> sql.Composed:
    cols = _columns(entity)
    versions = sql.Identifier(schema, entity.versions_table)
    return sql.SQL(
        "CREATE VIEW {view} WITH (security_invoker = true) AS\n"
        "SELECT {v_cols}, v.valid_from, v.valid_to, false AS is_current, v.deleted, v.seeded\n"
        "FROM {versions} v\n"
        "UNION ALL\n"
        "SELECT {t_cols}, {valid_from}, NULL::timestamptz, true, t.deleted_at IS NOT NULL,\n"
        "    NOT COALESCE(h.enabled, false) OR t.synced_at < h.enabled_at\n"
        "FROM {table} t\n"
        "LEFT JOIN LATERAL (SELECT v.valid_to AS last_to FROM {versions} v\n"
        '    WHERE v.id = t.id COLLATE "C" ORDER BY v.id DESC, v.valid_to DESC LIMIT 1) l ON true\n'
        "LEFT JOIN {state} h ON h.entity_type = {name}"
    ).format(
        view=sql.Identifier(schema, entity.history_view),
        v_cols=sql.SQL(", ").join(sql.SQL("v.{}").format(sql.Identifier(h)) for _, h, _ in cols),
        t_cols=sql.SQL(", ").join(
            sql.SQL('t.id COLLATE "C" AS id' if n == "id" else "t.{} AS {}").format(
                sql.Identifier(n), sql.Identifier(h)
            )
            for n, h, _ in cols
        ),
        versions=versions,
        valid_from=sql.SQL(valid_from_sql("t", "l.last_to")),  # type: ignore[arg-type]
        table=sql.Identifier(schema, entity.table),
        state=sql.Identifier(schema, "sync_history"),
        name=sql.Literal(entity.name),
    )


def _as_of_ddl(entity: Entity, schema: str) -> sql.Composed:
    """`lightspeed_<entity>_as_of(ts)`: the records as they stood at `ts` (deleted ones left out).
    Plain SQL on qualified names, so PostgreSQL inlines it into the caller's query."""
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}(ts timestamptz) RETURNS SETOF {view} LANGUAGE sql STABLE AS $f$\n"
        "    SELECT * FROM {view} WHERE valid_from <= ts AND (valid_to IS NULL OR valid_to > ts) AND NOT deleted\n"
        "$f$"
    ).format(
        fn=sql.Identifier(schema, f"lightspeed_{entity.name}_as_of"), view=sql.Identifier(schema, entity.history_view)
    )


def _trigger_function_ddl(entity: Entity, schema: str) -> sql.Composed:
    """The trigger function: the versions an UPDATE statement replaced, into the versions table.

    Each replaced version's `valid_from` needs the end of the version before it:
    * one probe a row of the (id, valid_to) index, in that index's order (max(valid_to) may walk
      the valid_to index instead, where the rows this statement inserted so far lie too:
      quadratic in the statement's size);
    * made once a row (`OFFSET 0` keeps the subquery from being flattened into the three
      expressions that use it);
    * by the index even while the table's statistics still say it is empty (`enable_seqscan`
      off, inside the function only: a sequential scan a row of a growing table is quadratic);
    * without JIT (the join's estimate, thousands of times the real rows, made it compile for
      150 ms a statement).
    EXECUTE plans the statement on every call with the transition tables' real sizes (a
    statically planned one caches the plan of the session's first, usually empty, call: see
    `security.audit_functions`)."""
    cols = _columns(entity)
    versions = sql.Identifier(schema, entity.versions_table)
    change = "LEAST(n.updated_at, now())"  # now(): the transaction's start, the new row's synced_at
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql SET enable_seqscan = off SET jit = off"
        " AS $f$\n"
        "DECLARE started timestamptz;\n"
        "BEGIN\n"
        "    SELECT enabled_at INTO started FROM {state} WHERE entity_type = {name};\n"
        "    EXECUTE $q$\n"
        "    INSERT INTO {versions} ({cols}, valid_from, valid_to, deleted, seeded)\n"
        "    SELECT {c_cols}, c.valid_from,\n"
        "        GREATEST(c.valid_from, CASE WHEN c.change > c.valid_from THEN c.change ELSE now() END),\n"
        "        c.deleted_at IS NOT NULL, c.synced_at < $1\n"
        "    FROM (\n"
        "        SELECT o.*, {valid_from} AS valid_from, {change} AS change\n"
        '        FROM old_rows o JOIN new_rows n ON n.id COLLATE "C" = o.id COLLATE "C"\n'
        "        WHERE o.version IS DISTINCT FROM n.version OR (o.deleted_at IS NULL) <> (n.deleted_at IS NULL)\n"
        "        OFFSET 0\n"
        "    ) c\n"
        "    $q$ USING started;\n"
        "    RETURN NULL;\n"
        "END\n$f$"
    ).format(
        fn=sql.Identifier(schema, f"{TRIGGER}_{entity.name}"),
        state=sql.Identifier(schema, "sync_history"),
        name=sql.Literal(entity.name),
        versions=versions,
        cols=sql.SQL(", ").join(sql.Identifier(h) for _, h, _ in cols),
        c_cols=sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(n)) for n, _, _ in cols),
        valid_from=sql.SQL(
            valid_from_sql(
                "o",
                sql.SQL(
                    '(SELECT v.valid_to FROM {} v WHERE v.id = o.id COLLATE "C"'
                    " ORDER BY v.id DESC, v.valid_to DESC LIMIT 1)"
                )
                .format(versions)
                .as_string(None),
            )
        ),
        change=sql.SQL(change),  # type: ignore[arg-type]
    )


def _checksum(statement: sql.Composed) -> str:
    return hashlib.sha256(statement.as_string(None).encode()).hexdigest()


def ensure_history(
    conn: Any, schema: str, enabled: Collection[str], entities: tuple[Entity, ...] = ENTITIES
) -> dict[str, Any]:
    """The versions tables, views, as-of functions and triggers of `schema`, and sync_history's
    record of when each entity's history was switched on or off. Idempotent; inside `migrate`'s
    transaction, before the views (inventory_daily, product_price_history read these)."""

    def rows(query: str, *params: Any) -> list[tuple[Any, ...]]:
        return list(conn.execute(query, params).fetchall())

    versioned = [e for e in entities if e.versioned]
    state_table = sql.Identifier(schema, "sync_history").as_string(None)
    if conn.execute("SELECT to_regclass(%s)", (state_table,)).fetchone()[0] is None:
        return {"created": [], "views": [], "switched_on": [], "switched_off": [], "skipped": "migration 0016 absent"}
    unknown = set(enabled) - {e.name for e in versioned}
    if unknown:
        raise ValueError(f"history mode needs a versioned entity; not one: {', '.join(sorted(unknown))}")
    existing = {
        (t, c)
        for t, c in rows(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s"
            " AND table_name = ANY(%s)",
            schema,
            [e.versions_table for e in versioned],
        )
    }
    recorded = dict(rows(f"SELECT name, checksum FROM {sql.Identifier(schema, 'schema_views').as_string(None)}"))
    present_views = {r[0] for r in rows("SELECT viewname FROM pg_views WHERE schemaname = %s", schema)}
    triggers = {
        r[0]
        for r in rows(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND t.tgname = %s",
            schema,
            TRIGGER,
        )
    }
    created, views, switched_on, switched_off = [], [], [], []
    for e in versioned:
        versions = sql.Identifier(schema, e.versions_table)
        if not any(t == e.versions_table for t, _ in existing):
            conn.execute(_versions_ddl(e, schema))
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (id, valid_to)").format(
                    sql.Identifier(f"{e.versions_table}_id"), versions
                )
            )
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (valid_to)").format(
                    sql.Identifier(f"{e.versions_table}_valid_to"), versions
                )
            )
            created.append(e.versions_table)
        else:  # a later migration added a column to the entity table: the versions table follows
            for _, name, type_ in _columns(e):
                if (e.versions_table, name) not in existing:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                            versions, sql.Identifier(name), sql.SQL(type_)
                        )
                    )
        view = _view_ddl(e, schema)
        key = f"history_{e.name}"
        if recorded.get(key) != _checksum(view) or e.history_view not in present_views:
            conn.execute(sql.SQL("DROP VIEW IF EXISTS {} CASCADE").format(sql.Identifier(schema, e.history_view)))
            conn.execute(view)
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} (name, checksum) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
                    " SET checksum = excluded.checksum, applied_at = now()"
                ).format(sql.Identifier(schema, "schema_views")),
                (key, _checksum(view)),
            )
            views.append(e.history_view)
        conn.execute(_as_of_ddl(e, schema))  # CREATE OR REPLACE FUNCTION: no table lock
        on = e.name in enabled
        if on:
            conn.execute(_trigger_function_ddl(e, schema))
        if on and e.table not in triggers:
            conn.execute(
                sql.SQL(
                    "CREATE TRIGGER {trigger} AFTER UPDATE ON {table} REFERENCING OLD TABLE AS old_rows"
                    " NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {fn}()"
                ).format(
                    trigger=sql.Identifier(TRIGGER),
                    table=sql.Identifier(schema, e.table),
                    fn=sql.Identifier(schema, f"{TRIGGER}_{e.name}"),
                )
            )
        elif not on and e.table in triggers:
            conn.execute(
                sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(TRIGGER), sql.Identifier(schema, e.table))
            )
        # Record the switch: a table that already holds rows starts its history with them
        # (`seeded`, no API call), the current row being each record's open interval.
        state = sql.Identifier(schema, "sync_history")
        if on:
            cur = conn.execute(
                sql.SQL(
                    "INSERT INTO {} AS h (entity_type, enabled, enabled_at) VALUES (%s, true, now())"
                    " ON CONFLICT (entity_type) DO UPDATE SET enabled = true, enabled_at = now()"
                    " WHERE NOT h.enabled"
                ).format(state),
                (e.name,),
            )
            if cur.rowcount:
                switched_on.append(e.name)
        else:
            cur = conn.execute(
                sql.SQL("UPDATE {} SET enabled = false, disabled_at = now() WHERE entity_type = %s AND enabled").format(
                    state
                ),
                (e.name,),
            )
            if cur.rowcount:
                switched_off.append(e.name)
    if switched_on or switched_off:
        log.info("history mode switched on for %s, off for %s", switched_on or "none", switched_off or "none")
    return {"created": created, "views": views, "switched_on": switched_on, "switched_off": switched_off}


def prune_history(
    warehouse: Warehouse, keep_days: float, *, batch: int = 10_000, entities: tuple[Entity, ...] = ENTITIES
) -> dict[str, int]:
    """Delete past versions that ended more than `keep_days` ago, `batch` rows a transaction
    (row locks only, released at each commit: the sync and readers never wait long).
    `keep_days` 0 keeps everything. Returns the rows removed per entity (those with any)."""
    removed: dict[str, int] = {}
    if keep_days <= 0:
        return removed
    for e in entities:
        if not e.versioned:
            continue
        versions = warehouse.table(e.versions_table)
        total = 0
        while True:
            with warehouse.transaction() as conn:
                cur = conn.execute(
                    sql.SQL(
                        "DELETE FROM {v} WHERE history_id IN (SELECT history_id FROM {v}"
                        " WHERE valid_to < now() - make_interval(secs => %s) LIMIT %s)"
                    ).format(v=versions),
                    (keep_days * 86400.0, batch),
                )
                total += cur.rowcount
                if cur.rowcount < batch:
                    break
        if total:
            removed[e.name] = total
            with warehouse.transaction() as conn:
                conn.execute(
                    sql.SQL(
                        "UPDATE {} SET pruned_at = now(), pruned_rows = pruned_rows + %s WHERE entity_type = %s"
                    ).format(warehouse.table("sync_history")),
                    (total, e.name),
                )
    return removed


def measure_history(warehouse: Warehouse, entities: tuple[Entity, ...] = ENTITIES) -> dict[str, dict[str, Any]]:
    """Count each entity's past versions and their earliest date, kept in sync_history (once a run,
    by `finalize`: the health page reads the figures instead of counting every minute)."""
    out: dict[str, dict[str, Any]] = {}
    with warehouse.transaction() as conn:
        known = {
            r[0] for r in conn.execute(sql.SQL("SELECT entity_type FROM {}").format(warehouse.table("sync_history")))
        }
        for e in entities:
            if e.name not in known:
                continue
            count, oldest = conn.execute(
                sql.SQL("SELECT count(*), min(valid_from) FROM {}").format(warehouse.table(e.versions_table))
            ).fetchone()
            conn.execute(
                sql.SQL(
                    "UPDATE {} SET versions_rows = %s, oldest_at = %s, measured_at = now() WHERE entity_type = %s"
                ).format(warehouse.table("sync_history")),
                (count, oldest, e.name),
            )
            out[e.name] = {"versions": count, "oldest": oldest}
    return out


def measure_stock_value(warehouse: Warehouse, days: int = 30) -> int:
    """The stock's value at the close of each of the last `days` days (inventory_daily: units on
    hand x the product's supply price today), kept in sync_daily_figures for the health page.
    Once a run, by `finalize`: the figure changes only when a sync writes, and summing
    inventory_daily is seconds at 60 000 records, too slow for a page loaded every minute."""
    figures = warehouse.table("sync_daily_figures")
    with warehouse.transaction() as conn:
        conn.execute(sql.SQL("DELETE FROM {} WHERE metric = 'stock_value'").format(figures))
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO {figures} (metric, day, value)"
                " SELECT 'stock_value', d.day, coalesce(sum(d.closing_level * p.supply_price)"
                " FILTER (WHERE d.closing_level > 0), 0)"
                " FROM {daily} d LEFT JOIN {products} p ON p.id = d.product_id"
                " WHERE d.day > (now() AT TIME ZONE 'UTC')::date - %s GROUP BY d.day"
            ).format(
                figures=figures,
                daily=warehouse.table("inventory_daily"),
                products=warehouse.table("lightspeed_products"),
            ),
            (days,),
        )
        return int(cur.rowcount)
