"""`/docs` from assets in the repository: Swagger UI renders with no internet.

FastAPI's own `/docs` page loads Swagger UI from a CDN, so it is blank offline. The
bundle and stylesheet here are `swagger-ui-dist` 5.35.0 from npm (Apache-2.0, its
LICENSE beside them), served by each service under `/static/swagger-ui/`. ReDoc
(`/redoc`), which also came from a CDN, is not served.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI = Path(__file__).resolve().parent / "static" / "swagger-ui"
ASSETS = "/static/swagger-ui"


def install_docs(app: FastAPI) -> None:
    """Serve `/docs` (Swagger UI over `/openapi.json`) from the vendored assets."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon-32x32.png",
        )
