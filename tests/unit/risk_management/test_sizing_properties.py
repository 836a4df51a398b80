"""Properties of sizing over random portfolios, requests, regimes and limits."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from risk_management.config import Settings
from risk_management.limits import Holding, Limits, Portfolio, TradeRequest
from risk_management.sizing import size_trade

from shared.market.models import Regime
from shared.var import portfolio_var, z_score

SYMBOLS = ["BTC-USD", "ETH-USD", "SOL-USD"]
TOL = 1e-9

money = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)
holding = st.builds(
    Holding,
    quantity=st.one_of(st.just(0.0), st.floats(min_value=0, max_value=1e3)),
    price=st.floats(min_value=0.01, max_value=1e5),
    sigma_daily=st.floats(min_value=0, max_value=0.5),
)
portfolios = st.builds(
    Portfolio,
    cash=money,
    holdings=st.dictionaries(st.sampled_from(SYMBOLS), holding, min_size=1, max_size=3),
)
# Limits as a service's settings make them (the regime multipliers the shipped ones).
limits = st.builds(
    Settings,
    max_position_share=st.floats(min_value=0.01, max_value=1),
    var_limit_share=st.floats(min_value=0.001, max_value=0.5),
    var_confidence=st.floats(min_value=0.9, max_value=0.999),
    buy_fee_rate=st.floats(min_value=0, max_value=0.02),
    min_order_usd=st.floats(min_value=0.01, max_value=100),
).map(Settings.limits)


@st.composite
def cases(draw: st.DrawFn) -> tuple[TradeRequest, Portfolio, Regime, Limits]:
    portfolio = draw(portfolios)
    request = TradeRequest(
        symbol=draw(st.sampled_from(sorted(portfolio.holdings))),
        side=draw(st.sampled_from(["buy", "sell"])),
        amount=draw(st.floats(min_value=0.01, max_value=1e7)),
    )
    return request, portfolio, draw(st.sampled_from(list(Regime))), draw(limits)


Case = tuple[TradeRequest, Portfolio, Regime, Limits]


@settings(max_examples=500, deadline=None)
@given(cases())
def test_max_amount_within_request_and_means(case: Case) -> None:
    """0 <= max_amount <= amount; buys fit the cash with the fee, sells the holding."""
    request, portfolio, regime, lim = case
    decision = size_trade(request, portfolio, regime, lim)
    assert 0 <= decision.max_amount <= request.amount
    if request.side == "buy":
        assert decision.max_amount * (1 + lim.buy_fee_rate) <= portfolio.cash * (1 + TOL)
    else:
        held = portfolio.holdings[request.symbol].value
        assert decision.max_amount <= held * (1 + TOL)


@settings(max_examples=500, deadline=None)
@given(cases())
def test_approved_trades_respect_every_limit(case: Case) -> None:
    """Approved => at least the minimum; approved buys keep VaR and the position in limits."""
    request, portfolio, regime, lim = case
    decision = size_trade(request, portfolio, regime, lim)
    if not decision.approved:
        assert decision.max_amount == 0
        return
    assert decision.max_amount >= lim.min_order_usd
    equity = portfolio.equity
    if request.side == "buy":
        assert decision.var_usd <= lim.var_limit_share * equity * (1 + TOL) + TOL
        cap = lim.max_position_share * lim.multiplier(regime)
        assert decision.concentration <= cap * (1 + TOL) + TOL
        assert decision.max_amount <= request.amount * lim.multiplier(regime) * (1 + TOL)
    else:
        before = portfolio_var(portfolio.values(), portfolio.sigmas(), z_score(lim.var_confidence))
        assert decision.var_usd <= before * (1 + TOL) + TOL


@settings(max_examples=200, deadline=None)
@given(cases())
def test_same_inputs_same_answer(case: Case) -> None:
    """Sizing is deterministic."""
    request, portfolio, regime, lim = case
    assert size_trade(request, portfolio, regime, lim) == size_trade(
        request, portfolio, regime, lim
    )


@settings(max_examples=300, deadline=None)
@given(cases())
def test_unknown_regime_never_allows_more_than_a_known_one(case: Case) -> None:
    """UNKNOWN is the most conservative regime: never a larger amount than any other."""
    request, portfolio, _, lim = case
    unknown = size_trade(request, portfolio, Regime.UNKNOWN, lim).max_amount
    for regime in (Regime.TRENDING, Regime.CHOPPY, Regime.VOLATILE):
        assert unknown <= size_trade(request, portfolio, regime, lim).max_amount + TOL
