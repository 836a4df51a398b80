"""Stubs held to the contract: what a stub of one of our services answers (and is asked)
is checked against that service's real OpenAPI document, built in-process from its app.

A change to Risk's answer schema therefore breaks the Execution tests whose Risk stub
still answers the old way. Checking is stricter than the document in one way: an
object may not carry members the schema does not name (the real service never sends
them, so a caller must not come to rely on them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jsonschema
from fastapi import FastAPI


def _risk() -> FastAPI:
    from risk_management.app import create_app
    from risk_management.config import Settings

    return create_app(Settings())


def _gateway() -> FastAPI:
    from market_data_gateway.app import create_app
    from market_data_gateway.config import Settings

    return create_app(Settings(market_data_source="simulated", redis_url=None))


def _regime() -> FastAPI:
    from regime_detection.app import create_app
    from regime_detection.config import Settings

    return create_app(Settings(market_data_source="simulated"))


APPS: dict[str, Callable[[], FastAPI]] = {
    "risk_management": _risk,
    "market_data": _gateway,
    "regime_detection": _regime,
}


class ContractError(AssertionError):
    """A stub answered (or was asked) something its real service's schema does not allow."""


@functools.cache
def openapi(service: str) -> dict[str, Any]:
    """The OpenAPI document the real `service` serves."""
    document: dict[str, Any] = _closed(APPS[service]().openapi())
    return document


def _closed(node: Any) -> Any:
    """The document with every object schema that names its members closed to others."""
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    closed = {key: _closed(value) for key, value in node.items()}
    if "properties" in closed and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def _check(service: str, schema: dict[str, Any], body: Any, what: str) -> None:
    doc = openapi(service)
    validator = jsonschema.Draft202012Validator({**schema, "components": doc["components"]})
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        found = "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors
        )
        raise ContractError(f"{service} {what} breaks its OpenAPI schema: {found}")


def _operation(service: str, method: str, path: str) -> dict[str, Any]:
    operations = openapi(service)["paths"].get(path)
    if operations is None or method.lower() not in operations:
        raise ContractError(f"{service} has no {method.upper()} {path}")
    operation: dict[str, Any] = operations[method.lower()]
    return operation


def check_request(service: str, method: str, path: str, body: Any) -> None:
    """Raise ContractError unless `body` is a request `service` documents for the route."""
    content = _operation(service, method, path)["requestBody"]["content"]["application/json"]
    _check(service, content["schema"], body, f"request to {method.upper()} {path}")


def check_answer(
    service: str, method: str, path: str, status: int, media_type: str, body: Any
) -> None:
    """Raise ContractError unless `service` documents this answer for the route.

    `path` is the route's template (`/api/v1/price/{symbol}`), as in the document.
    """
    responses = _operation(service, method, path)["responses"]
    documented = responses.get(str(status)) or responses.get("default")
    if documented is None:
        raise ContractError(
            f"{service} never answers {status} to {method.upper()} {path} "
            f"(documented: {', '.join(sorted(responses))})"
        )
    content = documented.get("content", {})
    if media_type not in content:
        raise ContractError(
            f"{service} answers {status} to {method.upper()} {path} as "
            f"{', '.join(content) or 'no body'}, not {media_type}"
        )
    what = f"answer {status} to {method.upper()} {path}"
    _check(service, content[media_type].get("schema", {}), body, what)
