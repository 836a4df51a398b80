"""The in-process TTL layer and the two-layer cache in front of the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from market_data_gateway.cache import LocalCache, MarketCache
from market_data_gateway.redis_cache import RedisCache

from tests.unit.shared.fakes import FakeClock

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def test_local_entries_expire_with_the_clock() -> None:
    """An entry is served until its TTL passes on the injected clock, then gone."""
    clock = FakeClock()
    cache = LocalCache(max_entries=10, clock=clock)
    cache.set("k", b"v", 2.0)
    clock.advance(1.9)
    assert cache.get("k") == b"v"
    clock.advance(0.1)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_local_cache_is_bounded() -> None:
    """A full cache drops expired entries first, then the oldest, never growing past its bound."""
    clock = FakeClock()
    cache = LocalCache(max_entries=10, clock=clock)
    cache.set("short", b"s", 1.0)
    for i in range(9):
        cache.set(f"k{i}", b"v", 60.0)
    clock.advance(2)
    cache.set("new", b"n", 60.0)
    assert cache.get("k0") == b"v"  # the expired entry made room, nothing live was dropped
    for i in range(100):
        cache.set(f"more{i}", b"m", 60.0)
        assert len(cache) <= 10
    assert cache.get("more99") == b"m"


def test_non_positive_ttl_is_not_stored() -> None:
    """An answer already stale (ttl <= 0) is not cached at all."""
    cache = LocalCache(max_entries=10, clock=FakeClock())
    cache.set("k", b"v", 0.0)
    assert cache.get("k") is None


def test_a_zero_ttl_takes_no_room_in_a_full_cache() -> None:
    """Not storing a stale answer means not making room for it: nothing live is dropped."""
    cache = LocalCache(max_entries=1, clock=FakeClock())
    cache.set("live", b"l", 60.0)
    cache.set("stale", b"s", 0.0)
    assert (len(cache), cache.get("live")) == (1, b"l")


def test_refreshing_a_key_in_a_full_cache_drops_nothing() -> None:
    """Setting a key already held replaces it in place; a full cache keeps all its others."""
    cache = LocalCache(max_entries=10, clock=FakeClock())
    for i in range(10):
        cache.set(f"k{i}", b"v", 60.0)
    cache.set("k5", b"new", 60.0)
    assert [cache.get(f"k{i}") for i in (0, 5, 9)] == [b"v", b"new", b"v"]
    assert len(cache) == 10


@pytest.fixture
async def redis_cache() -> AsyncIterator[RedisCache]:
    """A RedisCache on the shared local Redis, under a key prefix of its own, cleaned up."""
    prefix = f"test-mdg-{uuid.uuid4().hex}:"
    cache = RedisCache(LOCAL_REDIS, prefix=prefix, socket_timeout=0.5, retry_seconds=2.0)
    yield cache
    raw = cache._redis
    keys = [key async for key in raw.scan_iter(match=prefix + "*")]
    if keys:
        await raw.delete(*keys)
    await cache.aclose()


async def test_redis_layer_shared_between_replicas(redis_cache: RedisCache) -> None:
    """What one replica stores, another reads from Redis and keeps locally for its rest TTL."""
    clock = FakeClock()
    one = MarketCache(LocalCache(max_entries=10, clock=clock), redis_cache)
    two = MarketCache(LocalCache(max_entries=10, clock=clock), redis_cache)
    await one.set("ohlcv:x", b"body", 30.0)
    assert two.peek("ohlcv:x") is None
    assert await two.get("ohlcv:x") == b"body"
    assert two.peek("ohlcv:x") == b"body"
    clock.advance(31)  # the local copy ends with the Redis TTL it was given
    assert two.peek("ohlcv:x") is None
    assert (await redis_cache.check()).status == "healthy"


async def test_redis_miss_and_expiry(redis_cache: RedisCache) -> None:
    """A missing key is a miss; Redis expires entries by their TTL in milliseconds."""
    assert await redis_cache.get("absent") is None
    await redis_cache.set("k", b"v", 0.5)
    found = await redis_cache.get("k")
    assert found is not None
    assert found[0] == b"v"
    assert 0 < found[1] <= 0.5


async def test_unreachable_redis_never_raises_and_rests() -> None:
    """Redis refusing connections: get/set quietly miss, health is degraded, Redis is rested."""
    clock = FakeClock()
    cache = RedisCache(
        "redis://127.0.0.1:1/0", prefix="x:", socket_timeout=0.2, retry_seconds=2.0, clock=clock
    )
    assert await cache.get("k") is None
    assert cache.down
    await cache.set("k", b"v", 1.0)
    assert cache._resting()  # inside the rest period: no network call at all
    health = await cache.check()
    assert health.status == "degraded"
    assert health.detail["serving"] == "uncached"
    clock.advance(2.1)
    assert not cache._resting()
    await cache.aclose()


async def test_lookup_says_hit_miss_or_error(redis_cache: RedisCache) -> None:
    """Local hit, Redis hit (then local), Redis miss; with Redis down it says `error`."""
    clock = FakeClock()
    cache = MarketCache(LocalCache(max_entries=10, clock=clock), redis_cache)
    assert await cache.lookup("price:x") == (None, "miss")
    await redis_cache.set("price:x", b"from-redis", 30.0)
    assert await cache.lookup("price:x") == (b"from-redis", "hit")
    assert cache.peek("price:x") == b"from-redis"
    await cache.set("price:y", b"mine", 30.0)
    assert await cache.lookup("price:y") == (b"mine", "hit")
    down = RedisCache(
        "redis://127.0.0.1:1/0", prefix="x:", socket_timeout=0.2, retry_seconds=2.0, clock=clock
    )
    unreachable = MarketCache(LocalCache(max_entries=10, clock=clock), down)
    assert await unreachable.lookup("price:x") == (None, "error")
    await down.aclose()


async def test_without_redis_the_memory_layer_is_the_cache() -> None:
    """No REDIS_URL: lookups hit or miss in memory; /health says so, with the entry count."""
    cache = MarketCache(LocalCache(max_entries=10, clock=FakeClock()))
    assert (cache.backend, await cache.lookup("k")) == ("memory", (None, "miss"))
    await cache.set("k", b"v", 5.0)
    assert await cache.lookup("k") == (b"v", "hit")
    health = await cache.check()
    assert (health.status, health.detail) == (
        "healthy",
        {"backend": "memory", "redis": "not configured", "entries": 1},
    )


def test_an_entry_expiring_now_is_evicted_before_any_live_one() -> None:
    """At its expiry instant an entry is gone: a full cache drops it, not a live entry."""
    clock = FakeClock()
    cache = LocalCache(max_entries=3, clock=clock)
    cache.set("a", b"a", 60.0)  # the oldest, but live
    cache.set("ends-now", b"e", 1.0)
    cache.set("b", b"b", 60.0)
    clock.advance(1.0)
    cache.set("c", b"c", 60.0)
    assert [cache.get(k) for k in ("a", "b", "c")] == [b"a", b"b", b"c"]


def test_a_full_cache_drops_the_oldest_tenth() -> None:
    """With nothing expired, a full cache of 20 drops its 2 oldest entries to make room."""
    cache = LocalCache(max_entries=20, clock=FakeClock())
    for i in range(20):
        cache.set(f"k{i}", b"v", 60.0)
    cache.set("new", b"n", 60.0)
    assert len(cache) == 19
    assert (cache.get("k0"), cache.get("k1"), cache.get("k2")) == (None, None, b"v")


def test_a_small_full_cache_drops_one() -> None:
    """Under 10 entries a tenth rounds down to 0; one entry is still dropped."""
    cache = LocalCache(max_entries=5, clock=FakeClock())
    for i in range(5):
        cache.set(f"k{i}", b"v", 60.0)
    cache.set("new", b"n", 60.0)
    assert len(cache) == 5
    assert (cache.get("k0"), cache.get("k1")) == (None, b"v")


def test_a_cache_of_one_entry_is_allowed_and_zero_is_refused() -> None:
    """max_entries=1 holds one entry; 0 is refused with the rule said."""
    cache = LocalCache(max_entries=1, clock=FakeClock())
    cache.set("k", b"v", 60.0)
    assert cache.get("k") == b"v"
    with pytest.raises(ValueError, match=r"^max_entries must be at least 1$"):
        LocalCache(max_entries=0)


def test_a_sub_second_ttl_is_kept() -> None:
    """An answer good for half a second is cached for that half second."""
    clock = FakeClock()
    cache = LocalCache(max_entries=10, clock=clock)
    cache.set("k", b"v", 0.5)
    assert cache.get("k") == b"v"
    clock.advance(0.5)
    assert cache.get("k") is None
