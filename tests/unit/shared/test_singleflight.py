"""SingleFlight: one load per key, shared by every concurrent caller."""

from __future__ import annotations

import asyncio

import pytest

from shared.singleflight import SingleFlight


async def test_concurrent_callers_share_one_load() -> None:
    """Ten callers of one key while its load runs → one load, ten identical results."""
    flight: SingleFlight[str, bytes] = SingleFlight()
    release = asyncio.Event()
    loads = 0

    async def load() -> bytes:
        nonlocal loads
        loads += 1
        await release.wait()
        return b"body"

    callers = [asyncio.create_task(flight.run("k", load)) for _ in range(10)]
    await asyncio.sleep(0)  # let every caller join
    release.set()
    assert await asyncio.gather(*callers) == [b"body"] * 10
    assert loads == 1
    assert len(flight) == 0


async def test_errors_reach_every_caller_and_are_not_remembered() -> None:
    """A failed load raises in each waiting caller; the next call loads again."""
    flight: SingleFlight[str, bytes] = SingleFlight()
    attempts = 0

    async def load() -> bytes:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0)
        if attempts == 1:
            raise RuntimeError("upstream down")
        return b"ok"

    results = await asyncio.gather(
        flight.run("k", load), flight.run("k", load), return_exceptions=True
    )
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    assert await flight.run("k", load) == b"ok"


async def test_a_cancelled_caller_does_not_cancel_the_others() -> None:
    """One caller giving up leaves the shared load running for the rest."""
    flight: SingleFlight[str, bytes] = SingleFlight()
    release = asyncio.Event()

    async def load() -> bytes:
        await release.wait()
        return b"body"

    quitter = asyncio.create_task(flight.run("k", load))
    stayer = asyncio.create_task(flight.run("k", load))
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    release.set()
    assert await stayer == b"body"


async def test_different_keys_load_independently() -> None:
    """Two keys are two loads."""
    flight: SingleFlight[str, bytes] = SingleFlight()

    async def load_a() -> bytes:
        return b"a"

    async def load_b() -> bytes:
        return b"b"

    results = await asyncio.gather(flight.run("a", load_a), flight.run("b", load_b))
    assert list(results) == [b"a", b"b"]
