"""The order list's filters and its CSV export, through the HTTP API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.unit.execution.stubs import RiskStub, approve_all


async def _trade(client: httpx.AsyncClient, symbol: str, side: str, amount: float) -> Any:
    response = await client.post(
        "/api/v1/trade", json={"symbol": symbol, "side": side, "amount": amount}
    )
    assert response.status_code == 201
    return response.json()


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/api/v1/orders", params=params)
    assert response.status_code == 200, response.text
    return [o["order_id"] for o in response.json()["orders"]]


@pytest.fixture
async def placed(client: httpx.AsyncClient, risk: RiskStub) -> list[Any]:
    """Four orders: BTC buy, ETH buy, BTC sell (all FILLED), then a REJECTED BTC buy."""
    orders = [
        await _trade(client, "BTC-USD", "buy", 100),
        await _trade(client, "ETH-USD", "buy", 50),
        await _trade(client, "BTC-USD", "sell", 20),
    ]
    risk.rule = lambda body: (
        approve_all(body) | {"approved": False, "max_amount": 0, "reason": "No"}
    )
    orders.append(await _trade(client, "BTC-USD", "buy", 30))
    assert [o["status"] for o in orders] == ["FILLED"] * 3 + ["REJECTED"]
    return orders


async def test_filters_by_symbol_side_and_status(
    client: httpx.AsyncClient, placed: list[Any]
) -> None:
    """symbol, side and status each narrow the list, alone and together."""
    ids = [o["order_id"] for o in placed]
    assert await _ids(client, symbol="BTC-USD") == [ids[3], ids[2], ids[0]]
    assert await _ids(client, symbol="ETH-USD") == [ids[1]]
    assert await _ids(client, side="sell") == [ids[2]]
    assert await _ids(client, status="REJECTED") == [ids[3]]
    assert await _ids(client, symbol="BTC-USD", status="FILLED", side="buy") == [ids[0]]
    assert await _ids(client, symbol="SOL-USD") == []


async def test_filters_by_time(client: httpx.AsyncClient, placed: list[Any]) -> None:
    """since is inclusive and until exclusive, on the orders' created_at."""
    ids = [o["order_id"] for o in placed]
    second = placed[1]["created_at"]
    assert await _ids(client, since=second) == [ids[3], ids[2], ids[1]]
    assert await _ids(client, until=second) == [ids[0]]
    assert await _ids(client, since=second, until=placed[2]["created_at"]) == [ids[1]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await _ids(client, since=later) == []
    # No zone is read as UTC.
    naive = datetime.fromisoformat(second.replace("Z", "+00:00")).replace(tzinfo=None)
    assert await _ids(client, until=naive.isoformat()) == [ids[0]]


async def test_filters_page_with_a_cursor(client: httpx.AsyncClient, placed: list[Any]) -> None:
    """A filtered list pages like the whole one: the cursor keeps the filter's order."""
    first = (await client.get("/api/v1/orders", params={"symbol": "BTC-USD", "limit": 2})).json()
    rest = await _ids(client, symbol="BTC-USD", limit=2, cursor=first["next_cursor"])
    assert [o["order_id"] for o in first["orders"]] + rest == [
        placed[3]["order_id"],
        placed[2]["order_id"],
        placed[0]["order_id"],
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "OPEN"}, "status"),
        ({"status": "filled"}, "status"),
        ({"side": "short"}, "side"),
        ({"symbol": "btc-usd"}, "symbol"),
        ({"symbol": "BTCUSD"}, "symbol"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
    ],
)
async def test_unknown_filter_value_is_422(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    """A filter value the API does not know is a 422 naming it, never ignored."""
    response = await client.get("/api/v1/orders", params=params)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_unknown_parameter_is_422(client: httpx.AsyncClient) -> None:
    """A misspelt filter (`stauts`) is a 422, not a silently unfiltered list."""
    response = await client.get("/api/v1/orders", params={"stauts": "FILLED"})
    assert response.status_code == 422
    assert "stauts" in response.json()["detail"]


async def test_csv_export_has_every_page(client: httpx.AsyncClient, risk: RiskStub) -> None:
    """Accept: text/csv gives a header and every matching order, past one page's size."""
    from execution import orders as orders_module

    placed = [await _trade(client, "BTC-USD", "buy", 10 + i) for i in range(7)]
    await _trade(client, "ETH-USD", "buy", 10)
    original = orders_module.EXPORT_PAGE
    orders_module.EXPORT_PAGE = 3  # several pages from few orders
    try:
        response = await client.get(
            "/api/v1/orders", params={"symbol": "BTC-USD"}, headers={"Accept": "text/csv"}
        )
    finally:
        orders_module.EXPORT_PAGE = original
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["order_id"] for r in rows] == [o["order_id"] for o in placed[::-1]]
    assert rows[0]["symbol"] == "BTC-USD"
    assert rows[0]["status"] == "FILLED"
    assert float(rows[0]["requested_amount"]) == 16
    assert rows[0]["account"] == "1"


async def test_csv_of_nothing_is_the_header(client: httpx.AsyncClient) -> None:
    """An export that matches no order is the header row alone."""
    response = await client.get("/api/v1/orders", headers={"Accept": "text/csv"})
    assert response.text.splitlines() == [
        "order_id,created_at,account,symbol,side,status,requested_amount,filled_amount,"
        "quantity,price,fee,reason,trace_id"
    ]
