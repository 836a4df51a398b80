"""Alembic migrations of the ledger, applied at start-up by `execution.migrate`."""
