"""The console in a real browser (Playwright driving Debian's Chromium) on the live stack.

Chromium is Debian's (`apt-get install chromium`), launched by path: never
`playwright install`, which downloads a browser build. Without it these tests skip
and say why, except under CI (`CI=true`), where `.ci/run` installs it and a skip
would hide a broken console. `CONSOLE_SCREENSHOT=path` (`make screenshot`) saves
the console after the trader's trades, as the README shows it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from shared.auth import Role
from tests.support import keys

pytestmark = pytest.mark.integration
TRADER, ADMIN, VIEWER = Role.TRADER, Role.ADMIN, Role.VIEWER

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
WAIT_MS = 15_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if CHROMIUM is None:
        message = "the console's browser test needs Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def offline_page(browser: Browser, url: str, width: int = 1280) -> Page:
    """A page that reaches `url` and nothing else: an asset from a CDN would fail."""
    context = await browser.new_context(viewport={"width": width, "height": 1000})

    async def only_the_stack(route: Route) -> None:
        if route.request.url.startswith(url):
            await route.continue_()
        else:
            await route.abort()

    await context.route("**/*", only_the_stack)
    return await context.new_page()


async def signed_in(browser: Browser, url: str, role: Role, width: int = 1280) -> Page:
    """A page of the console, signed in with a key of `role`."""
    page = await offline_page(browser, url, width)
    await page.goto(url + "/")
    await page.fill("#key", keys.key(role))
    await page.click("#signin-form button[type=submit]")
    await page.wait_for_selector("#app:not([hidden])", timeout=WAIT_MS)
    await page.wait_for_function(
        "document.getElementById('live').textContent === 'connected'", timeout=WAIT_MS
    )
    return page


async def trade(page: Page, symbol: str, side: str, amount: str) -> None:
    await page.fill("#symbol", symbol)
    await page.select_option("#side", side)
    await page.fill("#amount", amount)
    await page.click("#trade-form button[type=submit]")


async def test_trader_trades_admin_halts_viewer_watches(
    browser: Browser, urls: dict[str, str]
) -> None:
    """Trader: a trade from the form shows its order and the new cash without a reload;
    admin: HALT with a reason reaches the trader's page live and refuses its next trade
    with that reason; viewer: no trade form and no switches."""
    url = urls["execution"]
    trader = await signed_in(browser, url, TRADER)
    await trader.evaluate("window.__sameDocument = true")
    cash_before = await trader.text_content("#cash")
    orders_before = await trader.locator("#orders tr").count()

    await trade(trader, "BTC-USD", "buy", "2500")
    verdict = trader.locator("#verdict")
    await verdict.locator(".FILLED").wait_for(timeout=WAIT_MS)
    assert "Risk: approved" in (await verdict.text_content() or "")
    await trader.wait_for_function(
        f"document.querySelectorAll('#orders tr').length > {orders_before}", timeout=WAIT_MS
    )
    first = await trader.locator("#orders tr").first.text_content()
    assert "BTC-USD" in (first or "")
    assert "FILLED" in (first or "")
    await trader.wait_for_function(
        "cash => document.getElementById('cash').textContent !== cash",
        arg=cash_before,
        timeout=WAIT_MS,
    )
    for symbol, side, amount in (("ETH-USD", "buy", "1500"), ("BTC-USD", "sell", "800")):
        await trade(trader, symbol, side, amount)
        await trader.wait_for_function(
            f"document.querySelector('#orders tr').textContent.includes('{symbol}')"
            f" && document.querySelector('#orders tr').textContent.includes('{side}')",
            timeout=WAIT_MS,
        )
    assert await trader.evaluate("window.__sameDocument") is True
    assert await trader.is_hidden("#state-form")
    screenshot = os.environ.get("CONSOLE_SCREENSHOT")
    if screenshot:
        for rows in ("#positions tr", "#regimes tr"):  # BTC-USD and ETH-USD, refreshed
            await trader.wait_for_function(
                f"document.querySelectorAll('{rows}').length >= 2", timeout=WAIT_MS
            )
        await trader.wait_for_selector("#chart polyline", timeout=WAIT_MS)
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        await trader.screenshot(path=screenshot, full_page=True)

    admin = await signed_in(browser, url, ADMIN)
    try:
        assert await admin.is_visible("#state-form")
        await admin.fill("#state-reason-input", "browser test: exchange incident")
        await admin.click("#state-form button[value=HALTED]")
        await admin.wait_for_function(
            "document.getElementById('state').dataset.state === 'HALTED'", timeout=WAIT_MS
        )
        # The trader's page hears of it over the event stream, with no reload.
        await trader.wait_for_function(
            "document.getElementById('state').dataset.state === 'HALTED'", timeout=WAIT_MS
        )
        assert "exchange incident" in (await trader.text_content("#state-reason") or "")
        await trade(trader, "BTC-USD", "buy", "100")
        await verdict.locator(".REJECTED").wait_for(timeout=WAIT_MS)
        refused = await verdict.text_content() or ""
        assert "409" in refused
        assert "exchange incident" in refused
    finally:
        async with httpx.AsyncClient(headers=keys.headers(ADMIN), timeout=10) as client:
            resume = {"state": "ACTIVE", "reason": "browser test done"}
            await client.put(url + "/api/v1/trading-state", json=resume)
    await trader.wait_for_function(
        "document.getElementById('state').dataset.state === 'ACTIVE'", timeout=WAIT_MS
    )

    viewer = await signed_in(browser, url, VIEWER, width=390)  # a phone's width
    assert await viewer.is_hidden("#trade-panel")
    assert await viewer.is_hidden("#state-form")
    await viewer.wait_for_selector("#orders tr", timeout=WAIT_MS)
    assert "$" in (await viewer.text_content("#cash") or "")
    width = await viewer.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the console scrolls sideways on a phone"


async def test_docs_render_offline(browser: Browser, urls: dict[str, str]) -> None:
    """/docs renders Swagger UI from the service alone and lists the operations."""
    url = urls["execution"]
    page = await offline_page(browser, url)
    await page.goto(url + "/docs")
    await page.wait_for_selector(".opblock", timeout=WAIT_MS)
    text = await page.text_content("body") or ""
    for path in ("/api/v1/trade", "/api/v1/orders", "/api/v1/events", "/api/v1/trading-state"):
        assert path in text, path
