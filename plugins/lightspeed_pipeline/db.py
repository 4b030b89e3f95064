"""PostgreSQL connections and migrations.

Connections are psycopg 3, autocommit with explicit transactions, and no
server-side prepared statements, so they work through a transaction-mode pooler
(Supabase's port 6543): every setting this code relies on (search_path, timeouts,
advisory locks) is transaction-scoped.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightspeed_pipeline.entities import ENTITIES, Entity

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = ROOT / "include" / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
VIEWS_DIR = SQL_DIR / "views"

DEFAULT_SCHEMA = "public"
# Extra keys PostgresHook (postgres provider 7.1.1) consumes itself and never passes to libpq
# (its `ignored_extra_options`), plus its `enable_log_db_messages` option: not ours, not libpq,
# ignored without a word.
POSTGRES_HOOK_EXTRA = frozenset({
    "iam", "redshift", "redshift-serverless", "cursor", "cluster-identifier", "workgroup-name",
    "aws_conn_id", "sqlalchemy_scheme", "sqlalchemy_query", "azure_conn_id", "enable_log_db_messages",
})  # fmt: skip
# Our own settings, formerly read from the connection's extra (where they make PostgresHook fail:
# libpq rejects them): now environment variables `LIGHTSPEED_<KEY>`; the extra keys still work.
DB_SETTING_KEYS = ("statement_timeout", "lock_timeout")
_CONNECTION_FIELDS = ("host", "port", "user", "password", "dbname")
_DURATION = re.compile(r"\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*")  # units are case-sensitive


class MigrationError(RuntimeError):
    """A migration cannot be applied (or a released one was edited)."""


@dataclass(frozen=True)
class DbSettings:
    """Transaction-level settings applied at the start of every transaction."""

    schema: str = DEFAULT_SCHEMA
    statement_timeout: str = "15min"
    lock_timeout: str = "60s"
    # A page (1 000 sales with their line items, several MB of jsonb) sorts and hashes in
    # memory instead of temporary files (6 % faster writes of sales pages).
    work_mem: str = "64MB"
    # The rows a page looks up are cached: with the default 4.0 the planner answered "which
    # of these 1 000 ids exist?" with a sequential scan of the whole table (14 ms at 60 000
    # rows, growing with the table) instead of 1 000 index probes (1.4 ms).
    random_page_cost: str = "1.1"


def schedule_interval_s(schedule: str | None) -> float | None:
    """The longest gap between two runs of a cron or preset schedule (None: not a cron).

    sync_health warns when an entity's last success is older than this plus an hour, so a
    weekday-only schedule is judged by its weekend gap, not by its daily one.
    """
    if not schedule or not isinstance(schedule, str):
        return None
    from datetime import UTC, datetime

    from croniter import croniter

    try:
        it = croniter(schedule, datetime(2025, 1, 1, tzinfo=UTC))
    except (ValueError, KeyError, TypeError):
        return None
    times = [it.get_next(datetime) for _ in range(60)]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(times))


def target_schema() -> str:
    """The schema all tables live in (`LIGHTSPEED_SCHEMA`, default `public`)."""
    return os.environ.get("LIGHTSPEED_SCHEMA", "").strip() or DEFAULT_SCHEMA


def env_name(key: str) -> str:
    """The environment variable of one of our settings: `page_size` -> `LIGHTSPEED_PAGE_SIZE`."""
    return f"LIGHTSPEED_{key.upper()}"


def env_setting(key: str) -> str | None:
    """`LIGHTSPEED_<KEY>` from the environment; None when unset or blank."""
    value = os.environ.get(env_name(key), "").strip()
    return value or None


_warned: tuple[Any, set[tuple[str, ...]]] = (None, set())


def _task_key() -> Any:
    """The running task instance (so each task warns once), or None outside a task."""
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context()["ti"]
        return (ti.dag_id, ti.run_id, ti.task_id, ti.map_index, getattr(ti, "try_number", None))
    except Exception:
        return None


def warn_once(*what: str, message: str, logger: logging.Logger = log) -> None:
    """Log `message` (a warning: it shows in the Airflow task log) once per task and `what`.

    The message names keys and variables, never a value (the values may be secrets).
    """
    global _warned
    task = _task_key()
    if _warned[0] != task:
        _warned = (task, set())
    if what in _warned[1]:
        return
    _warned[1].add(what)
    logger.warning("%s", message)


@cache
def libpq_keywords() -> frozenset[str]:
    """Every connection parameter the linked libpq knows (`sslmode`, `options`, `keepalives`, ...)."""
    from psycopg import pq

    return frozenset(o.keyword.decode() for o in pq.Conninfo.get_defaults())


def _duration(value: Any, source: str) -> str:
    text = str(value).strip()
    if not _DURATION.fullmatch(text):
        raise ValueError(
            f"{source} must be a duration such as 15min, 60s or 30000 (milliseconds; 0: no limit), got {text!r}"
        )
    return text


def connect_kwargs_from_airflow(conn: Any) -> tuple[dict[str, Any], DbSettings]:
    """psycopg keyword arguments and settings from an Airflow postgres connection.

    Every extra key libpq knows goes to psycopg as is (so `PostgresHook` and the sync see the
    same connection). Keys PostgresHook consumes itself are ignored; `statement_timeout` and
    `lock_timeout` (ours; deprecated there, since PostgresHook hands them to libpq, which
    rejects them) win over `LIGHTSPEED_STATEMENT_TIMEOUT` / `LIGHTSPEED_LOCK_TIMEOUT`; any other
    key is ignored with a warning.
    """
    extra = conn.extra_dejson or {}
    conn_id = getattr(conn, "conn_id", None) or "lightspeed_postgres"
    kwargs: dict[str, Any] = {
        "host": conn.host or None,
        "port": conn.port or None,
        "user": conn.login or None,
        "password": conn.password or None,
        "dbname": conn.schema or None,
    }
    known = libpq_keywords()
    for key, value in extra.items():
        if key in DB_SETTING_KEYS or key in POSTGRES_HOOK_EXTRA:
            continue
        if key not in known:
            warn_once(
                conn_id,
                key,
                message=f"connection `{conn_id}`: extra key {key!r} is not a libpq connection parameter;"
                " ignored (Airflow's PostgresHook would fail on it)",
            )
            continue
        if value in (None, ""):
            continue
        if key in _CONNECTION_FIELDS and kwargs[key] is not None:
            continue  # the connection's own field wins (as for `dbname` vs `schema` before)
        kwargs[key] = value
    kwargs.setdefault("application_name", "lightspeed_sync")
    timeouts: dict[str, str] = {}
    for key in DB_SETTING_KEYS:
        if key in extra:
            warn_once(
                conn_id,
                key,
                message=f"connection `{conn_id}`: extra key {key!r} is deprecated: Airflow's PostgresHook"
                f" passes every extra key to libpq, which rejects it; set the environment variable"
                f" {env_name(key)} instead (the extra key still wins while it is there)",
            )
        if extra.get(key) not in (None, ""):
            timeouts[key] = _duration(extra[key], f"connection `{conn_id}`: extra {key!r}")
        elif (value := env_setting(key)) is not None:
            timeouts[key] = _duration(value, f"environment variable {env_name(key)}")
    settings = DbSettings(schema=target_schema(), **timeouts)
    return {k: v for k, v in kwargs.items() if v is not None}, settings


def connect(conninfo: str = "", **kwargs: Any) -> psycopg.Connection[Any]:
    """A pooler-safe psycopg connection: autocommit, prepared statements off."""
    import psycopg

    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **kwargs)


def begin(conn: psycopg.Connection[Any], settings: DbSettings) -> None:
    """Apply per-transaction settings; call first thing inside `conn.transaction()`."""
    conn.execute(
        "SELECT set_config('search_path', %s, true), set_config('statement_timeout', %s, true),"
        " set_config('lock_timeout', %s, true), set_config('work_mem', %s, true),"
        " set_config('random_page_cost', %s, true)",
        (
            quote_ident(settings.schema),
            settings.statement_timeout,
            settings.lock_timeout,
            settings.work_mem,
            settings.random_page_cost,
        ),
    )


def quote_ident(name: str) -> str:
    """Quote an identifier (used for the schema in search_path)."""
    return '"' + name.replace('"', '""') + '"'


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit advisory lock key for the given name parts."""
    digest = hashlib.sha256(":".join(("lightspeed_sync", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(p for p in directory.glob("*.sql") if p.is_file())
    names = [p.name.split("_", 1)[0] for p in files]
    if len(set(names)) != len(names):
        raise MigrationError(f"two migrations share a number in {directory}: {names}")
    return files


def apply_migrations(
    conn: psycopg.Connection[Any],
    settings: DbSettings,
    *,
    entities: tuple[Entity, ...] = ENTITIES,
    migrations_dir: Path = MIGRATIONS_DIR,
    views_dir: Path = VIEWS_DIR,
    run_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply pending migrations in order, seed sync_state, create the views that changed.

    Each migration runs in its own transaction holding a transaction-level advisory
    lock, so concurrent `migrate` tasks serialise and a pooler cannot strand a lock.
    A released migration whose text changed fails loudly instead of drifting.
    `run_settings` (such as the schedule's interval, which sync_health reads) are
    stored in sync_settings when they differ from what is there.
    """
    key = advisory_key("migrate", settings.schema)
    applied: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(settings.schema)}")
        begin(conn, settings)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
    for path in migration_files(migrations_dir):
        version = path.name.split("_", 1)[0]
        text = path.read_text()
        checksum = _checksum(text)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            begin(conn, settings)
            row = conn.execute("SELECT checksum FROM schema_migrations WHERE version = %s", (version,)).fetchone()
            if row is not None:
                if row[0] != checksum:
                    raise MigrationError(
                        f"migration {path.name} was edited after it was applied (checksum differs); "
                        "released migrations are immutable: add a new migration instead"
                    )
                continue
            started = time.monotonic()
            conn.execute(text)  # type: ignore[arg-type]  # a trusted file from the package
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (version, path.name, checksum),
            )
            log.info("applied migration %s in %.2f s", path.name, time.monotonic() - started)
            applied.append(path.name)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        begin(conn, settings)
        seeded = seed_sync_state(conn, entities)
        stored = store_settings(conn, run_settings or {})
        views = apply_views(conn, views_dir)
        security = ensure_security(conn, entities)
    return {"applied": applied, "seeded": seeded, "settings": stored, "views": views, "security": security}


BOOKKEEPING_TABLES = (
    "sync_state",
    "sync_log",
    "sync_rejects",
    "sync_validation",
    "sync_store",
    "sync_settings",
    "schema_migrations",
    "schema_views",
    "lightspeed_oauth_tokens",
    "lightspeed_audit_log",
)
SUPABASE_API_ROLES = ("anon", "authenticated", "service_role")


def project_tables(entities: tuple[Entity, ...] = ENTITIES) -> list[str]:
    """Every table the project creates."""
    return [e.table for e in entities] + [c.table for e in entities for c in e.children] + list(BOOKKEEPING_TABLES)


def ensure_security(conn: psycopg.Connection[Any], entities: tuple[Entity, ...] = ENTITIES) -> dict[str, Any]:
    """Row-level security, the outlet policies and the audit triggers, from the registry.

    Idempotent; runs inside `migrate`'s transaction (search_path = the target schema).
    * RLS on every project table, with no policy for `anon`: Supabase's API returns nothing.
    * `outlet_isolation` for `authenticated` (when that role exists) on outlet-scoped tables
      and their children: read-only, rows of `current_setting('app.current_outlet_id')`.
    * The OAuth token table is revoked from PUBLIC and the API roles.
    * Audit triggers on `audited` entities (and removed from the others).
    Only what is missing is changed: DDL takes strong locks, and a daily `migrate` must not
    queue behind (or block) report queries. The sync role owns the tables, so RLS does not
    apply to it.
    """
    from psycopg import sql

    def names(query: str, *params: Any) -> set[str]:
        return {r[0] for r in conn.execute(query, params).fetchall()}  # type: ignore[arg-type]

    roles = names("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", list(SUPABASE_API_ROLES))
    tables = project_tables(entities)
    rls_off = names(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relname = ANY(%s) AND NOT c.relrowsecurity",
        tables,
    )
    for table in sorted(rls_off):
        conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
    grantees = names(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants"
        " WHERE table_schema = current_schema() AND table_name = 'lightspeed_oauth_tokens'"
        " AND grantee IN ('PUBLIC', 'anon', 'authenticated')"
    )
    if grantees:
        conn.execute(
            sql.SQL("REVOKE ALL ON lightspeed_oauth_tokens FROM {}").format(
                sql.SQL(", ").join(sql.SQL(r) if r == "PUBLIC" else sql.Identifier(r) for r in sorted(grantees))
            )
        )
    existing_policies = names(
        "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() AND policyname = 'outlet_isolation'"
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
                parent=sql.Identifier(e.table),
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
                        sql.Identifier(table), using
                    )
                )
            if "authenticated" in roles:
                policies.append(table)
    triggers = {
        (t, g)
        for t, g in conn.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"
            " AND t.tgname IN ('lightspeed_audit_insert', 'lightspeed_audit_update')"
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
            for ddl in audit_functions(e):  # CREATE OR REPLACE FUNCTION: no table lock
                conn.execute(ddl)
            audited.append(e.table)
        for trigger, ddl in audit_ddl.items():
            present = (e.table, trigger) in triggers
            if e.audited and not present:
                function = sql.Identifier(f"{trigger}_{e.name}")
                conn.execute(sql.SQL(ddl).format(table=sql.Identifier(e.table), function=function))  # type: ignore[arg-type]
            elif present and not e.audited:
                conn.execute(sql.SQL("DROP TRIGGER {} ON {}").format(sql.Identifier(trigger), sql.Identifier(e.table)))
    return {"rls_enabled_now": sorted(rls_off), "outlet_policies": policies, "audited": audited,
            "api_roles": sorted(roles)}  # fmt: skip


def audit_functions(entity: Entity) -> list[Any]:
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
    from psycopg import sql

    insert_fn = sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $f$\n"
        "BEGIN\n"
        "    INSERT INTO lightspeed_audit_log (table_name, row_id, operation, new_values)\n"
        "    SELECT TG_TABLE_NAME, n.id, 'INSERT', jsonb_build_object('version', n.version) FROM new_rows n;\n"
        "    RETURN NULL;\n"
        "END\n$f$"
    ).format(fn=sql.Identifier(f"lightspeed_audit_insert_{entity.name}"))
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
        "    INSERT INTO lightspeed_audit_log (table_name, row_id, operation, old_values, new_values)\n"
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
    ).format(fn=sql.Identifier(f"lightspeed_audit_update_{entity.name}"), same_typed=same_typed, keys=keys)
    return [insert_fn, update_fn]


def seed_sync_state(conn: psycopg.Connection[Any], entities: tuple[Entity, ...] = ENTITIES) -> int:
    """One `never_synced` sync_state row per registry entity that has none yet."""
    cur = conn.execute(
        "INSERT INTO sync_state (entity_type, status) SELECT unnest(%s::text[]), 'never_synced'"
        " ON CONFLICT (entity_type) DO NOTHING",
        ([e.name for e in entities],),
    )
    return cur.rowcount


def store_settings(conn: psycopg.Connection[Any], values: dict[str, Any]) -> list[str]:
    """Upsert sync_settings rows whose value changed; returns the keys written."""
    import json

    written = []
    for key, value in sorted(values.items()):
        cur = conn.execute(
            "INSERT INTO sync_settings (key, value) VALUES (%s, %s::jsonb) ON CONFLICT (key) DO UPDATE"
            " SET value = excluded.value, updated_at = now() WHERE sync_settings.value IS DISTINCT FROM excluded.value",
            (key, json.dumps(value)),
        )
        if cur.rowcount:
            written.append(key)
    return written


def apply_views(conn: psycopg.Connection[Any], views_dir: Path = VIEWS_DIR) -> list[str]:
    """Create the views whose definition file changed since it was applied, or that are missing.

    A view in place with the same definition is left alone: `CREATE OR REPLACE VIEW` takes an
    ACCESS EXCLUSIVE lock, so re-creating views every run would queue behind (and then block)
    a long report query. Returns the views (re)created.
    """
    recorded = dict(conn.execute("SELECT name, checksum FROM schema_views").fetchall())  # type: ignore[arg-type]
    present = {r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = current_schema()")}
    changed = []
    for path in sorted(views_dir.glob("*.sql")):
        text = path.read_text()
        checksum = _checksum(text)
        view = path.stem.split("_", 1)[1]  # 03_sync_health -> sync_health
        if recorded.get(path.stem) == checksum and view in present:
            continue
        conn.execute(text)  # type: ignore[arg-type]  # a trusted file from the package
        conn.execute(
            "INSERT INTO schema_views (name, checksum) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
            " SET checksum = excluded.checksum, applied_at = now()",
            (path.stem, checksum),
        )
        changed.append(view)
    return changed


def refresh_views(conn: psycopg.Connection[Any], settings: DbSettings) -> list[str]:
    """Bring the reporting views up to date (used by `finalize`): a no-op, taking no lock,
    unless a definition changed or a view was dropped."""
    with conn.transaction():
        begin(conn, settings)
        return apply_views(conn)
