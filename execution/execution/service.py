"""The trade flow: books from the ledger, Risk's decision, the paper fill, one write.

The fill uses the price inside Risk's decision. Risk read it from the gateway moments
before, so Execution saves a fourth hop on the hot path; slippage then models the move.
Risk unreachable means no trade (fail safe): the attempt is recorded as a REJECTED
order with no risk decision, and the caller gets a 503 with Retry-After. That 503 is
not stored under the Idempotency-Key, so a retry with the same key really retries.
The trading state is checked before Risk is asked and again under the fill's lock (a
refusal is a 409, recorded); a buy is sized again under that lock by Risk's own limits
(`execution.limits`), and the protections measure equity in the same transaction
(`execution.protections`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import orjson

from execution.broker import Books, Costs, Fill, Refusal, Side, plan_fill
from execution.fills import Seal
from execution.idempotency import Claim, IdempotencyStore, StoredAnswer
from execution.ledger import Holdings, Ledger
from execution.limits import decided_limits, moved, plan_within_limits
from execution.orders import OrderRecord
from execution.protections import ProtectionLimits, fill_measurer
from execution.schemas import TradeRequest, order_fields
from execution.symbols import SymbolList
from execution.trading_state import TradingRefusedError, refusal
from shared.client import ServiceClient
from shared.errors import ServiceUnavailableError, UpstreamClientError
from shared.tracing import current_trace_id
from shared.trading import TradingState

APPROVE_PATH = "/api/v1/approve-trade"


@dataclass(frozen=True)
class TradeAnswer:
    status_code: int
    body: bytes
    replayed: bool = False


def fingerprint(request: TradeRequest) -> str:
    """What makes two requests "the same" for an Idempotency-Key."""
    canonical = f"{request.symbol}\n{request.side}\n{Decimal(repr(request.amount)).normalize()}"
    return hashlib.sha256(canonical.encode()).hexdigest()


def render(order: OrderRecord) -> bytes:
    """The `Order` body, serialised without building the pydantic model (hot path)."""
    return orjson.dumps(order_fields(order))


class TradeService:
    def __init__(
        self,
        *,
        ledger: Ledger,
        keys: IdempotencyStore,
        risk: ServiceClient,
        costs: Costs,
        retry_after: float,
        protections: ProtectionLimits | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_order: Callable[[OrderRecord], None] = lambda order: None,
        symbols: SymbolList | None = None,
    ) -> None:
        self.symbols = symbols
        self.on_order = on_order  # told of every order written (the live events)
        self.protections = protections
        self.clock = clock
        self.ledger = ledger
        self.keys = keys
        self.risk = risk
        self.costs = costs
        self.retry_after = retry_after
        # Orders written, by (side, status), and the USD filled: for /metrics.
        self.orders: Counter[tuple[str, str]] = Counter()
        self.filled_notional = Decimal(0)

    async def trade(self, request: TradeRequest, key: str | None) -> TradeAnswer:
        """Run one trade, or answer a repeated Idempotency-Key from storage."""
        if self.symbols is not None:  # an unlisted symbol is a 422 before Risk is asked
            await self.symbols.check(request.symbol)
        if key is None:
            return await self._run(request, None)
        claimed = await self.keys.claim(key, fingerprint(request))
        if isinstance(claimed, StoredAnswer):
            return TradeAnswer(claimed.status_code, claimed.body.encode(), replayed=True)
        try:
            async with self.keys.held(claimed):
                return await self._run(request, claimed)
        except BaseException:
            # Unanswered (Risk down, a crash, a cancel): free the key so a retry runs afresh.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.keys.release(claimed))
            raise
        finally:
            self.keys.finished(claimed)

    async def _run(self, request: TradeRequest, claim: Claim | None) -> TradeAnswer:
        holdings = await self.ledger.holdings()
        draft = OrderRecord(
            order_id=str(uuid.uuid4()),
            symbol=request.symbol,
            side=request.side,
            status="REJECTED",
            requested_amount=Decimal(repr(request.amount)),
            filled_amount=Decimal(0),
            quantity=Decimal(0),
            price=None,
            fee=Decimal(0),
            reason="",
            risk=None,
            trace_id=current_trace_id(),
            idempotency_key=None if claim is None else claim.key,
            created_at=datetime.now(UTC),
        )
        if not holdings.trading_state.allows(request.side):
            # Nothing reaches Risk while halted (or a buy while reducing).
            await self._refuse(draft, holdings.trading_state, holdings.trading_reason)
        refused: list[tuple[TradingState, str]] = []
        seal = self._sealer(claim, refused)
        try:
            decision = await self._ask_risk(request, holdings, claim, draft.order_id)
        except ServiceUnavailableError as exc:
            reason = f"Risk service unavailable ({exc.detail}); no trade was made (fail safe)"
            self._written(await self.ledger.record(replace(draft, reason=reason)))
            raise ServiceUnavailableError(
                "risk_management",
                reason,
                retry_after=exc.retry_after or self.retry_after,
                extra={"order_id": draft.order_id},
            ) from exc
        except UpstreamClientError as exc:
            reason = f"Risk refused the request ({exc.status_code}): {exc.detail}"
            return await self._answer(replace(draft, reason=reason), seal)
        verdict = _read_decision(decision)
        if isinstance(verdict, str):
            return await self._answer(replace(draft, reason=verdict, risk=decision), seal)
        max_amount, price = verdict
        draft = replace(draft, reason=str(decision.get("reason") or "Approved"), risk=decision)
        side: Side = request.side
        amount = min(draft.requested_amount, max_amount)

        limits = decided_limits(decision) if side == "buy" else None

        def plan(books: Books) -> Fill | Refusal:
            refused.clear()  # planned again if its batch is retried (`execution.pgledger`)
            # The state again, under the lock: a halt set while Risk decided still holds.
            if not books.trading_state.allows(side):
                refused.append((books.trading_state, books.trading_reason))
                return Refusal(reason=refusal(books.trading_state, books.trading_reason))
            if limits is None:
                return plan_fill(side, amount, price, books, self.costs)
            changed = moved(holdings, books)
            return plan_within_limits(
                request.symbol, amount, price, books, limits, self.costs, changed=changed
            )

        measure = None
        if self.protections is not None:
            measure = fill_measurer(
                request.symbol, decision, self.costs, self.protections, self.clock
            )
        order = await self.ledger.fill(draft, plan, seal, measure)
        self._written(order)
        if refused:
            state, why = refused[0]
            raise TradingRefusedError(state, why, order.order_id)
        return TradeAnswer(201, render(order))

    async def _refuse(self, draft: OrderRecord, state: TradingState, why: str) -> NoReturn:
        """Record the attempt as REJECTED and answer 409 naming the state and its reason."""
        self._written(await self.ledger.record(replace(draft, reason=refusal(state, why))))
        raise TradingRefusedError(state, why, draft.order_id)

    async def _ask_risk(
        self, request: TradeRequest, holdings: Holdings, claim: Claim | None, order_id: str
    ) -> dict[str, Any]:
        body = {
            "symbol": request.symbol,
            "side": request.side,
            "amount": request.amount,
            "current_portfolio": {"cash": float(holdings.cash), "positions": holdings.quantities()},
        }
        # A key lets the client retry this POST safely (approve-trade has no side effects).
        key = f"execution-{claim.key if claim else order_id}"
        answer = await self.risk.post_json(APPROVE_PATH, body, idempotency_key=key)
        if not isinstance(answer, dict):
            return {"approved": False, "reason": "Risk answered something other than an object"}
        return answer

    async def _answer(self, order: OrderRecord, seal: Seal | None) -> TradeAnswer:
        self._written(await self.ledger.record(order, seal))
        return TradeAnswer(201, render(order))

    def _written(self, order: OrderRecord) -> None:
        self._count(order)
        self.on_order(order)

    def _count(self, order: OrderRecord) -> None:
        """An order was written: count it (and its fill) once."""
        self.orders[order.side, order.status] += 1
        if order.status == "FILLED":
            self.filled_notional += order.filled_amount

    def _sealer(self, claim: Claim | None, refused: list[tuple[TradingState, str]]) -> Seal | None:
        if claim is None:
            return None

        def body(order: OrderRecord) -> str | None:
            if refused:  # answered 409, not stored: a retry after resuming runs afresh
                return None
            return render(order).decode()

        return Seal(claim, body)


def _read_decision(decision: dict[str, Any]) -> tuple[Decimal, Decimal] | str:
    """(max_amount, price) of an approval, or the reason there is nothing to fill."""
    if decision.get("approved") is not True:
        return str(decision.get("reason") or "Not approved by risk management")
    try:
        max_amount = Decimal(str(decision["max_amount"]))
        price = Decimal(str(decision["price"]))
    except (KeyError, InvalidOperation, TypeError):
        return "Risk approved without a usable max_amount and price; nothing was filled"
    if not (max_amount.is_finite() and price.is_finite()) or max_amount <= 0 or price <= 0:
        return "Risk approved without a usable max_amount and price; nothing was filled"
    return max_amount, price
