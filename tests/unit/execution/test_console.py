"""The console's page and assets: served by Execution, nothing from another origin."""

from __future__ import annotations

import re

import httpx

from shared.auth import Role
from tests.support import keys
from tests.unit.execution.conftest import StartApp


async def test_page_and_assets_are_local(client: httpx.AsyncClient) -> None:
    """`/` is the console's HTML; every script and stylesheet it names is served here."""
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert "/console/console.js" in urls
    assert "/console/console.css" in urls
    for url in urls:
        assert not url.startswith(("http:", "https:", "//")), url
        if not url.startswith("data:"):  # the empty favicon, inline
            assert (await client.get(url)).status_code == 200, url
    script = (await client.get("/console/console.js")).text
    assert "X-API-Key" in script
    assert not re.search(r"https?://", script)


async def test_page_is_not_in_the_api_document(client: httpx.AsyncClient) -> None:
    """The page is not an API operation; the console's reads are."""
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert {"/api/v1/events", "/api/v1/regimes", "/api/v1/session"} <= set(paths)


async def test_regimes_needs_real_symbols(client: httpx.AsyncClient) -> None:
    """A symbol list that is empty, too long or malformed is a 422."""
    for symbols in ("", "btc", ",".join(f"A{i}-USD" for i in range(21))):
        response = await client.get("/api/v1/regimes", params={"symbols": symbols})
        assert response.status_code == 422, symbols


async def test_regimes_says_why_one_is_missing(start: StartApp, dead_url: str) -> None:
    """With the regime service unreachable each symbol carries the reason, not a 500."""
    async with start(regime_url=dead_url) as client:
        response = await client.get("/api/v1/regimes", params={"symbols": "BTC-USD"})
    assert response.status_code == 200
    (only,) = response.json()["regimes"]
    assert only["symbol"] == "BTC-USD"
    assert only["error"]


async def test_session_names_the_keys_role_and_id(client: httpx.AsyncClient) -> None:
    """`/api/v1/session` tells the console the presented key's role and id; no key: 401."""
    for role in (Role.VIEWER, Role.TRADER, Role.ADMIN):
        answer = await client.get("/api/v1/session", headers=keys.headers(role))
        assert answer.json() == {"role": role, "key_id": keys.key_id(role)}
    assert (await client.get("/api/v1/session", headers={"X-API-Key": ""})).status_code == 401
    assert (await client.get("/", headers={"X-API-Key": ""})).status_code == 200
