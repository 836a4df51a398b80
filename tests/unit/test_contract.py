"""The stubs' contract check: it accepts what the real services document, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.contract import ContractError, check_answer, check_request
from tests.unit.execution.stubs import APPROVE, approve_all

ASK = {
    "symbol": "BTC-USD",
    "side": "buy",
    "amount": 100.0,
    "current_portfolio": {"cash": 1000.0, "positions": {}},
}


def risk_answer(status: int, body: Any, media: str = "application/json") -> None:
    check_answer("risk_management", "POST", APPROVE, status, media, body)


def test_the_stubs_default_approval_is_a_documented_risk_answer() -> None:
    """approve_all answers what Risk's schema describes, to a request Risk accepts."""
    check_request("risk_management", "POST", APPROVE, ASK)
    risk_answer(200, approve_all(ASK))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"max_amount": None}, "max_amount: None is not of type 'number'"),
        ({"approved": "yes"}, "approved: 'yes' is not of type 'boolean'"),
        ({"fill_now": True}, "Additional properties are not allowed ('fill_now' was unexpected)"),
    ],
)
def test_an_answer_off_risks_schema_is_refused(change: dict[str, Any], complaint: str) -> None:
    """A wrong type, or a member Risk never sends, is a contract violation naming the field."""
    with pytest.raises(ContractError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        risk_answer(200, approve_all(ASK) | change)


def test_a_missing_member_is_refused() -> None:
    """An answer without a member Risk always sends (here `price`) is a violation."""
    answer = approve_all(ASK)
    del answer["price"]
    with pytest.raises(ContractError, match="'price' is a required property"):
        risk_answer(200, answer)


def test_an_undocumented_status_or_media_type_is_refused() -> None:
    """Risk never answers 404, and answers 422 as problem+json, not plain JSON."""
    with pytest.raises(ContractError, match="never answers 404"):
        risk_answer(404, {"detail": "unknown"})
    with pytest.raises(ContractError, match="not application/json"):
        risk_answer(422, {"detail": "bad"})


def test_a_request_risk_would_refuse_is_refused() -> None:
    """Execution must not send what Risk rejects: a negative amount breaks the request schema."""
    with pytest.raises(ContractError, match="request to POST"):
        check_request("risk_management", "POST", APPROVE, ASK | {"amount": -1})
