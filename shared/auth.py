"""API keys and roles: the one check every protected route goes through.

`API_KEYS` is a comma-separated list of `role:key` or `role:sha256:<64 hex digits>`
entries (several per role, so a key can be rotated without downtime). A client sends
its key in `X-API-Key`. No key, or one not configured: 401 with `WWW-Authenticate`; a
known key whose role does not grant what the route needs: 403.

A route declares what it needs with one of the aliases below (`caller: TraderDep`) or
`Depends(KeyCheck(Role.X))`. What a key's role grants:

    viewer   reads (orders, portfolio, trading state, prices, candles, regimes)
    trader   viewer + trading
    admin    everything
    service  what one service needs of another (approve-trade, market data, regimes)

Keys are compared in constant time against the SHA-256 digests of the configured keys
and never logged: a log line names the key's role and its id, the first 8 hex digits of
its SHA-256 (which is also the start of its `sha256:` form, so an operator can tell
which entry it was, and which says nothing of the key itself).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.security.base import SecurityBase

from shared.errors import ForbiddenError, UnauthorizedError

API_KEY_HEADER = "X-API-Key"
# The request's `Caller`, for the access log line (see `shared.tracing`).
CALLER_SCOPE_KEY = "tradestack.caller"
# A plain key shorter than this is a password someone typed, not a generated key.
MIN_KEY_LENGTH = 16
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")

log = logging.getLogger(__name__)


class Role(StrEnum):
    """The roles an API key can have."""

    VIEWER = "viewer"
    TRADER = "trader"
    ADMIN = "admin"
    SERVICE = "service"


# What each role may do, as the roles whose routes it may call.
GRANTS: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset({Role.VIEWER}),
    Role.TRADER: frozenset({Role.VIEWER, Role.TRADER}),
    Role.ADMIN: frozenset(Role),
    Role.SERVICE: frozenset({Role.SERVICE}),
}


class KeyConfigError(ValueError):
    """`API_KEYS` cannot be read; the message never contains a key."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's role and its non-secret id."""

    role: Role
    key_id: str
    # The key's SHA-256, for what belongs to one key (its Idempotency-Keys); not logged.
    digest: str = field(repr=False, default="")

    def may(self, needed: frozenset[Role]) -> bool:
        """Whether this caller's role grants any of the `needed` roles."""
        return not GRANTS[self.role].isdisjoint(needed)


def key_digest(key: str) -> str:
    """The SHA-256 of a key, as the hex digits a `role:sha256:<hex>` entry holds."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """The configured keys, as (role, SHA-256 digest) pairs; no plain key is kept."""

    def __init__(self, entries: list[tuple[Role, bytes]]) -> None:
        self._entries = entries

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Read `API_KEYS`; raise `KeyConfigError` (naming the entry's place) if invalid."""
        entries: list[tuple[Role, bytes]] = []
        for place, raw in enumerate(text.split(","), start=1):
            entry = raw.strip()
            if not entry:
                continue
            role_name, sep, rest = entry.partition(":")
            if not sep or role_name.strip() not in Role.__members__.values():
                known = ", ".join(Role)
                raise KeyConfigError(
                    f"API_KEYS entry {place}: must be role:key with a role of {known}"
                )
            role = Role(role_name.strip())
            if rest.startswith("sha256:"):
                digest = rest.removeprefix("sha256:").strip().lower()
                if not _DIGEST.fullmatch(digest):
                    raise KeyConfigError(
                        f"API_KEYS entry {place}: sha256: must be followed by 64 hex digits"
                    )
            else:
                key = rest.strip()
                if len(key) < MIN_KEY_LENGTH or not _VISIBLE_ASCII.fullmatch(key):
                    raise KeyConfigError(
                        f"API_KEYS entry {place}: a {role} key must be at least "
                        f"{MIN_KEY_LENGTH} visible ASCII characters"
                    )
                digest = key_digest(key)
            if any(hmac.compare_digest(bytes.fromhex(digest), d) for _, d in entries):
                raise KeyConfigError(f"API_KEYS entry {place}: the same key is listed twice")
            entries.append((role, bytes.fromhex(digest)))
        return cls(entries)

    def __len__(self) -> int:
        return len(self._entries)

    def roles(self) -> set[Role]:
        """The roles that have at least one key."""
        return {role for role, _ in self._entries}

    def identify(self, key: str) -> Caller | None:
        """The caller a presented key belongs to, or None; constant time in the key."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
        found: Role | None = None
        # Every entry is compared, with no early exit: the time taken tells nothing of
        # which entry (if any) matched, nor how much of it.
        for role, candidate in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = role
        return None if found is None else Caller(found, digest.hex()[:8], digest.hex())


def load_keyring(api_keys: str) -> KeyRing:
    """The keys a service accepts; with none configured it refuses to start (fail closed).

    A trading service that answered everyone because a variable was missing would be
    open by accident; `make run` and compose always generate keys, so no one has to.
    """
    ring = KeyRing.parse(api_keys)
    if not ring:
        raise KeyConfigError(
            "API_KEYS is not set: this service does not run without API keys. "
            "`make run` and `docker compose up` generate them; for one service, "
            "`set -a; . ./.run/keys.env; set +a` first (see the README, Access control)."
        )
    return ring


class KeyCheck(SecurityBase):
    """The dependency a route declares: a key whose role grants one of `roles`.

    It answers 401 (no or unknown key) or 403 (the role does not grant it), and puts
    the caller on the request for the access log.

    It is a FastAPI security scheme, as `APIKeyHeader` is, so the OpenAPI document names
    the header on every route that declares it; unlike a dependency taking
    `Security(APIKeyHeader(...))`, it reads the header itself. That is one pass of
    FastAPI's dependency solver per request instead of two: the second cost about 9% of
    a cached price's CPU and 3% of a trade's.
    """

    def __init__(self, *roles: Role) -> None:
        self.model = APIKey(
            **{"in": APIKeyIn.header},
            name=API_KEY_HEADER,
            description="An API key from API_KEYS; its role decides what it may call.",
        )
        self.scheme_name = "APIKeyHeader"
        self.needed = frozenset(roles)
        self.wanted = " or ".join(roles)

    async def __call__(self, request: Request) -> Caller:
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            raise UnauthorizedError(
                f"This endpoint needs an API key in the {API_KEY_HEADER} header"
            )
        ring: KeyRing = request.app.state.keyring
        caller = ring.identify(key)
        if caller is None:
            log.warning("refused an unknown API key on %s %s", request.method, request.url.path)
            raise UnauthorizedError("The API key is not valid")
        request.scope[CALLER_SCOPE_KEY] = caller
        if not caller.may(self.needed):
            log.warning(
                "refused %s key %s on %s %s: needs %s",
                caller.role,
                caller.key_id,
                request.method,
                request.url.path,
                self.wanted,
            )
            raise ForbiddenError(f"A {caller.role} key may not do this; it needs {self.wanted}")
        return caller


ViewerDep = Annotated[Caller, Depends(KeyCheck(Role.VIEWER))]
TraderDep = Annotated[Caller, Depends(KeyCheck(Role.TRADER))]
AdminDep = Annotated[Caller, Depends(KeyCheck(Role.ADMIN))]
ServiceDep = Annotated[Caller, Depends(KeyCheck(Role.SERVICE))]
# Market data and regimes: people read them, and so do the other services.
ReaderDep = Annotated[Caller, Depends(KeyCheck(Role.VIEWER, Role.SERVICE))]
# Any configured key, whatever its role (who am I?).
AnyKeyDep = Annotated[Caller, Depends(KeyCheck(*Role))]
