"""The process's one market source, chosen once by `MARKET_DATA_SOURCE`.

- `coinbase`: the public Coinbase Exchange API, whether or not it answers right now.
- `simulated`: the deterministic synthetic market.
- `auto`: probe Coinbase once with a short timeout; if it does not answer, use the
  simulator for the life of the process (said at WARNING). Sources are never mixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shared.health import CheckResult
from shared.market.coinbase import CoinbaseOptions, CoinbaseSource
from shared.market.source import MarketSource
from shared.settings import MarketSettings
from shared.transport import Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceChoice:
    """The source in use and how it was chosen (what `/health` reports)."""

    source: MarketSource
    requested: str
    fell_back: bool = False
    reason: str | None = None

    def describe(self) -> dict[str, object]:
        """The choice as `/health` detail."""
        detail: dict[str, object] = {
            "source": self.source.name,
            "requested": self.requested,
            "fell_back": self.fell_back,
        }
        if self.reason:
            detail["reason"] = self.reason
        return detail

    async def check(self) -> CheckResult:
        """`/health` check of a direct source: a fallback to the simulator is a decision
        taken at start-up and announced in the detail, not a fault, so it stays healthy;
        a source whose latest call failed (Coinbase down) is degraded, saying why."""
        last_error: str | None = getattr(self.source, "last_error", None)
        if last_error:
            return CheckResult("degraded", {**self.describe(), "last_error": last_error})
        return CheckResult("healthy", self.describe())


def _simulated(settings: MarketSettings, clock: Callable[[], float]) -> MarketSource:
    # Imported here so that services needing only Coinbase never load the simulator.
    from shared.market.simulated import SimulatedMarket

    return SimulatedMarket(settings.simulation_seed, clock=clock)


async def choose_source(
    settings: MarketSettings,
    transport: Transport,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SourceChoice:
    """Open the configured source; with `auto`, probe Coinbase once and maybe fall back."""
    wanted = settings.market_data_source
    if wanted == "simulated":
        return SourceChoice(_simulated(settings, clock), wanted)
    coinbase = CoinbaseSource(
        transport,
        base_url=settings.coinbase_api_url,
        options=CoinbaseOptions.from_settings(settings),
        clock=clock,
        sleep=sleep,
    )
    if wanted == "coinbase":
        return SourceChoice(coinbase, wanted)
    problem = await coinbase.probe(settings.coinbase_probe_timeout_seconds)
    if problem is None:
        log.info("market source: coinbase at %s (auto, probe answered)", coinbase.base_url)
        return SourceChoice(coinbase, wanted)
    await coinbase.aclose()
    log.warning(
        "MARKET DATA IS SIMULATED: Coinbase at %s did not answer the start-up probe (%s); "
        "this process uses the deterministic simulator until it restarts",
        settings.coinbase_api_url,
        problem,
    )
    return SourceChoice(_simulated(settings, clock), wanted, fell_back=True, reason=problem)
