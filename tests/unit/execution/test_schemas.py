"""The trade's fast JSON answer is the `Order` model's serialisation, field for field."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from execution.orders import Listed, OrderRecord
from execution.schemas import Order
from execution.service import render

FILLED = OrderRecord(
    order_id="0b6d7a8e-5f1c-4c3e-9a51-7f0f3b2f8c11",
    symbol="BTC-USD",
    side="buy",
    status="FILLED",
    requested_amount=Decimal("1000"),
    filled_amount=Decimal("700.00000000"),
    quantity=Decimal("0.010494752624"),
    price=Decimal("66700.123456789012"),
    fee=Decimal("0.70000000"),
    reason="Approved",
    risk={"approved": True, "max_amount": 700.0, "price": 66666.67, "nested": {"a": [1, 2.5]}},
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    idempotency_key="k",
    created_at=datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),
)
REJECTED = OrderRecord(
    **{
        **FILLED.__dict__,
        "side": "sell",
        "status": "REJECTED",
        "filled_amount": Decimal(0),
        "quantity": Decimal(0),
        "price": None,
        "fee": Decimal(0),
        "risk": None,
        "trace_id": None,
    }
)


@pytest.mark.parametrize("record", [FILLED, REJECTED], ids=["filled", "rejected"])
def test_render_matches_the_order_model(record: OrderRecord) -> None:
    """`render` gives exactly the JSON the `Order` model would, including the risk decision
    (the trade's own answer carries no `account`: lists and look-ups add it)."""
    listed = Order.of(Listed(record, 1)).model_dump(mode="json")
    assert listed.pop("account") == 1
    assert orjson.loads(render(record)) == listed
