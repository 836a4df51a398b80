"""What differs between the ledger's two databases, one small strategy each.

The ledger's transactions are written once, as functions of a SQLAlchemy `Connection`;
where SQLite and PostgreSQL need different SQL or a different driver call, they ask
`dialect_of(conn)` instead of testing the dialect's name.

The trade's own transaction differs more than by a statement: `ledger.SqlitePath` and
`pgledger.PostgresPath` each run it their way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from execution.statements import Precompiled

Row = Sequence[Any]


class LedgerDialect(Protocol):
    def execute(self, conn: Connection, compiled: Precompiled, args: tuple[Any, ...]) -> list[Row]:
        """Run precompiled SQL on `conn`'s driver connection, in its transaction."""
        ...

    def insert(self, table: Table) -> Any:
        """An INSERT on `table` that can say ON CONFLICT DO NOTHING."""
        ...

    def serialize_migrations(self, conn: Connection) -> None:
        """Make processes starting together migrate one after the other."""
        ...

    def without_flush(self, conn: Connection) -> None:
        """Let this transaction commit without waiting for its own flush to disk: for
        data a crash may lose (a portfolio history point), never for an order."""
        ...


class SqliteLedger:
    def execute(self, conn: Connection, compiled: Precompiled, args: tuple[Any, ...]) -> list[Row]:
        # The pysqlite connection SQLAlchemy's pool handed out, in the same transaction.
        driver: sqlite3.Connection = conn.connection.dbapi_connection  # type: ignore[assignment]
        rows: list[Row] = driver.execute(compiled.sql, args).fetchall()
        return rows

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def serialize_migrations(self, conn: Connection) -> None:
        """Nothing to do: the migration's write transaction holds the database's lock."""

    def without_flush(self, conn: Connection) -> None:
        """Nothing to do: the writer thread commits it with the orders queued beside it."""


class PostgresLedger:
    # An arbitrary 64-bit constant naming "the Execution ledger's migration" to PostgreSQL.
    ADVISORY_LOCK_KEY = 0x7E5_1ED6E7

    def execute(self, conn: Connection, compiled: Precompiled, args: tuple[Any, ...]) -> list[Row]:
        # asyncpg: prepared once per connection (its statement cache), no row processing.
        result = conn.exec_driver_sql(compiled.sql, args)
        return list(result.all()) if result.returns_rows else []

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def serialize_migrations(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.ADVISORY_LOCK_KEY})

    def without_flush(self, conn: Connection) -> None:
        # One WAL flush per trade instead of two (the point follows every burst of fills);
        # the next commit that waits for its flush writes this record too.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


_BY_NAME: dict[str, LedgerDialect] = {"sqlite": SqliteLedger(), "postgresql": PostgresLedger()}


def dialect_of(conn: Connection) -> LedgerDialect:
    """The strategy for the database `conn` talks to."""
    return _BY_NAME[conn.dialect.name]
