"""Row-level security, the outlet policies and the audit triggers, all derived from the registry.

Idempotent, and applied by `migrate` inside its transaction. Only what is missing is changed:
DDL takes strong locks, and a daily `migrate` must not queue behind (or block) report queries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from lightspeed_pipeline.entities import ENTITIES, Entity

if TYPE_CHECKING:
    import psycopg

BOOKKEEPING_TABLES = (
    "sync_state",
    "sync_log",
    "sync_rejects",
    "sync_validation",
    "sync_store",
    "sync_settings",
    "sync_history",
    "sync_daily_figures",
    "schema_migrations",
    "schema_views",
    "lightspeed_oauth_tokens",
    "lightspeed_audit_log",
)
SUPABASE_API_ROLES = ("anon", "authenticated", "service_role")


def project_tables(entities: tuple[Entity, ...] = ENTITIES) -> list[str]:
    """Every table the project creates."""
    return (
        [e.table for e in entities]
        + [c.table for e in entities for c in e.children]
        + [e.versions_table for e in entities if e.versioned]
        + list(BOOKKEEPING_TABLES)
    )


def ensure_security(
    conn: psycopg.Connection[Any], schema: str, entities: tuple[Entity, ...] = ENTITIES
) -> dict[str, Any]:
    """Row-level security, the outlet policies and the audit triggers of `schema`, from the registry.

    Idempotent; runs inside `migrate`'s transaction.
    * RLS on every project table, with no policy for `anon`: Supabase's API returns nothing.
    * `outlet_isolation` for `authenticated` (when that role exists) on outlet-scoped tables
      and their children: read-only, rows of `current_setting('app.current_outlet_id')`.
    * The OAuth token table is revoked from PUBLIC and the API roles.
    * Audit triggers on `audited` entities (and removed from the others).
    Only what is missing is changed: DDL takes strong locks, and a daily `migrate` must not
    queue behind (or block) report queries. The sync role owns the tables, so RLS does not
    apply to it.
    """

    def qualified(table: str) -> sql.Identifier:
        return sql.Identifier(schema, table)

    def names(query: str, *params: Any) -> set[str]:
        return {r[0] for r in conn.execute(query, params).fetchall()}  # type: ignore[arg-type]

    roles = names("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", list(SUPABASE_API_ROLES))
    tables = project_tables(entities)
    rls_off = names(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s) AND NOT c.relrowsecurity",
        schema,
        tables,
    )
    for table in sorted(rls_off):
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(qualified(table)))
    grantees = names(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
        " WHERE table_schema = %s AND table_name = 'lightspeed_oauth_tokens'"
        " AND grantee IN ('PUBLIC', 'anon', 'authenticated')",
        schema,
    )
    if grantees:
        conn.execute(
            sql.SQL("REVOKE ALL ON {} FROM {}").format(
                qualified("lightspeed_oauth_tokens"),
                sql.SQL(", ").join(sql.SQL(r) if r == "PUBLIC" else sql.Identifier(r) for r in sorted(grantees)),
            )
        )
    existing_policies = names(
        "SELECT tablename FROM pg_policies WHERE schemaname = %s AND policyname = 'outlet_isolation'", schema
    )
    setting = sql.SQL("current_setting('app.current_outlet_id', true)")
    policies = []
    for e in entities:
        if e.outlet_column is None:
            continue
        targets: list[tuple[str, sql.Composable]] = [
            (e.table, sql.SQL("{} = {}").format(sql.Identifier(e.outlet_column), setting))
        ]
        for child in e.children:
            via_parent = sql.SQL(
                "EXISTS (SELECT 1 FROM {parent} p WHERE p.id = {child}.{key} AND p.{col} = {setting})"
            ).format(
                parent=qualified(e.table),
                child=sql.Identifier(child.table),
                key=sql.Identifier(child.parent_key),
                col=sql.Identifier(e.outlet_column),
                setting=setting,
            )
            targets.append((child.table, via_parent))
        for table, using in targets:
            if "authenticated" in roles and table not in existing_policies:
                conn.execute(
                    sql.SQL("CREATE POLICY outlet_isolation ON {} FOR SELECT TO authenticated USING ({})").format(
                        qualified(table), using
                    )
                )
            if "authenticated" in roles:
                policies.append(table)
    triggers = {
        (t, g)
        for t, g in conn.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
            " AND t.tgname IN ('lightspeed_audit_insert', 'lightspeed_audit_update')",
            (schema,),
        ).fetchall()
    }
    audit_ddl = {
        "lightspeed_audit_insert": "CREATE TRIGGER lightspeed_audit_insert AFTER INSERT ON {table} REFERENCING NEW"
        " TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
        "lightspeed_audit_update": "CREATE TRIGGER lightspeed_audit_update AFTER UPDATE ON {table} REFERENCING OLD"
        " TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()",
    }
    audited = []
    for e in entities:
        if e.audited:
            for ddl in audit_functions(e, schema):  # CREATE OR REPLACE FUNCTION: no table lock
                conn.execute(ddl)
            audited.append(e.table)
        for trigger, ddl in audit_ddl.items():
            present = (e.table, trigger) in triggers
            if e.audited and not present:
                function = sql.Identifier(schema, f"{trigger}_{e.name}")
                conn.execute(sql.SQL(ddl).format(table=qualified(e.table), function=function))  # type: ignore[arg-type]
            elif present and not e.audited:
                conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(trigger), qualified(e.table)))
    return {"rls_enabled_now": sorted(rls_off), "outlet_policies": policies, "audited": audited,
            "api_roles": sorted(roles)}  # fmt: skip


def audit_functions(entity: Entity, schema: str) -> list[Any]:
    """The audit trigger functions of one table (statement-level, over transition tables).

    An UPDATE is recorded as the members of the record (`data`) that changed, old and
    new (a member present on one side only appears on that side). Finding them must be
    cheap, because every page of changed customers pays for it (bench/audit_overhead.py):
    * a member mirrored by a typed column (`Entity.mirrored_columns`) is compared by its
      typed value, a plain comparison in C; a change of format only ("12.50" to "12.5")
      is not a change, and when both typed values are NULL the raw members are compared;
    * the other members are compared as one block; only a record whose unmapped
      members differ is split into members (a set-returning subquery, ~10 us a row);
    * the result is `data - <same members>`, one C call per side.
    A member-by-member diff of every record (jsonb_each + jsonb_object_agg) cost 2.5x more.
    An INSERT records the id and version (the row holds the values, and each later change
    records the old values it replaced). `SET search_path FROM CURRENT` pins the schema.
    """
    audit_log = sql.Identifier(schema, "lightspeed_audit_log")
    insert_fn = sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$\n"
        "BEGIN\n"
        "    INSERT INTO {log} (table_name, row_id, operation, new_values)\n"
        "    SELECT TG_TABLE_NAME, n.id, 'INSERT', jsonb_build_object('version', n.version) FROM new_rows n;\n"
        "    RETURN NULL;\n"
        "END\n$f$"
    ).format(fn=sql.Identifier(schema, f"lightspeed_audit_insert_{entity.name}"), log=audit_log)
    mirrored = entity.mirrored_columns
    keys = sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(sql.Literal(k) for k in ("id", *mirrored)))
    same_typed = sql.SQL(",\n            ").join(
        sql.SQL(
            "CASE WHEN o.{c} IS NOT DISTINCT FROM n.{c}"
            " AND (o.{c} IS NOT NULL OR o.data -> {k} IS NOT DISTINCT FROM n.data -> {k}) THEN {k} END"
        ).format(c=sql.Identifier(name), k=sql.Literal(name))
        for name in mirrored
    )
    # EXECUTE plans the statement on every call, with the transition tables' real row
    # counts. A statically planned statement is planned once per session; its first call
    # is usually an insert-only page (zero updated rows), which caches a nested-loop join
    # that is quadratic on later 1000-row pages (measured: 86 ms per page instead of 1).
    update_fn = sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$\n"
        "BEGIN\n"
        "    EXECUTE $q$\n"
        "    INSERT INTO {log} (table_name, row_id, operation, old_values, new_values)\n"
        "    SELECT $1, s.id, 'UPDATE', s.od - s.same, s.nd - s.same FROM (  -- never empty: the version changed\n"
        "        SELECT n.id, o.data AS od, n.data AS nd, array_remove(ARRAY['id',\n"
        "            {same_typed}], NULL)\n"
        "          || CASE WHEN (o.data - {keys}) = (n.data - {keys}) THEN r.keys\n"
        "             ELSE ARRAY(SELECT e.key FROM jsonb_each(o.data - {keys}) e WHERE n.data -> e.key = e.value) END\n"
        "          AS same\n"
        '        FROM new_rows n JOIN old_rows o ON o.id COLLATE "C" = n.id COLLATE "C"  -- opaque ids\n'
        "        CROSS JOIN (  -- the unmapped member names of this page, found once\n"
        "            SELECT coalesce(array_agg(DISTINCT k), '{{}}') AS keys\n"
        "            FROM old_rows, jsonb_object_keys(data - {keys}) k) r\n"
        "        OFFSET 0) s\n"
        "    $q$ USING TG_TABLE_NAME;\n"
        "    RETURN NULL;\n"
        "END\n$f$"
    ).format(
        fn=sql.Identifier(schema, f"lightspeed_audit_update_{entity.name}"),
        log=audit_log,
        same_typed=same_typed,
        keys=keys,
    )
    return [insert_fn, update_fn]
