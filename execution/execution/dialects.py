"""What differs between the ledger's two databases, one small strategy each.

The ledger's transactions are written once, as functions of a SQLAlchemy `Connection`;
where SQLite and PostgreSQL need different SQL or a different driver call, they ask
`dialect_of(conn)` instead of testing the dialect's name.

- SQLite: `BEGIN IMMEDIATE` already holds the database's write lock, so one statement
  reads the account and the positions, and a fill is three plain statements.
- PostgreSQL: the account row is locked first (`FOR UPDATE`), the positions read in a
  later statement, and a fill is one statement of data-modifying CTEs (one round trip).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql, sqlite

from execution import statements
from execution.statements import ACCOUNT_ROW, Precompiled

Row = Sequence[Any]


class LedgerDialect(Protocol):
    def execute(self, conn: Connection, compiled: Precompiled, args: tuple[Any, ...]) -> list[Row]:
        """Run precompiled SQL on `conn`'s driver connection, in its transaction."""
        ...

    def locked_books(self, conn: Connection) -> tuple[Row, list[Row]]:
        """The account's (cash, realized_pnl, trading state, its reason, the protections'
        marks...) and every position row, read under the account's write lock."""
        ...

    def write_fill(self, conn: Connection, values: Mapping[str, Any], held: bool) -> None:
        """Write balances, the position (updated if `held`, else inserted) and the order."""
        ...

    def insert(self, table: Table) -> Any:
        """An INSERT on `table` that can say ON CONFLICT DO NOTHING."""
        ...

    def serialize_migrations(self, conn: Connection) -> None:
        """Make processes starting together migrate one after the other."""
        ...


class SqliteLedger:
    def execute(self, conn: Connection, compiled: Precompiled, args: tuple[Any, ...]) -> list[Row]:
        # The pysqlite connection SQLAlchemy's pool handed out, in the same transaction.
        driver: sqlite3.Connection = conn.connection.dbapi_connection  # type: ignore[assignment]
        rows: list[Row] = driver.execute(compiled.sql, args).fetchall()
        return rows

    def locked_books(self, conn: Connection) -> tuple[Row, list[Row]]:
        # BEGIN IMMEDIATE took the database's write lock: one statement reads it all.
        rows = statements.run(conn, statements.BOOKS)
        _, cash, _, realized_pnl, *rest = next(r for r in rows if r[0] == ACCOUNT_ROW)
        return (cash, realized_pnl, *rest), [r for r in rows if r[0] != ACCOUNT_ROW]

    def write_fill(self, conn: Connection, values: Mapping[str, Any], held: bool) -> None:
        statements.run(conn, statements.WRITE_ACCOUNT, values)
        statements.run(
            conn, statements.UPDATE_POSITION if held else statements.INSERT_POSITION, values
        )
        statements.run(conn, statements.INSERT_ORDER, values)

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    def serialize_migrations(self, conn: Connection) -> None:
        """Nothing to do: the migration's write transaction holds the database's lock."""


class PostgresLedger:
    # An arbitrary 64-bit constant naming "the Execution ledger's migration" to PostgreSQL.
    ADVISORY_LOCK_KEY = 0x7E5_1ED6E7

    def execute(self, conn: Connection, compiled: Precompiled, args: tuple[Any, ...]) -> list[Row]:
        # asyncpg: prepared once per connection (its statement cache), no row processing.
        result = conn.exec_driver_sql(compiled.sql, args)
        return list(result.all()) if result.returns_rows else []

    def locked_books(self, conn: Connection) -> tuple[Row, list[Row]]:
        (account,) = statements.run(conn, statements.LOCK_ACCOUNT)
        # Read after the lock is held: a statement that waited for the lock would still
        # see the positions as of its start (READ COMMITTED re-reads only the locked row).
        rows = statements.run(conn, statements.POSITIONS)
        return tuple(account), list(rows)

    def write_fill(self, conn: Connection, values: Mapping[str, Any], held: bool) -> None:
        statements.run(conn, statements.WRITE_FILL_POSTGRES[held], values)

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def serialize_migrations(self, conn: Connection) -> None:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.ADVISORY_LOCK_KEY})


_BY_NAME: dict[str, LedgerDialect] = {"sqlite": SqliteLedger(), "postgresql": PostgresLedger()}


def dialect_of(conn: Connection) -> LedgerDialect:
    """The strategy for the database `conn` talks to."""
    return _BY_NAME[conn.dialect.name]
