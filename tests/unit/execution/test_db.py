"""The database URL mapping, SQLite's durability settings, and start-up migration."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from execution.config import Settings
from execution.db import engine_url, open_database
from execution.migrate import migrate
from execution.models import accounts
from sqlalchemy import func, select, text


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
