"""The operator console: the page at `/`, its assets, and the two reads only it needs.

The page is plain HTML, CSS and JavaScript from this package (no CDN, no build step); it
asks for an API key and reads everything else through the API with it.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from execution.deps import RegimeClientDep
from shared.auth import AnyKeyDep, ViewerDep
from shared.errors import DomainError, InvalidRequestError
from shared.market.models import SYMBOL_PATTERN

ASSETS = Path(__file__).resolve().parent / "console"
MAX_SYMBOLS = 20
_SYMBOL = re.compile(SYMBOL_PATTERN)

page_router = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/api/v1", tags=["console"])


def console_assets() -> StaticFiles:
    """The console's CSS and JavaScript, mounted at `/console`."""
    return StaticFiles(directory=ASSETS)


@page_router.get("/", response_class=HTMLResponse)
async def console_page() -> HTMLResponse:
    """The console's page (its data needs an API key, asked for by the page)."""
    return HTMLResponse(
        (ASSETS / "index.html").read_bytes(),
        headers={"Cache-Control": "no-cache", "X-Frame-Options": "DENY"},
    )


class Session(BaseModel):
    """Who the presented API key is: the console shows what the role may do."""

    role: str
    key_id: str | None


@router.get("/session")
async def session(caller: AnyKeyDep) -> Session:
    """The role of the caller's API key and its non-secret id (401 for an unknown key)."""
    return Session(role=caller.role, key_id=caller.key_id)


class RegimeList(BaseModel):
    """The regime service's answer per symbol, or why there is none."""

    regimes: list[dict[str, Any]]


@router.get("/regimes", responses={422: {"description": "A symbol that is not BASE-QUOTE"}})
async def regimes(
    regime: RegimeClientDep,
    caller: ViewerDep,
    symbols: Annotated[str, Query(description="Comma-separated symbols, at most 20")],
) -> RegimeList:
    """The market regime of each symbol with its indicators and confidence, as the regime
    service classifies it now (for the console's regime panel)."""
    wanted = list(dict.fromkeys(s.strip() for s in symbols.split(",") if s.strip()))
    bad = [s for s in wanted if not _SYMBOL.match(s)]
    if bad or not wanted or len(wanted) > MAX_SYMBOLS:
        raise InvalidRequestError(
            f"symbols: 1 to {MAX_SYMBOLS} BASE-QUOTE product ids" + (f", not {bad}" if bad else "")
        )

    async def one(symbol: str) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = await regime.get_json(f"/api/v1/regime/{symbol}")
        except DomainError as exc:
            return {"symbol": symbol, "error": exc.detail}
        return answer

    return RegimeList(regimes=list(await asyncio.gather(*(one(s) for s in wanted))))
