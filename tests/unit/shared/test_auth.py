"""API keys and roles: parsing API_KEYS, the one dependency, 401 vs 403, what is logged."""

from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter, FastAPI

from shared.auth import (
    GRANTS,
    AdminDep,
    KeyConfigError,
    KeyRing,
    ReaderDep,
    Role,
    ServiceDep,
    TraderDep,
    ViewerDep,
    key_digest,
    load_keyring,
)
from tests.support import keys
from tests.unit.shared.apps import app_with, client_of

ADMIN, TRADER, VIEWER, SERVICE = "a" * 20, "t" * 20, "v" * 20, "s" * 20
HASHED = "h" * 24


def routes() -> APIRouter:
    router = APIRouter()

    @router.get("/read")
    async def read(caller: ViewerDep) -> dict[str, str]:
        return {"role": caller.role}

    @router.post("/trade")
    async def trade(caller: TraderDep) -> dict[str, str]:
        return {"role": caller.role}

    @router.put("/admin")
    async def admin(caller: AdminDep) -> dict[str, str]:
        return {"role": caller.role}

    @router.post("/service")
    async def service(caller: ServiceDep) -> dict[str, str]:
        return {"role": caller.role}

    @router.get("/market")
    async def market(caller: ReaderDep) -> dict[str, str]:
        return {"role": caller.role}

    return router


API_KEYS = (
    f"admin:{ADMIN}, trader:{TRADER},viewer:{VIEWER},service:{SERVICE},"
    f"trader:sha256:{key_digest(HASHED).upper()}"
)


def app() -> FastAPI:
    return app_with(routes(), api_keys=API_KEYS)


def test_entries_of_every_form_are_read() -> None:
    """Plain and sha256: entries, spaces around them, several keys per role."""
    ring = KeyRing.parse(API_KEYS)
    assert len(ring) == 5
    assert ring.roles() == set(Role)
    hashed = ring.identify(HASHED)
    assert hashed is not None
    assert hashed.role is Role.TRADER
    assert hashed.key_id == key_digest(HASHED)[:8]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("boss:" + "k" * 20, "entry 1: must be role:key"),
        ("admin" + "k" * 20, "entry 1: must be role:key"),
        ("viewer:" + "k" * 20 + ",admin:short", "entry 2: a admin key must be at least 16"),
        ("admin:sha256:abc", "entry 1: sha256: must be followed by 64 hex digits"),
        (f"admin:{ADMIN},viewer:{ADMIN}", "entry 2: the same key is listed twice"),
        (f"admin:{ADMIN},viewer:sha256:{key_digest(ADMIN)}", "entry 2: the same key"),
    ],
)
def test_a_bad_entry_is_named_by_place_never_by_key(text: str, says: str) -> None:
    """A bad entry fails with its place and what is wrong, never the key itself."""
    with pytest.raises(KeyConfigError) as caught:
        KeyRing.parse(text)
    assert says in str(caught.value)
    assert ADMIN not in str(caught.value)
    assert "k" * 20 not in str(caught.value)


@pytest.mark.parametrize("text", ["", "  ", ",,"])
def test_no_keys_means_the_service_refuses_to_start(text: str) -> None:
    """Fail closed: an app without API_KEYS is not built at all."""
    with pytest.raises(KeyConfigError, match="API_KEYS is not set"):
        load_keyring(text)
    with pytest.raises(KeyConfigError, match="API_KEYS is not set"):
        app_with(routes(), api_keys=text)


def test_grants_follow_the_roles() -> None:
    """Admin may do all; trader reads and trades; viewer reads; service only service calls."""
    assert GRANTS[Role.ADMIN] == set(Role)
    assert GRANTS[Role.TRADER] == {Role.VIEWER, Role.TRADER}
    assert GRANTS[Role.VIEWER] == {Role.VIEWER}
    assert GRANTS[Role.SERVICE] == {Role.SERVICE}


async def test_no_key_is_a_401_problem_with_www_authenticate() -> None:
    """Missing key: 401 problem+json naming the header, with WWW-Authenticate."""
    async with client_of(app(), headers={}) as client:
        response = await client.get("/read")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "X-API-Key" in response.headers["www-authenticate"]
    assert "X-API-Key" in response.json()["detail"]


async def test_an_unknown_key_is_a_401(caplog: pytest.LogCaptureFixture) -> None:
    """A key not configured: 401, and neither the body nor the log holds it."""
    wrong = "w" * 30
    with caplog.at_level(logging.INFO):
        async with client_of(app(), headers={"X-API-Key": wrong}) as client:
            response = await client.get("/read")
    assert response.status_code == 401
    assert "www-authenticate" in response.headers
    assert wrong not in response.text
    assert wrong not in caplog.text
    assert "unknown API key" in caplog.text


@pytest.mark.parametrize(
    ("key", "method", "path", "status"),
    [
        (VIEWER, "GET", "/read", 200),
        (VIEWER, "POST", "/trade", 403),
        (VIEWER, "PUT", "/admin", 403),
        (VIEWER, "GET", "/market", 200),
        (TRADER, "GET", "/read", 200),
        (TRADER, "POST", "/trade", 200),
        (HASHED, "POST", "/trade", 200),
        (TRADER, "PUT", "/admin", 403),
        (TRADER, "POST", "/service", 403),
        (ADMIN, "PUT", "/admin", 200),
        (ADMIN, "POST", "/service", 200),
        (ADMIN, "POST", "/trade", 200),
        (SERVICE, "POST", "/service", 200),
        (SERVICE, "GET", "/market", 200),
        (SERVICE, "GET", "/read", 403),
        (SERVICE, "POST", "/trade", 403),
    ],
)
async def test_each_role_may_do_what_it_grants(
    key: str, method: str, path: str, status: int
) -> None:
    """A known key is let through where its role grants it, else 403."""
    async with client_of(app(), headers={"X-API-Key": key}) as client:
        response = await client.request(method, path)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert "www-authenticate" not in response.headers


async def test_logs_name_role_and_key_id_never_the_key(caplog: pytest.LogCaptureFixture) -> None:
    """The access line and a refusal name the role and key id; the key is nowhere."""
    with caplog.at_level(logging.INFO):
        async with client_of(app(), headers={"X-API-Key": VIEWER}) as client:
            allowed = await client.get("/read")
            refused = await client.post("/trade")
    key_id = key_digest(VIEWER)[:8]
    assert (allowed.status_code, refused.status_code) == (200, 403)
    assert "GET /read 200" in caplog.text
    assert f"viewer:{key_id}" in caplog.text
    assert f"refused viewer key {key_id} on POST /trade" in caplog.text
    assert VIEWER not in caplog.text
    assert VIEWER not in refused.text


async def test_health_docs_and_openapi_need_no_key() -> None:
    """/health, /metrics, /docs and /openapi.json are open; the document names the header."""
    async with client_of(app(), headers={}) as client:
        assert (await client.get("/metrics")).status_code == 200
        health = await client.get("/health")
        docs = await client.get("/docs")
        document = await client.get("/openapi.json")
    assert (health.status_code, docs.status_code, document.status_code) == (200, 200, 200)
    schemes = document.json()["components"]["securitySchemes"]
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key from API_KEYS; its role decides what it may call.",
    }
    # The scheme is named on every route that checks a key, and on no open one.
    paths = document.json()["paths"]
    assert paths["/market"]["get"]["security"] == [{"APIKeyHeader": []}]
    assert paths["/trade"]["post"]["security"] == [{"APIKeyHeader": []}]
    assert "security" not in paths["/health"]["get"]


async def test_the_test_helpers_send_the_admin_key() -> None:
    """`client_of` sends the tests' admin key by default, so existing tests pass unchanged."""
    async with client_of(app_with(routes())) as client:
        response = await client.put("/admin")
    assert response.status_code == 200
    assert keys.headers()["X-API-Key"] == keys.key(Role.ADMIN)
