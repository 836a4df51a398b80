"""The ledger's database: one async engine per process, SQLite by default, PostgreSQL when set.

Every write transaction goes through `Database.writer`. On SQLite it opens with
`BEGIN IMMEDIATE`, taking the database's single write lock up front (across processes
too), so a read-then-write transaction can never be overtaken between its read and its
write. On PostgreSQL the ledger takes row locks (`SELECT ... FOR UPDATE`) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from execution.config import Settings

_IMMEDIATE = "sqlite_begin_immediate"


def async_url(url: str) -> str:
    """Map `sqlite:///` and `postgresql://` (or `postgres://`) URLs to their async drivers."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    parsed = make_url(url)
    drivers = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
    if parsed.drivername not in drivers:
        if parsed.drivername in drivers.values():
            return url
        raise ValueError(f"DATABASE_URL must be sqlite:/// or postgresql://, not {url!r}")
    return parsed.set(drivername=drivers[parsed.drivername]).render_as_string(hide_password=False)


class Database:
    """The engine (a pooled connection set) and its write-transaction variant."""

    def __init__(self, settings: Settings) -> None:
        url = make_url(async_url(settings.database_url))
        self.is_sqlite = url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_size": settings.db_pool_size}
        kwargs["max_overflow"] = settings.db_pool_size
        if self.is_sqlite:
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": settings.sqlite_busy_timeout_seconds}
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, settings)
        # Same pool; transactions begun through it take SQLite's write lock at BEGIN.
        self.writer: AsyncEngine = self.engine.execution_options(**{_IMMEDIATE: True})

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def dispose(self) -> None:
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine, settings: Settings) -> None:
    """WAL (readers never block the writer), the chosen fsync level, our own BEGIN."""
    busy_ms = int(settings.sqlite_busy_timeout_seconds * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's implicit transactions would defeat BEGIN IMMEDIATE: turn them off.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {settings.sqlite_synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
