"""The gateway's settings: the cache (how Coinbase is asked is in `MarketSettings`)."""

from __future__ import annotations

from pydantic import Field

from shared.settings import MarketSettings


class Settings(MarketSettings):
    """Every knob of the Market Data Gateway, read from the environment (upper-cased names)."""

    # Shared cache across replicas; unset → an in-process TTL cache only.
    redis_url: str | None = None
    # Keys are prefixed, so one Redis can serve other purposes too.
    redis_key_prefix: str = "mdg:"
    # Short, so a dead or blackholed Redis costs a request at most this (connect + reply).
    redis_socket_timeout_seconds: float = Field(default=0.25, gt=0)
    # After a Redis failure, serve uncached for this long before trying Redis again,
    # so a dead Redis is not hit (and waited for) on every request.
    redis_retry_seconds: float = Field(default=2.0, gt=0)
    # How long a price is served from cache: entries live in epoch-aligned buckets of this
    # many seconds, so every replica agrees when one ends (an entry lives at most this).
    price_ttl_seconds: float = Field(default=1.0, gt=0)
    # Candles are cached until the next candle closes; if the newest closed candle is
    # missing (the exchange may publish it late), only for this long.
    ohlcv_incomplete_ttl_seconds: float = Field(default=5.0, gt=0)
    # A product the exchange said it does not list is answered 404 from memory this long.
    unknown_symbol_ttl_seconds: float = Field(default=60.0, ge=0)
    # The source's product list (`/api/v1/symbols`) is cached this long.
    symbols_ttl_seconds: float = Field(default=3600.0, gt=0)
    # Bound of the in-process layer (hot keys in front of Redis, or the whole cache).
    local_cache_max_entries: int = Field(default=10_000, ge=1)
