"""`/docs` needs no internet: its page and assets come from the service itself."""

from __future__ import annotations

import re

from tests.unit.shared.apps import app_with, client_of


async def test_docs_page_loads_only_local_assets() -> None:
    """Every script and stylesheet of /docs is served by the app, none from a CDN."""
    async with client_of(app_with()) as client:
        page = (await client.get("/docs")).text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page)
        assert len(urls) >= 3, page
        assert not [u for u in urls if u.startswith(("http:", "https:", "//"))]
        for url in urls:
            assert (await client.get(url)).status_code == 200, url
        assert "SwaggerUIBundle" in page
        assert "/openapi.json" in page
        bundle = await client.get("/static/swagger-ui/swagger-ui-bundle.js")
        assert "javascript" in bundle.headers["content-type"]
        assert len(bundle.content) > 1_000_000
        assert (await client.get("/redoc")).status_code == 404
