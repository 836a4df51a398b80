"""The approve-trade contract. Requests are strict: unknown fields, non-finite numbers,
negative cash or quantities are 422, so a misspelt `positions` can never size a trade
against an empty portfolio."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.market.models import Regime, UsdSymbol

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)
# Bounds keep every product of price, quantity and volatility finite (1e308 overflowed the
# metrics to null); strict numbers refuse `true` and "1000" instead of reading 1.0 and 1000.
MAX_AMOUNT = 1e12
MAX_CASH = 1e15
MAX_POSITIONS = 100
Quantity = Annotated[float, Field(ge=0, le=1e15, strict=True)]


class CurrentPortfolio(BaseModel):
    model_config = _STRICT

    cash: float = Field(
        ge=0, le=MAX_CASH, strict=True, description="Cash in USD", examples=[10_000.0]
    )
    positions: dict[UsdSymbol, Quantity] = Field(
        default_factory=dict,
        max_length=MAX_POSITIONS,
        description=f"Quantity held per symbol (base-currency units, each >= 0; at most "
        f"{MAX_POSITIONS} symbols, each priced for the decision)",
        examples=[{"BTC-USD": 0.05}],
    )


class ApproveTradeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "symbol": "BTC-USD",
                    "side": "buy",
                    "amount": 1000,
                    "current_portfolio": {"cash": 10_000, "positions": {"BTC-USD": 0.01}},
                }
            ]
        },
    )

    symbol: UsdSymbol = Field(description="Coinbase product id, BASE-QUOTE upper case, USD quote")
    side: Literal["buy", "sell"]
    amount: float = Field(gt=0, le=MAX_AMOUNT, strict=True, description="Requested notional in USD")
    current_portfolio: CurrentPortfolio


class RiskMetrics(BaseModel):
    portfolio_var: float = Field(description="One-day VaR of the post-trade portfolio / equity")
    portfolio_var_usd: float = Field(description="The same VaR in USD")
    concentration_risk: float = Field(description="Traded symbol's post-trade value / equity")
    volatility_daily: float = Field(description="Daily volatility used for the traded symbol")
    volatility_source: Literal["regime", "candles", "default"]


class AppliedLimits(BaseModel):
    max_position_share: float = Field(description="Position cap after the regime multiplier")
    regime_multiplier: float
    var_limit_share: float
    var_confidence: float
    min_order_usd: float
    max_order_usd: float
    buy_fee_rate: float


class Valued(BaseModel):
    """How the decision valued one symbol of the portfolio."""

    price: float
    volatility_daily: float


class ApproveTradeResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "approved": True,
                    "max_amount": 500.0,
                    "reason": "Position size reduced due to CHOPPY regime",
                    "binding_constraint": "regime",
                    "risk_metrics": {
                        "portfolio_var": 0.0012,
                        "portfolio_var_usd": 12.4,
                        "concentration_risk": 0.05,
                        "volatility_daily": 0.031,
                        "volatility_source": "regime",
                    },
                    "regime": "CHOPPY",
                    "regime_confidence": 0.62,
                    "price": 78_012.5,
                    "price_source": "coinbase",
                    "equity": 10_000.0,
                }
            ]
        }
    )

    approved: bool
    max_amount: float = Field(description="USD notional allowed now; 0 when not approved")
    reason: str = Field(description="The binding constraint in plain words, and any fallback")
    binding_constraint: str = Field(
        description="none, cash, holdings, var_limit, position_limit, regime, max_order, "
        "minimum_order, no_price or unpriced_holding"
    )
    risk_metrics: RiskMetrics | None = Field(description="Absent when the trade was not priced")
    regime: Regime
    regime_confidence: float | None
    price: float | None
    price_source: str | None
    equity: float | None
    limits: AppliedLimits | None = None
    valuation: dict[str, Valued] | None = Field(
        default=None,
        description="The price and daily volatility the decision used for the traded symbol "
        "and every held one: Execution applies the same limits with them again at the fill",
    )
