"""Schema changes: ordered migration files, the reporting views, the seeded bookkeeping rows.

Migrations are ordered files in `include/sql/migrations/`, checksummed and recorded in
`schema_migrations`; a released one whose text changed fails loudly instead of drifting.
Views (`include/sql/views/`) are re-created only when their file changed or they are
missing: `CREATE OR REPLACE VIEW` takes an ACCESS EXCLUSIVE lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

from psycopg import sql

from lightspeed_pipeline.entities import ENTITIES, HISTORY_DEFAULT, Entity
from lightspeed_pipeline.warehouse.connection import Warehouse, advisory_key, quote_ident
from lightspeed_pipeline.warehouse.history import ensure_history
from lightspeed_pipeline.warehouse.security import ensure_security

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]
SQL_DIR = ROOT / "include" / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
VIEWS_DIR = SQL_DIR / "views"


class MigrationError(RuntimeError):
    """A migration cannot be applied (or a released one was edited)."""


def _checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    files = sorted(p for p in directory.glob("*.sql") if p.is_file())
    names = [p.name.split("_", 1)[0] for p in files]
    if len(set(names)) != len(names):
        raise MigrationError(f"two migrations share a number in {directory}: {names}")
    return files


def apply_migrations(
    warehouse: Warehouse,
    *,
    entities: tuple[Entity, ...] = ENTITIES,
    migrations_dir: Path = MIGRATIONS_DIR,
    views_dir: Path = VIEWS_DIR,
    run_settings: dict[str, Any] | None = None,
    history: Collection[str] = HISTORY_DEFAULT,
) -> dict[str, Any]:
    """Apply pending migrations in order, seed sync_state, create the views that changed.

    Each migration runs in its own transaction holding a transaction-level advisory
    lock, so concurrent `migrate` tasks serialise and a pooler cannot strand a lock.
    `run_settings` (such as the schedule's interval, which sync_health reads) are
    stored in sync_settings when they differ from what is there. `history`: the entities
    whose past versions are kept (LIGHTSPEED_HISTORY, see `history.py`).
    """
    key = advisory_key("migrate", warehouse.schema)
    applied: list[str] = []
    migrations = warehouse.table("schema_migrations")
    with warehouse.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(warehouse.schema)}")  # type: ignore[arg-type]
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version TEXT PRIMARY KEY, name TEXT NOT NULL,"
                " checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            ).format(migrations)
        )
    for path in migration_files(migrations_dir):
        version = path.name.split("_", 1)[0]
        text = path.read_text()
        checksum = _checksum(text)
        with warehouse.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            row = conn.execute(
                sql.SQL("SELECT checksum FROM {} WHERE version = %s").format(migrations), (version,)
            ).fetchone()
            if row is not None:
                if row[0] != checksum:
                    raise MigrationError(
                        f"migration {path.name} was edited after it was applied (checksum differs); "
                        "released migrations are immutable: add a new migration instead"
                    )
                continue
            started = time.monotonic()
            conn.execute(text)  # type: ignore[arg-type]  # a trusted file from the package (bare names: search_path)
            conn.execute(
                sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(migrations),
                (version, path.name, checksum),
            )
            log.info("applied migration %s in %.2f s", path.name, time.monotonic() - started)
            applied.append(path.name)
    with warehouse.transaction() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
        seeded = seed_sync_state(warehouse, conn, entities)
        stored = store_settings(warehouse, conn, run_settings or {})
        kept = ensure_history(conn, warehouse.schema, history, entities)
        views = apply_views(warehouse, conn, views_dir)
        security = ensure_security(conn, warehouse.schema, entities)
    return {
        "applied": applied, "seeded": seeded, "settings": stored, "views": views, "security": security,
        "history": kept,
    }  # fmt: skip


def seed_sync_state(warehouse: Warehouse, conn: Any, entities: tuple[Entity, ...] = ENTITIES) -> int:
    """One `never_synced` sync_state row per registry entity that has none yet."""
    cur = conn.execute(
        sql.SQL(
            "INSERT INTO {} (entity_type, status) SELECT unnest(%s::text[]), 'never_synced'"
            " ON CONFLICT (entity_type) DO NOTHING"
        ).format(warehouse.table("sync_state")),
        ([e.name for e in entities],),
    )
    return int(cur.rowcount)


def store_settings(warehouse: Warehouse, conn: Any, values: dict[str, Any]) -> list[str]:
    """Upsert sync_settings rows whose value changed; returns the keys written."""
    written = []
    for key, value in sorted(values.items()):
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO {t} AS s (key, value) VALUES (%s, %s::jsonb) ON CONFLICT (key) DO UPDATE"
                " SET value = excluded.value, updated_at = now() WHERE s.value IS DISTINCT FROM excluded.value"
            ).format(t=warehouse.table("sync_settings")),
            (key, json.dumps(value)),
        )
        if cur.rowcount:
            written.append(key)
    return written


def apply_views(warehouse: Warehouse, conn: Any, views_dir: Path = VIEWS_DIR) -> list[str]:
    """Create the views whose definition file changed since it was applied, or that are missing.

    A view in place with the same definition is left alone: re-creating views every run
    would queue behind (and then block) a long report query. Returns the views (re)created.
    """
    recorded = dict(conn.execute(sql.SQL("SELECT name, checksum FROM {}").format(warehouse.table("schema_views"))))
    present = {r[0] for r in conn.execute("SELECT viewname FROM pg_views WHERE schemaname = %s", (warehouse.schema,))}
    changed = []
    for path in sorted(views_dir.glob("*.sql")):
        text = path.read_text()
        checksum = _checksum(text)
        view = path.stem.split("_", 1)[1]  # 03_sync_health -> sync_health
        if recorded.get(path.stem) == checksum and view in present:
            continue
        conn.execute(text)  # a trusted file from the package (bare names: search_path)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name, checksum) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE"
                " SET checksum = excluded.checksum, applied_at = now()"
            ).format(warehouse.table("schema_views")),
            (path.stem, checksum),
        )
        changed.append(view)
    return changed


def refresh_views(warehouse: Warehouse, views_dir: Path = VIEWS_DIR) -> list[str]:
    """Bring the reporting views up to date (used by `finalize`): a no-op, taking no lock,
    unless a definition changed or a view was dropped."""
    with warehouse.transaction() as conn:
        return apply_views(warehouse, conn, views_dir)
