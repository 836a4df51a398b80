"""The package all four services share: discovery, the resilient client, tracing, errors."""

from shared.breaker import BreakerState, CircuitBreaker
from shared.client import ServiceClient
from shared.discovery import SERVICES, UnknownServiceError
from shared.errors import (
    CircuitOpenError,
    ConflictError,
    DomainError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
    UpstreamClientError,
    UpstreamError,
)
from shared.retry import RetryPolicy, retry
from shared.settings import CommonSettings
from shared.tracing import current_trace_id

__all__ = [
    "SERVICES",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "CommonSettings",
    "ConflictError",
    "DomainError",
    "InvalidRequestError",
    "NotFoundError",
    "RetryPolicy",
    "ServiceClient",
    "ServiceUnavailableError",
    "UnknownServiceError",
    "UpstreamClientError",
    "UpstreamError",
    "current_trace_id",
    "retry",
]
