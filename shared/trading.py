"""The trading state (a kill switch), one vocabulary for every service and test.

In the spirit of NautilusTrader's trading states: `ACTIVE` trades, `REDUCING` only lets
trades through that shrink a position (sells), `HALTED` refuses every trade.
"""

from __future__ import annotations

import enum
from typing import Literal


class TradingState(enum.StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    def allows(self, side: Literal["buy", "sell"]) -> bool:
        """Whether a trade on `side` may go ahead in this state."""
        if self is TradingState.ACTIVE:
            return True
        return self is TradingState.REDUCING and side == "sell"
