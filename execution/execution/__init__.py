"""Execution: the trade endpoint, the paper broker and the durable SQL ledger (:8004)."""
