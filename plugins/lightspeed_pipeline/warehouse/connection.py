"""The one way into the target database: `Warehouse.transaction()`.

Connections are psycopg 3, autocommit with explicit transactions, and no server-side
prepared statements, so they work through a transaction-mode pooler (Supabase's port
6543): every setting this code relies on (search_path, timeouts, advisory locks) is
transaction-scoped, applied by `transaction()` as its first statement. Table names are
schema-qualified by `Warehouse.table()`; identifiers come from the entity registry only.
Nothing outside `lightspeed_pipeline.warehouse` touches a connection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

if TYPE_CHECKING:
    import psycopg

DEFAULT_SCHEMA = "public"
# The advisory lock namespace: never change it (a running old version would not see the new keys).
_LOCK_NAMESPACE = "lightspeed_sync"


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


def connect(conninfo: str = "", **kwargs: Any) -> psycopg.Connection[Any]:
    """A pooler-safe psycopg connection: autocommit, prepared statements off."""
    import psycopg

    return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, **kwargs)


def quote_ident(name: str) -> str:
    """Quote an identifier (the schema in search_path)."""
    return '"' + name.replace('"', '""') + '"'


def advisory_key(*parts: str) -> int:
    """A stable signed 64-bit advisory lock key for the given name parts."""
    digest = hashlib.sha256(":".join((_LOCK_NAMESPACE, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Warehouse:
    """The target database: one connection, its settings, and the schema its tables live in.

    `reconnect` opens another connection to the same database: `sibling()` (the entity lock
    and the OAuth token vault must not share the page-writing transaction) and
    `ensure_connected()` (after PostgreSQL restarted or killed the connection) use it.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        settings: DbSettings,
        reconnect: Callable[[], psycopg.Connection[Any]] | None = None,
    ) -> None:
        self._conn = conn
        self.settings = settings
        self._reconnect = reconnect

    @classmethod
    def open(cls, conninfo: str, settings: DbSettings, **kwargs: Any) -> Warehouse:
        """A Warehouse on a new pooler-safe connection, able to open siblings with the same arguments."""
        return cls(connect(conninfo, **kwargs), settings, reconnect=lambda: connect(conninfo, **kwargs))

    @property
    def schema(self) -> str:
        return self.settings.schema

    def table(self, name: str) -> sql.Identifier:
        """A table (or view) of the target schema, qualified."""
        return sql.Identifier(self.schema, name)

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A transaction with the per-transaction settings applied; commits on success."""
        conn = self._conn
        with conn.transaction():
            conn.execute(
                "SELECT set_config('search_path', %s, true), set_config('statement_timeout', %s, true),"
                " set_config('lock_timeout', %s, true), set_config('work_mem', %s, true),"
                " set_config('random_page_cost', %s, true)",
                (
                    quote_ident(self.schema),
                    self.settings.statement_timeout,
                    self.settings.lock_timeout,
                    self.settings.work_mem,
                    self.settings.random_page_cost,
                ),
            )
            yield conn

    def sibling(self) -> Warehouse:
        """Another connection to the same database, with the same settings."""
        if self._reconnect is None:
            raise RuntimeError("this Warehouse was built without a way to open another connection")
        return Warehouse(self._reconnect(), self.settings, self._reconnect)

    def ensure_connected(self) -> None:
        """Replace a closed or broken connection (after PostgreSQL restarted or killed it)."""
        if (self._conn.closed or self._conn.broken) and self._reconnect is not None:
            self._conn = self._reconnect()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
