"""Writing pages to the warehouse: one transaction per page, set-based, version-guarded.

Per page, inside ONE transaction:
  1. rows the table has never seen are COPYed, with their children (the historical
     import is all such rows);
  2. the other rows are upserted with one `INSERT ... SELECT FROM jsonb_to_recordset(...)
     ON CONFLICT (id) DO UPDATE ... WHERE excluded.version > stored.version`; rows whose
     stored version is already >= are filtered out before they reach a row lock, so a
     replayed page writes nothing;
     the same statement replaces the children (line items, payments) of exactly the sales
     it wrote (their `data` comes from the sale's record, see `upsert_sql`);
  3. mark the rows a page of a complete listing proves vanished (`reconciliation.py`);
  4. store rejected records in `sync_rejects`;
  5. move `sync_state.last_version` forward to the page's max version; COMMIT.
A crash loses at most the page in flight and the rerun resumes from the committed
cursor. Identifiers come only from the entity registry (psycopg.sql.Identifier).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from psycopg import sql

from lightspeed_pipeline.entities import Child, Column, Entity
from lightspeed_pipeline.mapping import PreparedPage, json_text, needs_escaping, pg_text, to_pg_json
from lightspeed_pipeline.warehouse.connection import Warehouse
from lightspeed_pipeline.warehouse.reconciliation import ReconcileWindow, mark_vanished_in_window

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
# ... or, for an entity with published record shapes, the same version now comes in another
# shape (after the API version was switched, its listing restates every row in the new shape).
_RESHAPED = " OR ({s}.version = t.version AND {s}.data_shape IS DISTINCT FROM t.data_shape)"


def _newer(entity: Entity, alias: str) -> sql.Composable:
    """`_NEWER` for `entity` (with `_RESHAPED` where it has shapes, `_costed` where it has cost
    members), the incoming row as `alias`."""
    text = _NEWER + (_RESHAPED if entity.shapes else "")
    return sql.SQL(text).format(s=sql.Identifier(alias)) + _costed(entity, sql.Identifier(alias))


def _costed(entity: Entity, incoming: sql.Composable) -> sql.Composable:
    """... or the stored row has no cost and the same version now comes with one (the token was
    granted `products:read:costs`: a full refresh fills the costs the versions alone would skip)."""
    if not entity.cost_members:
        return sql.SQL("")
    return sql.SQL(" OR ({s}.version = t.version AND ({any}))").format(
        s=incoming,
        any=sql.SQL(" OR ").join(
            sql.SQL("(t.{c} IS NULL AND {s}.{c} IS NOT NULL)").format(c=sql.Identifier(c), s=incoming)
            for c in entity.cost_members
        ),
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


def _record_columns(columns: list[tuple[str, str]]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns)


def entity_columns(entity: Entity) -> list[tuple[str, str]]:
    shape = [("data_shape", "text")] if entity.shapes else []  # which published shape `data` has
    return list(_BASE_COLUMNS) + [(c.name, c.type) for c in entity.columns] + shape + [("data", "jsonb")]


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
    cols = entity_columns(entity)
    names = [n for n, _ in cols]
    table = sql.Identifier(schema, entity.table)
    ident = [sql.Identifier(n) for n in names]
    if entity.versioned:
        pre_filter = _newer(entity, "s")
        guard = _newer(entity, "excluded")
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
        "shapes": [r.get("data_shape") for r in rows],
    }


@cache
def newer_ids_sql(entity: Entity, schema: str) -> sql.Composed:
    """The ids of a page that the upsert may write (a superset of its filter, decided by id and
    version, and by shape where the entity has shapes)."""
    return sql.SQL(
        "SELECT coalesce(array_agg(s.id), '{{}}')"
        " FROM unnest(%(ids)s::text[], %(versions)s::bigint[], %(shapes)s::text[]) AS s(id, version, shape)"
        " LEFT JOIN {table} t ON t.id = s.id"
        " WHERE t.id IS NULL OR t.version IS NULL OR s.version IS NULL OR s.version > t.version"
        " OR t.deleted_at IS NOT NULL{reshaped}{costed}"
    ).format(
        table=sql.Identifier(schema, entity.table),
        # A record with its costs, stored without them (`_costed`): `costed` says which records have one.
        costed=sql.SQL(" OR (s.version = t.version AND s.id = ANY(%(costed)s::text[]) AND ({none}))").format(
            none=sql.SQL(" AND ").join(sql.SQL("t.{} IS NULL").format(sql.Identifier(c)) for c in entity.cost_members)
        )
        if entity.cost_members
        else sql.SQL(""),
        # Only when the caller said the shape (`sync._newer_only` does): a restatement.
        reshaped=sql.SQL(
            " OR (s.version = t.version AND s.shape IS NOT NULL AND s.shape IS DISTINCT FROM t.data_shape)"
            if entity.shapes
            else ""
        ),
    )


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
            " %(live)s::boolean[], %(unversioned_data)s::text[], %(shapes)s::text[])"
            " AS s(id, version, live, data, shape)"
            " WHERE t.id = s.id AND c.{key} = t.id AND ("
            "(s.version IS NULL AND t.data IS DISTINCT FROM s.data::jsonb)"
            " OR (s.version IS NOT NULL AND (t.version IS NULL OR s.version > t.version))"
            " OR (t.deleted_at IS NOT NULL AND s.live){reshaped})"
        ).format(
            child=sql.Identifier(schema, child.table),
            table=table,
            key=sql.Identifier(child.parent_key),
            reshaped=sql.SQL(" OR (s.version = t.version AND s.shape IS DISTINCT FROM t.data_shape)")
            if entity.shapes
            else sql.SQL(""),
        )
        for child in entity.children
    )


class PageWriter:
    """Writes prepared pages of one sync (and asks which records it would write)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.schema = warehouse.schema

    def newer_ids(
        self,
        entity: Entity,
        ids: list[str],
        versions: list[int | None],
        shapes: list[str | None] | None = None,
        costed: list[str] | None = None,
    ) -> set[str]:
        """Which of these ids the upsert would write: new, or newer than the stored version.

        A full refresh (or a read with overlap) re-reads stored versions; asking first, by id
        and version alone, lets the sync skip mapping, sending and parsing every unchanged
        record (bench/run.py: full refresh of products). Versions only grow, so an id
        found not newer stays so, and the upsert keeps its own guard anyway.
        """
        with self.warehouse.transaction() as conn:
            params = {"ids": ids, "versions": versions, "shapes": shapes or [None] * len(ids), "costed": costed or []}
            res = conn.execute(newer_ids_sql(entity, self.schema), params).fetchone()
        return set(res[0]) if res else set()

    def write(
        self,
        entity: Entity,
        page: PreparedPage,
        *,
        cursor: int | None,
        after: int | str | None,
        run_id: str | None,
        window: ReconcileWindow | None = None,
    ) -> PageCounts:
        """Write one prepared page and (for versioned entities) move the cursor, atomically.

        `window` (a page of a complete listing, see `ReconcileWindow`) also marks vanished, in
        the same transaction, the live rows whose version lies in the page's range but which
        the page does not hold: the API serves every record of that range in it.
        """
        counts = PageCounts(received=len(page.rows) + len(page.rejects), rejected=len(page.rejects))
        rows, children = page.rows, page.children
        with self.warehouse.transaction() as conn:
            if rows and entity.versioned:
                # Rows the table has never seen are COPYed (the historical import is all such
                # rows); only the others need the upsert. The entity lock keeps other syncs out
                # between this check and the COPY; a row inserted meanwhile by anyone else
                # fails the page on its primary key, and the retry upserts it.
                res = conn.execute(new_ids_sql(entity, self.schema), {"ids": page.ids}).fetchone()
                new = set(res[0]) if res else set()
                if new:
                    self._copy_new(conn, entity, [r for r in rows if r["id"] in new], children, counts)
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
                        conn.execute(delete, _keys(rows))
                res = conn.execute(upsert_sql(entity, self.schema), params).fetchone()
                assert res is not None
                inserted, counts.updated, deleted, child_rows = res
                counts.inserted += inserted
                counts.deleted += deleted
                counts.child_rows += child_rows
            counts.unchanged = len(page.rows) - counts.inserted - counts.updated
            if window is not None:
                counts.vanished += mark_vanished_in_window(conn, self.warehouse.table(entity.table), window)
            if page.rejects:
                self._store_rejects(conn, entity, page, after, run_id)
            if cursor is not None:
                conn.execute(
                    sql.SQL(
                        "UPDATE {st} SET last_version = GREATEST(COALESCE(last_version, 0), %s), updated_at = now()"
                        " WHERE entity_type = %s"
                    ).format(st=self.warehouse.table("sync_state")),
                    (cursor, entity.name),
                )
        return counts

    def _copy_new(
        self,
        conn: Any,
        entity: Entity,
        rows: list[dict[str, Any]],
        children: dict[str, list[dict[str, Any]]],
        counts: PageCounts,
    ) -> None:
        """COPY rows (and their children) that are not in the table yet: raw COPY speed.

        Values are what the upsert would store: typed columns as typed, `data` as the
        record, a child's `data` as its element of the parent's record, and text that
        PostgreSQL cannot hold escaped exactly as `to_pg_json` escapes it. One C pass over
        the page says whether anything needs escaping; almost no page does, and then the
        rows go out without looking at each value.
        """
        cols = [n for n, _ in entity_columns(entity)]
        typed = cols[:-1]  # ..., data
        clean = not needs_escaping(rows)
        with conn.cursor().copy(copy_sql(entity.table, tuple(cols), self.schema)) as cp:
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
            with conn.cursor().copy(copy_sql(child.table, tuple(ccols), self.schema)) as cp:
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

    def _store_rejects(
        self, conn: Any, entity: Entity, page: PreparedPage, after: int | str | None, run_id: str | None
    ) -> None:
        payloads = [{"reason": r.reason, "payload": r.payload} for r in page.rejects]
        doc, _ = to_pg_json(payloads)
        conn.execute(
            sql.SQL(
                "INSERT INTO {rej} (entity_type, after_version, reason, payload, run_id)"
                " SELECT %(e)s, %(after)s, r.reason, r.payload, %(run)s"
                " FROM jsonb_to_recordset(%(doc)s::jsonb) AS r(reason text, payload jsonb)"
            ).format(rej=self.warehouse.table("sync_rejects")),
            {"e": entity.name, "after": None if after is None else str(after), "run": run_id, "doc": doc},
        )
