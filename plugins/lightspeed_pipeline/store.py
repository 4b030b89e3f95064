"""Writing pages to PostgreSQL: one transaction per page, set-based, version-guarded.

Per page, inside ONE transaction:
  1. rows the table has never seen are COPYed, with their children (the historical
     import is all such rows);
  2. the other rows are upserted with one `INSERT ... SELECT FROM jsonb_to_recordset(...)
     ON CONFLICT (id) DO UPDATE ... WHERE excluded.version > stored.version`; rows whose
     stored version is already >= are filtered out before they reach a row lock, so a
     replayed page writes nothing;
     the same statement replaces the children (line items, payments) of exactly the sales
     it wrote (their `data` comes from the sale's record, see `upsert_sql`);
  3. store rejected records in `sync_rejects`;
  4. move `sync_state.last_version` forward to the page's max version; COMMIT.
A crash loses at most the page in flight and the rerun resumes from the committed
cursor. Identifiers come only from the entity registry (psycopg.sql.Identifier).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from psycopg import sql

from lightspeed_pipeline.db import DbSettings, advisory_key, begin
from lightspeed_pipeline.entities import Child, Column, Entity
from lightspeed_pipeline.mapping import PreparedPage, json_text, needs_escaping, pg_text, to_pg_json

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

_BASE_COLUMNS = (
    ("id", "text"),
    ("version", "bigint"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("deleted_at", "timestamptz"),
)


# When an incoming row (alias {s}) is written over the stored one (t): it is newer; or it has
# no version (the vendor's examples of brands, suppliers, product types) and differs; or the
# stored row was marked deleted because a listing no longer held it, and the record is back.
_NEWER = (
    "t.id IS NULL OR ({s}.version IS NULL AND t.data IS DISTINCT FROM {s}.data)"
    " OR ({s}.version IS NOT NULL AND (t.version IS NULL OR {s}.version > t.version))"
    " OR (t.deleted_at IS NOT NULL AND {s}.deleted_at IS NULL)"
)


@dataclass
class PageCounts:
    """What one page did to the database."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0  # rows written with deleted_at set
    vanished: int = 0  # live rows marked deleted because a complete listing no longer holds them
    child_rows: int = 0
    rejected: int = 0
    escaped: int = 0


@dataclass(frozen=True)
class Listed:
    """What a page of a complete listing proves absent: live rows with a version in `window`
    (after, page max] whose id is not among `ids` (every id the page listed)."""

    window: tuple[int, int] | None
    ids: list[str]


@dataclass(frozen=True)
class SyncStart:
    last_version: int | None
    status_before: str | None
    last_reconciled_at: Any = None  # datetime of the last complete, reconciled listing


def _record_columns(columns: list[tuple[str, str]]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns)


def _entity_columns(entity: Entity) -> list[tuple[str, str]]:
    return list(_BASE_COLUMNS) + [(c.name, c.type) for c in entity.columns] + [("data", "jsonb")]


def _child_columns(child: Child) -> list[tuple[str, str]]:
    cols: list[Column] = list(child.columns)
    return (
        [(child.parent_key, "text"), ("position", "integer")] + [(c.name, c.type) for c in cols] + [("data", "jsonb")]
    )


@cache
def upsert_sql(entity: Entity, schema: str) -> sql.Composed:
    """The one statement that upserts a page of `entity`, writes its children, and counts.

    Rows arrive as one jsonb array (`%(rows)s`; ids are unique within a page, see
    `prepare_page`). Rows whose stored version is already equal or newer are filtered out
    before the INSERT, so they take no row lock and write no WAL. A sale's children are
    inserted by the same statement from the sale rows it wrote (`RETURNING t.data`): a
    child's `data` is its element of the parent's record, so each line item travels
    once, inside its sale; only the children's typed columns come separately
    (`%(child_<name>)s`). Their old rows were deleted just before (`delete_children_sql`).
    Returns (inserted, updated, deleted, child rows).
    """
    cols = _entity_columns(entity)
    names = [n for n, _ in cols]
    table = sql.Identifier(schema, entity.table)
    ident = [sql.Identifier(n) for n in names]
    if entity.versioned:
        pre_filter = sql.SQL(_NEWER).format(s=sql.Identifier("s"))
        guard = sql.SQL(_NEWER).format(s=sql.Identifier("excluded"))
    else:
        # No version (product categories): write only what differs, and revive deleted rows.
        pre_filter = sql.SQL("t.id IS NULL OR t.data IS DISTINCT FROM s.data OR t.deleted_at IS NOT NULL")
        guard = sql.SQL("t.data IS DISTINCT FROM excluded.data OR t.deleted_at IS NOT NULL")
    children = [_child_cte(child, schema) for child in entity.children]
    child_count = sql.SQL(" + ").join(
        sql.SQL("(SELECT count(*) FROM {})").format(sql.Identifier(f"child_{c.name}")) for c in entity.children
    )
    return sql.SQL(
        """
WITH src AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r({record_columns})
), fresh AS (
    SELECT s.* FROM src s LEFT JOIN {table} t ON t.id = s.id WHERE {pre_filter}
), written AS (
    INSERT INTO {table} AS t ({columns}, synced_at)
    SELECT {columns}, now() FROM fresh
    ON CONFLICT (id) DO UPDATE SET {assignments}, synced_at = excluded.synced_at
    WHERE {guard}
    RETURNING t.id, t.data, (t.xmax = 0) AS inserted, (t.deleted_at IS NOT NULL) AS deleted
){children}
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
       count(*) FILTER (WHERE deleted), {child_count}
FROM written
"""
    ).format(
        record_columns=_record_columns(cols),
        table=table,
        pre_filter=pre_filter,
        columns=sql.SQL(", ").join(ident),
        assignments=sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(i, i) for i in ident if i != sql.Identifier("id")
        ),
        guard=guard,
        children=sql.SQL("").join(sql.SQL(", ") + c for c in children),
        child_count=child_count if children else sql.SQL("0"),
    )


def _child_cte(child: Child, schema: str) -> sql.Composed:
    """`child_<name> AS (INSERT ...)`: the children of the parents in `written`."""
    typed = [(n, t) for n, t in _child_columns(child) if n != "data"]
    key = sql.Identifier(child.parent_key)
    own = [sql.Identifier(n) for n, _ in typed if n not in (child.parent_key, "position")]
    return sql.SQL(
        """{name} AS (
    INSERT INTO {table} ({key}, position, {own}, data, synced_at)
    SELECT w.id, (e.n - 1)::integer, {typed_own}, e.value, now()
    FROM written w
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(w.data -> {member}) = 'array' THEN w.data -> {member} END
    ) WITH ORDINALITY AS e(value, n)
    LEFT JOIN jsonb_to_recordset({param}::jsonb) AS c({record_columns})
        ON c.{key} = w.id AND c.position = e.n - 1
    RETURNING 1
)"""
    ).format(
        name=sql.Identifier(f"child_{child.name}"),
        table=sql.Identifier(schema, child.table),
        key=key,
        own=sql.SQL(", ").join(own),
        typed_own=sql.SQL(", ").join(sql.SQL("c.{}").format(i) for i in own),
        member=sql.Literal(child.member),
        param=sql.Placeholder(f"child_{child.name}"),
        record_columns=_record_columns(typed),
    )


def _keys(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Parameters of `delete_children_sql`: what its condition (the upsert's) needs per row."""
    return {
        "ids": [r["id"] for r in rows],
        "versions": [r.get("version") for r in rows],
        "live": [r.get("deleted_at") is None for r in rows],
        "unversioned_data": [to_pg_json(r["data"])[0] if r.get("version") is None else None for r in rows],
    }


@cache
def newer_ids_sql(entity: Entity, schema: str) -> sql.Composed:
    """The ids of a page that the upsert may write (a superset of its filter, decided by id and version)."""
    return sql.SQL(
        "SELECT coalesce(array_agg(s.id), '{{}}')"
        " FROM unnest(%(ids)s::text[], %(versions)s::bigint[]) AS s(id, version) LEFT JOIN {table} t ON t.id = s.id"
        " WHERE t.id IS NULL OR t.version IS NULL OR s.version IS NULL OR s.version > t.version"
        " OR t.deleted_at IS NOT NULL"
    ).format(table=sql.Identifier(schema, entity.table))


@cache
def new_ids_sql(entity: Entity, schema: str) -> sql.Composed:
    """The ids of a page that are not in the table at all."""
    return sql.SQL(
        "SELECT coalesce(array_agg(s.id), '{{}}') FROM unnest(%(ids)s::text[]) AS s(id)"
        " WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = s.id)"
    ).format(table=sql.Identifier(schema, entity.table))


@cache
def copy_sql(table: str, columns: tuple[str, ...], schema: str) -> sql.Composed:
    return sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
        table=sql.Identifier(schema, table), columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )


@cache
def delete_children_sql(entity: Entity, schema: str) -> tuple[sql.Composed, ...]:
    """Per child table: delete the children of the page's parents that the upsert is about
    to replace (the upsert's own condition, `_NEWER`, from ids, versions and liveness)."""
    table = sql.Identifier(schema, entity.table)
    return tuple(
        sql.SQL(
            "DELETE FROM {child} c USING {table} t, unnest(%(ids)s::text[], %(versions)s::bigint[],"
            " %(live)s::boolean[], %(unversioned_data)s::text[]) AS s(id, version, live, data)"
            " WHERE t.id = s.id AND c.{key} = t.id AND ("
            "(s.version IS NULL AND t.data IS DISTINCT FROM s.data::jsonb)"
            " OR (s.version IS NOT NULL AND (t.version IS NULL OR s.version > t.version))"
            " OR (t.deleted_at IS NOT NULL AND s.live))"
        ).format(child=sql.Identifier(schema, child.table), table=table, key=sql.Identifier(child.parent_key))
        for child in entity.children
    )


class EntityBusyError(RuntimeError):
    """Another sync of the same entity holds the entity lock."""


class Store:
    """Sync bookkeeping and page writes over one psycopg connection.

    `reconnect` opens another connection to the same database (for the entity lock and
    the OAuth token store, which must not share the page-writing transaction).
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        settings: DbSettings,
        reconnect: Callable[[], psycopg.Connection[Any]] | None = None,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.schema = settings.schema
        self._reconnect = reconnect

    @classmethod
    def open(cls, conninfo: str, settings: DbSettings, **kwargs: Any) -> Store:
        """A Store on a new pooler-safe connection, able to open siblings with the same arguments."""
        from lightspeed_pipeline.db import connect

        return cls(connect(conninfo, **kwargs), settings, reconnect=lambda: connect(conninfo, **kwargs))

    def sibling(self) -> psycopg.Connection[Any]:
        """A new connection to the same database."""
        if self._reconnect is None:
            raise RuntimeError("this Store was built without a way to open another connection")
        return self._reconnect()

    def close(self) -> None:
        self.conn.close()

    def ensure_connected(self) -> None:
        """Replace a closed or broken connection (after PostgreSQL restarted or killed it)."""
        if (self.conn.closed or self.conn.broken) and self._reconnect is not None:
            self.conn = self._reconnect()

    @contextmanager
    def entity_lock(
        self, entity: Entity, *, wait_s: float = 3600.0, poll_s: float = 1.0, skip: bool = False
    ) -> Iterator[EntityLock]:
        """Hold the entity's advisory lock for the whole sync.

        The lock is transaction-scoped on a dedicated connection whose transaction stays
        open until the sync ends, so it works through a transaction-mode pooler and is
        released by PostgreSQL if the worker dies. A second sync of the same entity waits
        (up to `wait_s`, logging who holds it) or, with `skip`, raises at once.
        """
        key = advisory_key("entity", self.schema, entity.name)
        conn = self.sibling()
        try:
            with conn.transaction():
                started = time.monotonic()
                last_note = -1e9
                while not conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                    holder = _lock_holder(conn, key)
                    waited = time.monotonic() - started
                    if skip or waited >= wait_s:
                        raise EntityBusyError(
                            f"{entity.name}: another sync of this entity is running ({holder})"
                            + ("" if skip else f"; gave up after waiting {waited:.0f} s")
                        )
                    if waited - last_note >= 30:
                        log.warning(
                            "%s: another sync of this entity is running (%s); waiting (up to %.0f s)",
                            entity.name, holder, wait_s,
                        )  # fmt: skip
                        last_note = waited
                    time.sleep(poll_s)
                if time.monotonic() - started > poll_s:
                    log.info("%s: entity lock acquired after %.1f s", entity.name, time.monotonic() - started)
                yield EntityLock(conn, entity.name)
        finally:
            conn.close()

    def _t(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    # -- sync_state / sync_log --------------------------------------------------------

    def start_sync(self, entity: Entity, *, run_id: str | None, action: str | None = None) -> SyncStart:
        """Mark `entity` running; returns the committed cursor it resumes from."""
        with self.conn.transaction():
            begin(self.conn, self.settings)
            row = self.conn.execute(
                sql.SQL(
                    "WITH before AS (SELECT status FROM {st} WHERE entity_type = %(e)s)"
                    " INSERT INTO {st} AS s (entity_type, status, last_attempt_at, last_run_id)"
                    " VALUES (%(e)s, 'running', now(), %(run)s)"
                    " ON CONFLICT (entity_type) DO UPDATE SET status = 'running', error_message = NULL,"
                    " last_attempt_at = now(), last_run_id = %(run)s, updated_at = now()"
                    " RETURNING s.last_version, (SELECT status FROM before), s.last_reconciled_at"
                ).format(st=self._t("sync_state")),
                {"e": entity.name, "run": run_id},
            ).fetchone()
        assert row is not None
        return SyncStart(last_version=row[0], status_before=row[1], last_reconciled_at=row[2])

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
        with self.conn.transaction():
            begin(self.conn, self.settings)
            self.conn.execute(
                sql.SQL(
                    "INSERT INTO {log} (entity_type, action, status, duration_seconds, records_processed,"
                    " error_details, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)"
                ).format(log=self._t("sync_log")),
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

    def finish_sync(self, entity: Entity, *, warning: str | None = None, reconciled: bool = False) -> None:
        """Mark a sync successful; `warning` (or its absence) replaces the entity's standing warning."""
        with self.conn.transaction():
            begin(self.conn, self.settings)
            self.conn.execute(
                sql.SQL(
                    "UPDATE {st} SET status = 'success', error_message = NULL, last_sync_time = now(),"
                    " warning_message = %s,"
                    " last_reconciled_at = CASE WHEN %s THEN now() ELSE last_reconciled_at END,"
                    " updated_at = now() WHERE entity_type = %s"
                ).format(st=self._t("sync_state")),
                (warning[:4000] if warning else None, reconciled, entity.name),
            )

    def fail_sync(self, entity: Entity, message: str) -> None:
        with self.conn.transaction():
            begin(self.conn, self.settings)
            self.conn.execute(
                sql.SQL(
                    "UPDATE {st} SET status = 'failed', error_message = %s, updated_at = now() WHERE entity_type = %s"
                ).format(st=self._t("sync_state")),
                (message[:4000], entity.name),
            )

    def fail_all(self, message: str, *, run_id: str | None) -> None:
        """A run-wide failure (the store check): every entity is failed with the message, and
        sync_log has a row of the run that says why; cursors and tables stay as they are."""
        with self.conn.transaction():
            begin(self.conn, self.settings)
            self.conn.execute(
                sql.SQL("UPDATE {st} SET status = 'failed', error_message = %s, updated_at = now()").format(
                    st=self._t("sync_state")
                ),
                (message[:4000],),
            )
        self.log_event("all", "store_identity", "failed", error=message, metadata={"run_id": run_id})

    def fail_abandoned(self, run_id: str | None) -> list[str]:
        """Syncs of `run_id` still marked running whose entity lock nobody holds died without
        recording it (SIGKILL, execution timeout): mark them failed so health tells the truth."""
        with self.conn.transaction():
            begin(self.conn, self.settings)
            rows = self.conn.execute(
                sql.SQL("SELECT entity_type FROM {st} WHERE status = 'running' AND last_run_id = %s").format(
                    st=self._t("sync_state")
                ),
                (run_id,),
            ).fetchall()
            dead = []
            for (name,) in rows:
                key = advisory_key("entity", self.schema, name)
                if self.conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                    dead.append(name)
            if dead:
                self.conn.execute(
                    sql.SQL(
                        "UPDATE {st} SET status = 'failed', updated_at = now(), error_message ="
                        " entity_type || ': the sync did not finish (its worker was killed or timed out); the next"
                        " run resumes from the last committed page' WHERE entity_type = ANY(%s)"
                    ).format(st=self._t("sync_state")),
                    (dead,),
                )
        return dead

    # -- pages ------------------------------------------------------------------------

    def newer_ids(self, entity: Entity, ids: list[str], versions: list[int | None]) -> set[str]:
        """Which of these ids the upsert would write: new, or newer than the stored version.

        A full refresh (or a read with overlap) re-reads stored versions; asking first, by id
        and version alone, lets the sync skip mapping, sending and parsing every unchanged
        record (bench/run.py: full refresh of products). Versions only grow, so an id
        found not newer stays so, and the upsert keeps its own guard anyway.
        """
        with self.conn.transaction():
            begin(self.conn, self.settings)
            res = self.conn.execute(newer_ids_sql(entity, self.schema), {"ids": ids, "versions": versions}).fetchone()
        return set(res[0]) if res else set()

    def write_page(
        self,
        entity: Entity,
        page: PreparedPage,
        *,
        cursor: int | None,
        after: int | str | None,
        run_id: str | None,
        listed: Listed | None = None,
    ) -> PageCounts:
        """Write one prepared page and (for versioned entities) move the cursor, atomically.

        `listed` (a page of a complete listing, see `Listed`) also marks deleted, in the same
        transaction, the live rows whose version lies in the page's range but which the page
        does not hold: the API serves every record of that range in it, so they are gone.
        """
        counts = PageCounts(received=len(page.rows) + len(page.rejects), rejected=len(page.rejects))
        rows, children = page.rows, page.children
        with self.conn.transaction():
            begin(self.conn, self.settings)
            if rows and entity.versioned:
                # Rows the table has never seen are COPYed (the historical import is all such
                # rows); only the others need the upsert. The entity lock keeps other syncs out
                # between this check and the COPY; a row inserted meanwhile by anyone else
                # fails the page on its primary key, and the retry upserts it.
                res = self.conn.execute(new_ids_sql(entity, self.schema), {"ids": page.ids}).fetchone()
                new = set(res[0]) if res else set()
                if new:
                    self._copy_new(entity, [r for r in rows if r["id"] in new], children, counts)
                    rows = [r for r in rows if r["id"] not in new]
            if rows:
                rows_json, escaped = to_pg_json(rows)
                counts.escaped += escaped
                params: dict[str, Any] = {"rows": rows_json}
                ids = {r["id"] for r in rows}
                for child in entity.children:
                    kids = [c for c in children.get(child.name, []) if c[child.parent_key] in ids]
                    params[f"child_{child.name}"], escaped = to_pg_json(kids)
                    counts.escaped += escaped
                if entity.children:
                    for delete in delete_children_sql(entity, self.schema):
                        self.conn.execute(delete, _keys(rows))
                res = self.conn.execute(upsert_sql(entity, self.schema), params).fetchone()
                assert res is not None
                inserted, counts.updated, deleted, child_rows = res
                counts.inserted += inserted
                counts.deleted += deleted
                counts.child_rows += child_rows
            counts.unchanged = len(page.rows) - counts.inserted - counts.updated
            if listed is not None and listed.window is not None:
                cur = self.conn.execute(
                    sql.SQL(
                        "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE deleted_at IS NULL"
                        " AND version > %(low)s AND version <= %(high)s AND NOT (id = ANY(%(ids)s))"
                    ).format(t=self._t(entity.table)),
                    {"low": listed.window[0], "high": listed.window[1], "ids": listed.ids},
                )
                counts.vanished += max(cur.rowcount, 0)
            if page.rejects:
                self._store_rejects(entity, page, after, run_id)
            if cursor is not None:
                self.conn.execute(
                    sql.SQL(
                        "UPDATE {st} SET last_version = GREATEST(COALESCE(last_version, 0), %s), updated_at = now()"
                        " WHERE entity_type = %s"
                    ).format(st=self._t("sync_state")),
                    (cursor, entity.name),
                )
        return counts

    def _copy_new(
        self, entity: Entity, rows: list[dict[str, Any]], children: dict[str, list[dict[str, Any]]], counts: PageCounts
    ) -> None:
        """COPY rows (and their children) that are not in the table yet: raw COPY speed.

        Values are what the upsert would store: typed columns as typed, `data` as the
        record, a child's `data` as its element of the parent's record, and text that
        PostgreSQL cannot hold escaped exactly as `to_pg_json` escapes it. One C pass over
        the page says whether anything needs escaping; almost no page does, and then the
        rows go out without looking at each value.
        """
        cols = [n for n, _ in _entity_columns(entity)]
        typed = cols[:-1]  # ..., data
        clean = not needs_escaping(rows)
        with self.conn.cursor().copy(copy_sql(entity.table, tuple(cols), self.schema)) as cp:
            for row in rows:
                if clean:
                    cp.write_row((*[row.get(c) for c in typed], json_text(row["data"])))
                else:
                    cp.write_row(self._escaped(row, typed, row["data"], counts, count_data=True))
        counts.inserted += len(rows)
        counts.deleted += sum(1 for r in rows if r.get("deleted_at") is not None)
        records = {r["id"]: r["data"] for r in rows}
        for child in entity.children:
            ccols = [n for n, _ in _child_columns(child)]
            ctyped = ccols[:-1]
            key, member = child.parent_key, child.member
            with self.conn.cursor().copy(copy_sql(child.table, tuple(ccols), self.schema)) as cp:
                for kid in children.get(child.name, []):
                    parent = records.get(kid[key])
                    if parent is None:
                        continue
                    element = parent[member][kid["position"]]
                    if clean:
                        cp.write_row((*[kid.get(c) for c in ctyped], json_text(element)))
                    else:  # the element's escapes were counted with the parent's record
                        cp.write_row(self._escaped(kid, ctyped, element, counts, count_data=False))
                    counts.child_rows += 1

    @staticmethod
    def _escaped(
        row: dict[str, Any], typed: list[str], data: Any, counts: PageCounts, *, count_data: bool
    ) -> list[Any]:
        values = []
        for name in typed:
            value = row.get(name)
            if isinstance(value, str):
                value, escaped = pg_text(value)
                counts.escaped += escaped
            values.append(value)
        text, escaped = to_pg_json(data)
        if count_data:
            counts.escaped += escaped
        values.append(text)
        return values

    def _store_rejects(self, entity: Entity, page: PreparedPage, after: int | str | None, run_id: str | None) -> None:
        payloads = [{"reason": r.reason, "payload": r.payload} for r in page.rejects]
        doc, _ = to_pg_json(payloads)
        self.conn.execute(
            sql.SQL(
                "INSERT INTO {rej} (entity_type, after_version, reason, payload, run_id)"
                " SELECT %(e)s, %(after)s, r.reason, r.payload, %(run)s"
                " FROM jsonb_to_recordset(%(doc)s::jsonb) AS r(reason text, payload jsonb)"
            ).format(rej=self._t("sync_rejects")),
            {"e": entity.name, "after": None if after is None else str(after), "run": run_id, "doc": doc},
        )

    def live_rows(self, entity: Entity) -> int:
        with self.conn.transaction():
            begin(self.conn, self.settings)
            row = self.conn.execute(
                sql.SQL("SELECT count(*) FROM {t} WHERE deleted_at IS NULL").format(t=self._t(entity.table))
            ).fetchone()
        return int(row[0]) if row else 0

    def mark_missing_deleted(self, entity: Entity, *, max_version: int | None, unversioned_ids: list[str]) -> int:
        """After a complete listing: the live rows it did not reach are deleted.

        The pages already marked what is missing inside their version ranges; what is left is
        every row above the listing's highest version, and every row without a version (product
        categories; the vendor's unversioned examples) that the listing did not name.
        """
        with self.conn.transaction():
            begin(self.conn, self.settings)
            cur = self.conn.execute(
                sql.SQL(
                    "UPDATE {t} SET deleted_at = now(), synced_at = now() WHERE deleted_at IS NULL"
                    " AND NOT (id = ANY(%(ids)s)) AND (version IS NULL OR %(max)s::bigint IS NULL OR version > %(max)s)"
                ).format(t=self._t(entity.table)),
                {"ids": unversioned_ids, "max": max_version},
            )
            return max(cur.rowcount, 0)


class EntityLock:
    """A held entity lock; `check()` fails loudly if its connection (and so the lock) is gone."""

    def __init__(self, conn: psycopg.Connection[Any], entity: str) -> None:
        self.conn = conn
        self.entity = entity

    def check(self) -> None:
        import psycopg

        try:
            self.conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise EntityBusyError(
                f"{self.entity}: the connection holding the entity lock was lost ({type(exc).__name__}); "
                "stopping so two syncs cannot interleave"
            ) from exc


def _lock_holder(conn: psycopg.Connection[Any], key: int) -> str:
    """Who holds advisory lock `key`: pid, application and since when (for the log line)."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.xact_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return "holder not visible"
    since = row[2].strftime("%Y-%m-%d %H:%M:%S %Z") if row[2] else "?"
    return f"held by backend pid {row[0]}, application {row[1]!r}, since {since}"
