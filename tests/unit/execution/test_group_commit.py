"""SQLite's writer commits queued writes together, each failing or succeeding alone."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from execution.config import Settings
from execution.db import SqliteDatabase, open_database
from execution.threads import WorkerThreads
from sqlalchemy import Connection, text


class BoomError(Exception):
    pass


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = open_database(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}"))
    assert isinstance(database, SqliteDatabase)
    await database.write(lambda conn: conn.exec_driver_sql("CREATE TABLE t (v TEXT)"))
    yield database
    await database.dispose()


def insert(value: str, *, fail: bool = False) -> Any:
    def body(conn: Connection) -> int:
        conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": value})
        if fail:
            raise BoomError(value)
        return id(conn)

    return body


async def held_writer(db: SqliteDatabase) -> tuple[threading.Event, asyncio.Future[Any]]:
    """The writer busy in a first write until the event is set, so later writes queue."""
    started, release = threading.Event(), threading.Event()

    def first(conn: Connection) -> None:
        started.set()
        release.wait(10)

    blocker = asyncio.ensure_future(db.write(first))
    await asyncio.to_thread(started.wait, 10)
    return release, blocker


async def test_a_failing_write_rolls_back_alone_in_a_batch(db: SqliteDatabase) -> None:
    """Queued writes share one transaction; the one that raises leaves no row, the rest commit."""
    release, blocker = await held_writer(db)
    writes = [
        asyncio.ensure_future(db.write(insert(v, fail=v == "bad"))) for v in ("a", "bad", "b")
    ]
    await asyncio.sleep(0)
    release.set()
    await blocker
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert isinstance(results[1], BoomError)
    assert results[0] == results[2]  # the same connection: one batch, one commit
    rows = await db.read(lambda conn: conn.execute(text("SELECT v FROM t ORDER BY v")).all())
    assert [row.v for row in rows] == ["a", "b"]


async def test_a_failed_commit_fails_the_whole_batch(db: SqliteDatabase) -> None:
    """When the batch's transaction cannot commit, every write in it fails and none is kept."""
    release, blocker = await held_writer(db)

    def poison(conn: Connection) -> None:
        # A COMMIT inside the batch ends its transaction: the batch's own COMMIT, and the
        # RELEASE of this savepoint, then fail. Stands in for a disk error at commit.
        conn.exec_driver_sql("ROLLBACK")

    writes = [asyncio.ensure_future(db.write(body)) for body in (insert("a"), poison)]
    await asyncio.sleep(0)
    release.set()
    await blocker
    results = await asyncio.gather(*writes, return_exceptions=True)
    assert all(isinstance(result, Exception) for result in results)
    rows = await db.read(lambda conn: conn.execute(text("SELECT v FROM t")).all())
    assert rows == []


async def test_a_cancelled_call_is_not_run() -> None:
    """A caller that gave up before its turn never runs; the others answer on the loop."""
    threads = WorkerThreads(1, "test")
    started, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold() -> None:
        started.set()
        release.wait(10)

    def record(name: str) -> int:
        ran.append(name)
        return 42

    busy = threads.call(hold)
    await asyncio.to_thread(started.wait, 10)
    skipped = threads.call(lambda: record("skipped"))
    kept = threads.call(lambda: record("kept"))
    skipped.cancel()
    release.set()
    assert await kept == 42
    await busy
    await threads.shutdown()
    assert ran == ["kept"]
