"""Alembic's entry point: runs on the connection `execution.migrate` hands over."""

from __future__ import annotations

from alembic import context

from execution.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
# Inside the caller's transaction (which holds the migration lock) this is a no-op.
with context.begin_transaction():
    context.run_migrations()
