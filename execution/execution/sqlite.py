"""The SQLite ledger's pieces that are SQLite's own: connection set-up, a write batch in
one transaction, and telling "busy" from a real failure. `db.SqliteDatabase` runs them
on its threads and on the event loop (see its module for why each runs where it does).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from execution.config import Settings
from execution.threads import Outcome

T = TypeVar("T")
# A ledger transaction (or a one-statement read): a function of the connection.
Body = Callable[[Connection], T]


def busy(exc: Exception) -> bool:
    """Whether SQLite answered SQLITE_BUSY ("database is locked"), not a real failure."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    # Errors the module raises itself ("Could not decode to UTF-8") carry no code.
    return getattr(orig, "sqlite_errorcode", None) in _BUSY_CODES


_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_BUSY_RECOVERY})


def read_with(engine: Engine, body: Body[T]) -> T:
    # Reads are single statements (see `Database.read`), each its own snapshot in the
    # driver's autocommit mode: no BEGIN around them.
    with engine.connect() as conn:
        return body(conn)


def run_batch(conn: Connection, bodies: Sequence[Body[Any]]) -> list[Outcome]:
    # BEGIN IMMEDIATE on the driver, not through a "begin" engine event nor
    # `exec_driver_sql`: any connection event makes SQLAlchemy dispatch its (empty)
    # execute events around every statement (~50 us per trade), and a statement through
    # SQLAlchemy costs ~25 us more. `conn.begin()` then tells SQLAlchemy a transaction is
    # open (in the driver's autocommit mode it sends nothing), so a body that begins its
    # own, like Alembic's migration, joins this one instead of committing it early.
    driver = conn.connection.dbapi_connection
    assert driver is not None
    driver.execute("BEGIN IMMEDIATE")
    conn.begin()
    try:
        if len(bodies) == 1:  # alone: no savepoint needed to fail alone
            try:
                outcomes: list[Outcome] = [(True, bodies[0](conn))]
            except Exception as exc:
                conn.rollback()
                return [(False, exc)]
        else:
            outcomes = []
            for body in bodies:
                driver.execute("SAVEPOINT body")
                try:
                    outcomes.append((True, body(conn)))
                except Exception as exc:
                    driver.execute("ROLLBACK TO body")
                    outcomes.append((False, exc))
                driver.execute("RELEASE body")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return outcomes


def configure(engine: Engine, settings: Settings) -> None:
    """WAL (readers never block the writer), the chosen fsync level, no implicit BEGIN."""
    busy_ms = int(settings.sqlite_busy_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's implicit transactions would defeat BEGIN IMMEDIATE: turn them off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        _enable_wal(cursor, settings.sqlite_busy_timeout_seconds)
        cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        cursor.close()


def _enable_wal(cursor: Any, timeout: float) -> None:
    """Switch a new database file to WAL; a no-op once it is (WAL is stored in the file).

    The switch needs the file to itself and SQLite answers "database is locked" at once,
    without its busy handler, when another process opens the new file at the same moment
    (replicas starting together), so retry within the busy timeout. This runs on the
    ledger's worker threads, never on the event loop.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                return
        except sqlite3.OperationalError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(0.01)  # another connection holds the new file; it is ours in a moment
