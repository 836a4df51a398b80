"""The error tree every service raises and every handler understands.

    DomainError                    a problem this system can name (status, title, type)
    ├── UnauthorizedError          401: no API key, or one that is not configured
    ├── ForbiddenError             403: the key's role does not allow this
    ├── NotFoundError              404: the thing asked for does not exist
    ├── InvalidRequestError        422: input the schemas could not catch
    ├── ConflictError              409: the request clashes with stored state
    └── UpstreamError              a call to another service went wrong
        ├── ServiceUnavailableError  503: unreachable, timed out, 5xx, breaker open
        │   └── CircuitOpenError       the breaker refused the call without trying
        └── UpstreamClientError      the other service answered 4xx; never trips a breaker

`shared.problems` turns each into RFC 9457 problem+json with the trace ID.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error that maps to an HTTP problem."""

    status: int = 500
    title: str = "Internal Server Error"
    type: str = "about:blank"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    @property
    def headers(self) -> dict[str, str]:
        """Response headers the problem should carry (none by default)."""
        return {}


class UnauthorizedError(DomainError):
    status = 401
    title = "Unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        # RFC 9110: a 401 names how to authenticate. There is no registered scheme for
        # an API key header; this names the header a client must send.
        return {"WWW-Authenticate": 'ApiKey realm="tradestack", header="X-API-Key"'}


class ForbiddenError(DomainError):
    status = 403
    title = "Forbidden"


class NotFoundError(DomainError):
    status = 404
    title = "Not Found"


class InvalidRequestError(DomainError):
    status = 422
    title = "Unprocessable Content"


class ConflictError(DomainError):
    status = 409
    title = "Conflict"


class UpstreamError(DomainError):
    """A call to another service (or the exchange) did not give a usable answer."""

    def __init__(self, service: str, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail, extra={"service": service, **(extra or {})})
        self.service = service


class ServiceUnavailableError(UpstreamError):
    """The target could not be reached, timed out, answered 5xx, or its breaker is open."""

    status = 503
    title = "Service Unavailable"

    def __init__(
        self,
        service: str,
        detail: str,
        *,
        retry_after: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(service, detail, extra=extra)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after)))}


class CircuitOpenError(ServiceUnavailableError):
    """The breaker is open: the call was refused without touching the network."""


class UpstreamClientError(UpstreamError):
    """The target answered 4xx: our request was wrong, the target is healthy."""

    status = 502
    title = "Bad Gateway"

    def __init__(self, service: str, status_code: int, detail: str, body: Any = None) -> None:
        super().__init__(service, detail, extra={"upstream_status": status_code})
        self.status_code = status_code
        self.body = body
