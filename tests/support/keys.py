"""The API keys every test uses: one of each role, in the environment of every test.

`tests/conftest.py` puts `API_KEYS` and `SERVICE_KEY` in the environment before any
test runs, so `Settings()` in process and every service started as a process read the
same keys. Test clients send `headers()` (the admin key) unless a test asks for a role.
Run against a stack started elsewhere (`STACK_*_URL`), set `API_KEYS` (plain `role:key`
entries) and `SERVICE_KEY` to its keys first; they are used instead of fresh ones.
"""

from __future__ import annotations

import os
import secrets

from shared.auth import API_KEY_HEADER, Role, key_digest


def _fresh() -> dict[Role, list[str]]:
    # Fresh per run, so a test can search logs and bodies for them without false hits.
    return {
        Role.ADMIN: [f"admin-{secrets.token_hex(16)}"],
        Role.TRADER: [f"trader-{secrets.token_hex(16)}", f"trader2-{secrets.token_hex(16)}"],
        Role.VIEWER: [f"viewer-{secrets.token_hex(16)}"],
        Role.SERVICE: [f"service-{secrets.token_hex(16)}"],
    }


def _given(text: str) -> dict[Role, list[str]]:
    keys: dict[Role, list[str]] = {role: [] for role in Role}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        role, _, key = entry.partition(":")
        if not key.startswith("sha256:"):
            keys[Role(role)].append(key)
    return keys


KEYS: dict[Role, list[str]] = (
    _given(os.environ["API_KEYS"]) if os.environ.get("API_KEYS") else _fresh()
)
API_KEYS = ",".join(f"{role}:{key}" for role, keys in KEYS.items() for key in keys)
SERVICE_KEY = os.environ.get("SERVICE_KEY") or KEYS[Role.SERVICE][0]


def key(role: Role = Role.ADMIN, index: int = 0) -> str:
    """A plain key of `role` (the second trader key is `key(Role.TRADER, 1)`)."""
    return KEYS[role][index]


def headers(role: Role = Role.ADMIN, index: int = 0) -> dict[str, str]:
    """The `X-API-Key` header of a key of `role` (the admin key by default)."""
    return {API_KEY_HEADER: key(role, index)}


def key_id(role: Role = Role.ADMIN, index: int = 0) -> str:
    """The non-secret id the services log for that key."""
    return key_digest(key(role, index))[:8]


def environment() -> dict[str, str]:
    """`API_KEYS` and `SERVICE_KEY` as every service of the tests gets them."""
    return {"API_KEYS": API_KEYS, "SERVICE_KEY": SERVICE_KEY}


def all_values() -> list[str]:
    """Every key value, to check that none leaks into a log, a body or `/health`."""
    return [k for keys in KEYS.values() for k in keys]
