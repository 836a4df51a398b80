"""The stampede check: many clients ask the gateway for the same uncached candles at once.

The gateway runs as its own process on the `coinbase` source pointed at the test suite's
fake Coinbase, served from a thread of this process, so every upstream call is counted
where it lands (per path and granularity, i.e. per cache key). Each client has its own
connection, opened before the stampede (a request to `/health`); a barrier then releases
them all together. If the gateway also reports a counter in `/health`, it is read too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from bench import stack, targets

# Where the gateway may report its upstream calls: keys searched in /health, depth first.
COUNTER_KEYS = ("upstream_calls", "source_calls", "upstream_fetches")


def find_counter(doc: Any) -> Any:
    """The first upstream-call counter found anywhere in a JSON document, or None."""
    if isinstance(doc, Mapping):
        for key in COUNTER_KEYS:
            if key in doc:
                return doc[key]
        for value in doc.values():
            found = find_counter(value)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for value in doc:
            found = find_counter(value)
            if found is not None:
                return found
    return None


def total_calls(counter: Any) -> int | None:
    """A counter as one number: an int, or the sum of a mapping of ints (per key or kind)."""
    if isinstance(counter, bool):
        return None
    if isinstance(counter, int | float):
        return int(counter)
    if isinstance(counter, Mapping):
        parts = [total_calls(v) for v in counter.values()]
        return sum(p for p in parts if p is not None)
    return None


async def upstream_calls(session: aiohttp.ClientSession, base: str) -> Any:
    """The gateway's upstream call counter as it reports it, or None if it has none."""
    async with session.get(f"{base}/health") as resp:
        return find_counter(await resp.json())


async def stampede(
    base: str, path: str, clients: int = 100, timeout: float = 20.0
) -> dict[str, Any]:
    """Send `clients` simultaneous GETs of `path`; return statuses and the counter delta."""
    limit = aiohttp.ClientTimeout(total=timeout)
    sessions = [
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=limit)
        for _ in range(clients)
    ]
    # Every client opens its connection, then all are released together.
    barrier = asyncio.Barrier(clients)

    async def one(session: aiohttp.ClientSession) -> int:
        async with session.get(f"{base}/health") as resp:
            await resp.read()
        await barrier.wait()
        async with session.get(base + path, headers=targets.HEADERS) as resp:
            await resp.read()
            return resp.status

    try:
        before = await upstream_calls(sessions[0], base)
        tasks = [asyncio.create_task(one(s)) for s in sessions]
        statuses = await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        after = await upstream_calls(sessions[0], base)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
    counted = total_calls(before), total_calls(after)
    delta = counted[1] - counted[0] if None not in counted else None  # type: ignore[operator]
    return {
        "clients": clients,
        "path": path,
        "ok": sum(1 for s in statuses if 200 <= s < 300),
        "statuses": sorted(set(statuses)),
        "counter_before": before,
        "counter_after": after,
        "upstream_calls": delta,
    }


def counted_stampede(
    log_dir: Path, redis_url: str, path: str, clients: int = 100
) -> dict[str, Any]:
    """Stampede a fresh gateway on a counting fake Coinbase; add the calls it saw per key."""
    from tests.support.fake_coinbase import FakeCoinbase
    from tests.support.servers import serve_in_thread

    fake = FakeCoinbase(seed=1)
    stack.flush_redis(redis_url)
    with serve_in_thread(fake.app) as exchange:
        env = {
            "MARKET_DATA_SOURCE": "coinbase",
            "COINBASE_API_URL": exchange.url,
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": "bench-stampede:",
            "LOG_LEVEL": "WARNING",
            **targets.stack_keys(),
        }
        gateway = stack.Server(
            "stampede-gateway", "main:app", log_dir, cwd=stack.REPO / "market-data-gateway", env=env
        )
        with stack.running([gateway]):
            result = asyncio.run(stampede(gateway.url, path, clients))
    stack.flush_redis(redis_url)
    per_key = Counter(
        f"{call.path}?granularity={call.params.get('granularity')}"
        for call in fake.calls
        if call.path.endswith("/candles")
    )
    return {
        **result,
        "gateway_counter": result.pop("upstream_calls"),
        "exchange_calls_per_key": dict(per_key),
        "upstream_calls": max(per_key.values(), default=0),
    }
