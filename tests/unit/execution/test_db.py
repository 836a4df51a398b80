"""The database URL mapping, SQLite's durability settings, and start-up migration."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from execution.config import Settings
from execution.db import SqliteDatabase, engine_url, open_database
from execution.migrate import migrate
from execution.models import accounts
from sqlalchemy import Connection, func, select, text

from shared.errors import ServiceUnavailableError


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///data/ledger.db", "sqlite"),
        ("sqlite+aiosqlite:///data/ledger.db", "sqlite"),
        ("postgresql://u:p@db:5432/ledger", "postgresql+asyncpg"),
        ("postgres://u:p@db/ledger", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@db/ledger", "postgresql+asyncpg"),
    ],
)
def test_urls_map_to_the_drivers(given: str, driver: str) -> None:
    """sqlite:/// and postgresql:// (or postgres://) URLs get the service's drivers."""
    url = engine_url(given)
    assert url.drivername == driver
    assert url.database in {"data/ledger.db", "ledger"}


def test_other_databases_are_refused() -> None:
    """A URL of another database is a configuration error, said at start-up."""
    with pytest.raises(ValueError, match="DATABASE_URL"):
        engine_url("mysql://u@db/ledger")


async def test_sqlite_ledger_is_wal_and_fsyncs(tmp_path: Path) -> None:
    """The default SQLite ledger runs in WAL mode with synchronous=FULL (2)."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'new' / 'ledger.db'}"))
    try:
        mode = await db.read(lambda c: c.execute(text("PRAGMA journal_mode")).scalar())
        sync = await db.read(lambda c: c.execute(text("PRAGMA synchronous")).scalar())
    finally:
        await db.dispose()
    assert (mode, sync) == ("wal", 2)


async def test_concurrent_migrations_open_the_account_once(database_url: str) -> None:
    """Three processes' worth of start-ups at once: one schema, one account, cash set once."""
    settings = Settings(database_url=database_url)
    dbs = [open_database(settings) for _ in range(3)]
    try:
        await asyncio.gather(*(migrate(db, starting_cash=settings.starting_cash) for db in dbs))
        await migrate(dbs[0], starting_cash=settings.starting_cash * 2)
        rows = await dbs[0].read(
            lambda c: c.execute(select(func.count(), func.min(accounts.c.cash))).one()
        )
    finally:
        for db in dbs:
            await db.dispose()
    assert tuple(rows) == (1, settings.starting_cash)


async def test_sqlite_books_reads_run_on_the_loop_and_busy_ones_on_a_thread(
    tmp_path: Path,
) -> None:
    """The books read runs on the event loop's own connection (no thread hop); when SQLite
    answers busy there, the same read is run again by a reader thread, which may wait."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    threads: list[str] = []

    def body(conn: Connection) -> int:
        threads.append(threading.current_thread().name)
        if len(threads) == 2:
            error = sqlite3.OperationalError("database is locked")
            error.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise error
        return int(conn.execute(text("SELECT 1")).scalar_one())

    try:
        assert await db.read_books(body) == 1
        assert await db.read_books(body) == 1
        with pytest.raises(ServiceUnavailableError):  # any other error is not retried
            await db.read_books(lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    finally:
        await db.dispose()
    loop_thread = threading.current_thread().name
    assert threads[:2] == [loop_thread, loop_thread]
    assert threads[2].startswith("ledger-reader")


async def test_every_other_sqlite_read_runs_on_a_reader_thread(tmp_path: Path) -> None:
    """A plain `read` (a page of orders, an idempotency key) never runs on the event loop."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    threads: list[str] = []

    def body(conn: Connection) -> int:
        threads.append(threading.current_thread().name)
        return int(conn.execute(text("SELECT 1")).scalar_one())

    try:
        assert await db.read(body) == 1
    finally:
        await db.dispose()
    assert threads[0].startswith("ledger-reader")


async def test_the_sqlite_writer_keeps_its_connection(tmp_path: Path) -> None:
    """Writes reuse one connection, also after a write that failed and was rolled back."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))

    def fail(conn: Connection) -> None:
        conn.exec_driver_sql("CREATE TABLE t (v TEXT)")
        raise RuntimeError("boom")

    def driver_id(conn: Connection) -> int:
        return id(conn.connection.dbapi_connection)

    try:
        first = await db.write(driver_id)
        with pytest.raises(RuntimeError):
            await db.write(fail)
        assert await db.write(driver_id) == first
        # The failed write's table was rolled back with it.
        tables = await db.read(
            lambda c: c.execute(text("SELECT name FROM sqlite_master WHERE name = 't'")).all()
        )
    finally:
        await db.dispose()
    assert tables == []


async def test_first_reads_at_once_share_one_loop_connection(tmp_path: Path) -> None:
    """Reads arriving together at start-up open one loop connection, and its busy timeout
    of 0 never reaches the pool, whose connections (the fallback, the writer) must wait."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))
    assert isinstance(db, SqliteDatabase)

    def driver(conn: Connection) -> int:
        conn.execute(text("SELECT 1")).all()
        return id(conn.connection.dbapi_connection)

    def busy_timeouts() -> list[int]:
        held = [db.engine.connect() for _ in range(db.engine.pool.size())]  # type: ignore[attr-defined]
        try:
            return [int(c.exec_driver_sql("PRAGMA busy_timeout").scalar_one()) for c in held]
        finally:
            for conn in held:
                conn.close()

    try:
        drivers = await asyncio.gather(*(db.read_books(driver) for _ in range(20)))
        timeouts = await asyncio.to_thread(busy_timeouts)
    finally:
        await db.dispose()
    assert len(set(drivers)) == 1
    assert drivers[0] != id(None)
    assert set(timeouts) == {30_000}


async def test_a_sqlite_error_without_a_code_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    """An error the driver raises itself (no SQLite code) is a 503, not an AttributeError."""
    db = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'ledger.db'}"))

    def body(conn: Connection) -> None:
        raise sqlite3.OperationalError("Could not decode to UTF-8 column 'reason'")

    try:
        with pytest.raises(ServiceUnavailableError):
            await db.read(body)
    finally:
        await db.dispose()
