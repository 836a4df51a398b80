"""Schema migrations and the starting balance, applied once at start-up.

Several processes may start at once against one database: on PostgreSQL a transaction
advisory lock, on SQLite `BEGIN IMMEDIATE`, lets exactly one of them migrate and seed
the account while the others wait, then find nothing left to do.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, select

from execution.db import Database
from execution.dialects import dialect_of
from execution.models import ACCOUNT_ID, accounts

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def migrate(db: Database, *, starting_cash: Decimal) -> None:
    """Bring the schema to head and, on a new ledger, open the account with `starting_cash`."""
    await db.write(functools.partial(_migrate, starting_cash=starting_cash))


def _migrate(conn: Connection, *, starting_cash: Decimal) -> None:
    dialect_of(conn).serialize_migrations(conn)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    if conn.execute(select(accounts.c.id)).first() is None:
        now = datetime.now(UTC)
        conn.execute(
            accounts.insert().values(
                id=ACCOUNT_ID,
                cash=starting_cash,
                realized_pnl=Decimal(0),
                starting_cash=starting_cash,
                created_at=now,
                updated_at=now,
                trading_changed_at=now,
            )
        )
