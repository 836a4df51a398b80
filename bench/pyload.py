"""The fallback load generator: `python -m bench.pyload` reads a `LoadSpec` as JSON on stdin.

`concurrency` workers share one aiohttp session (one connection each), each sending
requests back to back until the duration or the request budget runs out; it prints one
`BENCH_RESULT {json}` line in wrk's field names. It is slower than wrk: on a fast
target it may be the bottleneck, which the benchmark says when it uses it.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from bench.load import RESULT_MARK


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the load described by `spec` and return the wrk-shaped result."""
    bodies = [json.dumps(b).encode() for b in spec.get("bodies") or []]
    method, url = spec["method"], spec["url"]
    concurrency, budget = int(spec["concurrency"]), int(spec["max_requests"])
    latencies: list[float] = []
    counts = {"status_errors": 0, "connect": 0, "read": 0, "write": 0, "timeout": 0}
    started = time.perf_counter()
    deadline = started + float(spec["duration"])
    headers = {
        **spec.get("headers", {}),
        **({"Content-Type": "application/json"} if bodies else {}),
    }
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=float(spec["timeout"]))

    async def worker(session: aiohttp.ClientSession, offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline and len(latencies) < budget:
            body = bodies[i % len(bodies)] if bodies else None
            i += 1
            sent = time.perf_counter()
            try:
                async with session.request(method, url, data=body, headers=headers) as resp:
                    await resp.read()
                    if not 200 <= resp.status < 300:
                        counts["status_errors"] += 1
            except TimeoutError:
                counts["timeout"] += 1
                continue
            except aiohttp.ClientConnectorError:
                counts["connect"] += 1
                continue
            except aiohttp.ClientError:
                counts["read"] += 1
                continue
            latencies.append(time.perf_counter() - sent)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session, n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        **counts,
        "p50_us": int(percentile(latencies, 50) * 1e6),
        "p99_us": int(percentile(latencies, 99) * 1e6),
    }


def main() -> None:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(drive(spec))
    except ImportError:
        result = asyncio.run(drive(spec))
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
