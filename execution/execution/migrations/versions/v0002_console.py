"""The console's tables: account resets and the portfolio's history points.

Revision ID: 0002_console
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from execution.models import Money, UtcDateTime

revision = "0002_console"
down_revision = "0001"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_resets",
        sa.Column("account", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_order_seq", _SEQ, nullable=False),
        sa.Column("reset_at", UtcDateTime, nullable=False),
        sa.Column("books", sa.JSON, nullable=False),
    )
    op.create_table(
        "portfolio_points",
        sa.Column("seq", _SEQ, primary_key=True),
        sa.Column("account", sa.Integer, nullable=False),
        sa.Column("timestamp", UtcDateTime, nullable=False),
        sa.Column("trigger", sa.String(8), nullable=False),
        sa.Column("equity", Money, nullable=False),
        sa.Column("cash", Money, nullable=False),
        sa.Column("positions_value", Money, nullable=False),
        sa.Column("realized_pnl", Money, nullable=False),
    )
    op.create_index(
        "ix_portfolio_points_account_timestamp", "portfolio_points", ["account", "timestamp"]
    )


def downgrade() -> None:
    op.drop_table("portfolio_points")
    op.drop_table("account_resets")
