"""The trading state (kill switch) on the account row, its history, the protections' marks.

Revision ID: 0003_trading
Revises: 0002_console
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from execution.models import Money, UtcDateTime

revision = "0003_trading"
down_revision = "0002_console"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    # On the account row: every fill already locks it, so a fill and a state change are
    # ordered, and the books read carries the state at no extra statement.
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("trading_state", sa.String(16), nullable=False, server_default="ACTIVE")
        )
        batch.add_column(
            sa.Column("trading_reason", sa.Text, nullable=False, server_default="New ledger")
        )
        batch.add_column(
            sa.Column("trading_changed_by", sa.String(64), nullable=False, server_default="system")
        )
        batch.add_column(sa.Column("trading_changed_at", UtcDateTime, nullable=True))
        # The protections' reference points: equity at the start of the UTC day, and the peak.
        batch.add_column(sa.Column("day_start_equity", Money, nullable=True))
        batch.add_column(sa.Column("day_start", sa.String(10), nullable=True))
        batch.add_column(sa.Column("peak_equity", Money, nullable=True))
    op.execute("UPDATE accounts SET trading_changed_at = created_at")
    op.create_table(
        "trading_state_changes",
        sa.Column("seq", _SEQ, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trading_state_changes")
    with op.batch_alter_table("accounts") as batch:
        for name in (
            "peak_equity",
            "day_start",
            "day_start_equity",
            "trading_changed_at",
            "trading_changed_by",
            "trading_reason",
            "trading_state",
        ):
            batch.drop_column(name)
