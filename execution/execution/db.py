"""The ledger's database: SQLite by default, PostgreSQL when `DATABASE_URL` says so.

Transactions are plain functions of a SQLAlchemy `Connection`, run whole by
`Database.write` (or `read`), so the ledger's logic is one piece of code for both:

- PostgreSQL: an async engine (asyncpg); the function runs in SQLAlchemy's greenlet
  bridge, each statement awaiting the network. The ledger takes row locks
  (`SELECT ... FOR UPDATE`). Reads are single statements on an autocommit connection.
  The trade's own books read and transaction skip the bridge: they run on the pool's
  asyncpg connection directly (`driver`, used by `execution.pgledger`).
- SQLite: the stdlib driver, each write transaction run entirely in one thread call.
  aiosqlite would pay a thread hop per statement, which made a fill several times
  slower. Writes open with `BEGIN IMMEDIATE`, taking the database's write lock up front
  (across processes too); in this process they queue on one writer thread, so they
  never spin in SQLite's sleeping busy handler against each other, and the writes
  queued meanwhile commit together (group commit: one fsync for the batch, each write
  in its own savepoint). The fsync was ~0.1 ms of CPU (system time) per trade.
  Reads run on the reader threads, except the trade's books read (`read_books`), which
  runs on the event loop itself, on a connection of its own that never waits: in WAL
  mode a read takes no lock a writer holds and does no fsync (the books read is ~25 us),
  while a thread hop there and back cost ~120 us of CPU (futex wake-ups and GIL
  hand-overs, measured on the 2-core bench machine). A larger read (a page of 500
  orders, ~15 ms) would stall every request meanwhile, so only that one may. In the rare
  case SQLite answers "busy" to it (another process recovering the WAL), it goes to the
  reader threads, which wait the busy timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import asyncpg  # type: ignore[import-untyped]
import orjson
from sqlalchemy import URL, Connection, create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from execution.config import Settings
from execution.sqlite import Body, busy, configure, read_with, run_batch
from execution.threads import Outcome, WorkerThreads
from shared.errors import ServiceUnavailableError

T = TypeVar("T")
# The hot path runs statements on the driver (`statements.run`), so the stdlib driver's own
# errors arrive unwrapped; SQLAlchemy's wrap everything else.
_UNAVAILABLE = (OperationalError, InterfaceError, OSError, sqlite3.OperationalError)
# asyncpg's own, on the PostgreSQL hot path: the connection or the server went away.
PG_UNAVAILABLE = (
    *_UNAVAILABLE,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)
log = logging.getLogger(__name__)


def _dump_json(value: Any) -> str:
    return orjson.dumps(value).decode()


# The orders' `risk` column: orjson is several times faster than the stdlib here.
_JSON_CODEC: dict[str, Any] = {"json_serializer": _dump_json, "json_deserializer": orjson.loads}


def engine_url(url: str) -> URL:
    """The driver URL for `sqlite:///path` or `postgresql://...` (`postgres://` too)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite")
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, not {url!r}")


class Database:
    """Runs ledger transactions; `open_database` picks the implementation.

    A database that cannot be reached (or stays locked past the busy timeout) is a 503
    `ServiceUnavailableError`, not a 500: the trade did not happen and may be retried.
    """

    dialect: str
    # Told how long each write took, queue included (`execution_ledger_write_seconds`).
    observe_write: Callable[[float], None] | None = None

    async def write(self, body: Body[T]) -> T:
        """Run `body` in one read-write transaction; commit if it returns."""
        started = time.perf_counter()
        try:
            return await self._write(body)
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc
        finally:
            if self.observe_write is not None:
                self.observe_write(time.perf_counter() - started)

    async def read(self, body: Body[T]) -> T:
        """Run `body`, which must be one statement that only reads (autocommit) and
        consume its result (an unread result would hold a snapshot open); off the event
        loop (SQLite: on the reader threads)."""
        try:
            return await self._read(body)
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    async def read_books(self, body: Body[T]) -> T:
        """`read` for the trade's books read only (the account and its few positions, one
        indexed statement): on SQLite it runs on the event loop itself, where a thread
        hop would cost ten times the read. Never a page of orders nor a scan."""
        try:
            return await self._read_books(body)
        except _UNAVAILABLE as exc:
            raise _unavailable(exc) from exc

    async def _write(self, body: Body[T]) -> T:
        raise NotImplementedError

    async def _read(self, body: Body[T]) -> T:
        raise NotImplementedError

    async def _read_books(self, body: Body[T]) -> T:
        return await self._read(body)

    async def dispose(self) -> None:
        raise NotImplementedError


def unavailable(exc: BaseException) -> ServiceUnavailableError:
    """The 503 for a database that could not be reached (logged)."""
    return _unavailable(exc)


def _unavailable(exc: BaseException) -> ServiceUnavailableError:
    log.warning("ledger database unavailable: %s", exc)
    detail = f"The ledger database is unavailable ({type(exc).__name__}); nothing was written"
    return ServiceUnavailableError("database", detail, retry_after=1.0)


def open_database(settings: Settings) -> Database:
    url = engine_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return SqliteDatabase(url, settings)
    return PostgresDatabase(url, settings)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: URL, settings: Settings) -> None:
        size = settings.db_pool_size
        # No overflow: an overflow connection is closed when it comes back, so a burst of
        # books reads opened and closed connections (asyncpg's TLS attempt, the login, the
        # codecs' set-up) all the time: 371 opened for 960 trades at c=32, 2.1 ms of CPU
        # per trade against 0.9 ms with `size` kept open and a brief wait for one.
        self.engine: AsyncEngine = create_async_engine(
            url, pool_size=size, max_overflow=0, **_JSON_CODEC
        )
        # No BEGIN/ROLLBACK round trips around single-statement reads.
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def _write(self, body: Body[T]) -> T:
        async with self.engine.begin() as conn:
            return await conn.run_sync(body)

    async def _read(self, body: Body[T]) -> T:
        async with self._reader.connect() as conn:
            return await conn.run_sync(body)

    @contextlib.asynccontextmanager
    async def driver(self) -> AsyncIterator[Any]:
        """A pooled connection's asyncpg connection, for the statements of the trade's
        hot path: no greenlet bridge, no execution context per statement. A connection
        that broke under it is dropped from the pool."""
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            try:
                yield raw.driver_connection
            except PG_UNAVAILABLE:
                await conn.invalidate()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()


class SqliteDatabase(Database):
    dialect = "sqlite"

    def __init__(self, url: URL, settings: Settings) -> None:
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        size = settings.db_pool_size
        self.engine: Engine = create_engine(
            url,
            pool_size=size + 2,  # the reader threads, the writer and the loop's reader
            max_overflow=0,
            **_JSON_CODEC,
            connect_args={
                "timeout": settings.sqlite_busy_timeout_seconds,
                "check_same_thread": False,
            },
        )
        configure(self.engine, settings)
        self._writer_conn: Connection | None = None  # the writer thread's own
        self._writer = WorkerThreads(
            1,
            "ledger-writer",
            run_batch=self._write_batch,
            max_batch=settings.sqlite_max_batch,
        )
        self._readers = WorkerThreads(size, "ledger-reader")
        self._loop_reader: Connection | None = None  # the event loop's own
        self._opening = asyncio.Lock()
        self._disposed = False

    async def _write(self, body: Body[T]) -> T:
        return await self._writer.call(body)  # type: ignore[no-any-return]

    async def _read(self, body: Body[T]) -> T:
        return await self._readers.call(functools.partial(read_with, self.engine, body))  # type: ignore[no-any-return]

    async def _read_books(self, body: Body[T]) -> T:
        conn = self._loop_reader or await self._open_loop_reader()
        try:
            return body(conn)
        except (sqlite3.OperationalError, OperationalError) as exc:
            if not busy(exc):
                raise
        finally:
            if conn.invalidated:  # it broke: the next read opens a fresh one
                self._loop_reader = None
            elif conn.in_transaction():  # SQLAlchemy's autobegin; no BEGIN was sent
                conn.rollback()
        return await self._read(body)

    async def _open_loop_reader(self) -> Connection:
        async with self._opening:  # one connection, however many reads wait for it
            if self._loop_reader is None:
                if self._disposed:
                    raise RuntimeError("the ledger database was disposed")
                # Off the loop: a new connection may wait to switch a new file to WAL.
                self._loop_reader = await asyncio.to_thread(self._connect_without_waiting)
            return self._loop_reader

    def _connect_without_waiting(self) -> Connection:
        conn = self.engine.connect()
        # Out of the pool for good: its busy timeout of 0 must never reach a thread that
        # is meant to wait (the readers' fallback, the writer).
        conn.detach()
        conn.exec_driver_sql("PRAGMA busy_timeout = 0")
        conn.rollback()
        return conn

    async def dispose(self) -> None:
        self._disposed = True
        await self._writer.shutdown()
        await self._readers.shutdown()
        if self._loop_reader is not None:
            self._loop_reader.close()  # detached: closing it closes the connection
        if self._writer_conn is not None:
            self._writer_conn.invalidate()
        self._loop_reader = self._writer_conn = None
        self.engine.dispose()

    def _write_batch(self, bodies: Sequence[Body[Any]]) -> list[Outcome]:
        """The transactions queued for the writer, committed together: one fsync for all.

        Each body runs inside its own SAVEPOINT, so one that raises is rolled back alone
        and gets its exception, while the others commit. Anything failing outside a body
        (BEGIN, a ROLLBACK TO, the COMMIT) fails them all: nothing of the batch was
        written. Every caller hears back only after the COMMIT, so a 201 is as durable as
        with one transaction each. `BEGIN IMMEDIATE` takes the write lock up front. The
        writer keeps its connection (a pool checkout per batch was ~40 us) until a
        batch fails as a whole (BEGIN, COMMIT or ROLLBACK did): then it is dropped.
        """
        conn = self._writer_conn or self.engine.connect()
        self._writer_conn = None
        try:
            outcomes = run_batch(conn, bodies)
        except BaseException:
            conn.invalidate()
            raise
        self._writer_conn = conn
        return outcomes
