"""Reading Coinbase Exchange's formats: candle rows and RFC 3339 times with nanoseconds."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from shared.market.models import Candle

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?$"
)


def parse_rfc3339(value: str) -> datetime:
    """An RFC 3339 timestamp as an aware UTC datetime; nanoseconds are truncated to micros.

    `datetime.fromisoformat` accepts at most 6 fractional digits; Coinbase sends up to 9.
    """
    match = _RFC3339_RE.match(value.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    micros = int((match.group(7) or "0")[:6].ljust(6, "0"))
    tz = UTC
    if match.group(9):
        sign = -1 if match.group(9) == "-" else 1
        tz = timezone(sign * timedelta(hours=int(match.group(10)), minutes=int(match.group(11))))
    moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    return moment.astimezone(UTC)


def parse_candles(rows: Any, *, start: int, before: int) -> list[Candle]:
    """Coinbase candle rows → closed candles in [start, before), oldest first, deduplicated."""
    if not isinstance(rows, list):
        raise ValueError("candles: expected a JSON array")
    by_time: dict[int, Candle] = {}
    for row in rows:
        if not isinstance(row, list) or len(row) < 6:
            raise ValueError(f"candles: malformed row {row!r}")
        t, low, high, open_, close, volume = (float(x) for x in row[:6])
        if start <= t < before:
            by_time[int(t)] = Candle(int(t), open_, high, low, close, volume)
    return [by_time[t] for t in sorted(by_time)]
