"""The entity lock: two syncs of one entity never interleave.

A transaction-scoped advisory lock on a connection of its own whose transaction stays open
until the sync ends, so it works through a transaction-mode pooler and PostgreSQL releases
it if the worker dies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lightspeed_pipeline.entities import Entity
from lightspeed_pipeline.warehouse.connection import Warehouse, advisory_key

log = logging.getLogger(__name__)


class EntityBusyError(RuntimeError):
    """Another sync of the same entity holds the entity lock."""


def entity_lock_key(schema: str, entity: str) -> int:
    return advisory_key("entity", schema, entity)


class EntityLock:
    """A held entity lock; `check()` fails loudly if its connection (and so the lock) is gone."""

    def __init__(self, conn: Any, entity: str) -> None:
        self._conn = conn
        self.entity = entity

    def check(self) -> None:
        import psycopg

        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise EntityBusyError(
                f"{self.entity}: the connection holding the entity lock was lost ({type(exc).__name__}); "
                "stopping so two syncs cannot interleave"
            ) from exc


@contextmanager
def entity_lock(
    warehouse: Warehouse, entity: Entity, *, wait_s: float = 3600.0, poll_s: float = 1.0, skip: bool = False
) -> Iterator[EntityLock]:
    """Hold the entity's advisory lock for the whole sync, on a sibling connection.

    A second sync of the same entity waits (up to `wait_s`, logging who holds it) or, with
    `skip`, raises `EntityBusyError` at once.
    """
    key = entity_lock_key(warehouse.schema, entity.name)
    holder_db = warehouse.sibling()
    try:
        with holder_db.transaction() as conn:
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
        holder_db.close()


def _lock_holder(conn: Any, key: int) -> str:
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
