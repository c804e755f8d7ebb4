"""Driving Debian's Chromium with Playwright for Python: launch options, sign-in, axe-core, screenshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.console.server import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "casem/services/case_console/frontend/node_modules/axe-core/axe.min.js"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Assertions wait as long as actions do: on a loaded two-core CI machine a page's fetch can take seconds.
expect.set_options(timeout=15_000)


def launch(playwright: Playwright, executable: str) -> Browser:
    """Chromium with a fresh profile: Playwright refuses --user-data-dir for launch() and gives every launch a
    new temporary profile directory of its own (removed on close), which is what the flag would do here."""
    return playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)


def new_context(browser: Browser, viewport: dict[str, int] = DESKTOP) -> BrowserContext:
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    return context


def sign_in(page: Page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/sign-in")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/cases")


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations of the page as it is now (axe is injected through the
    DevTools protocol, which the page's Content-Security-Policy does not govern)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text() + "\n;undefined")
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target)}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def check_page(page: Page, name: str, folder: Path) -> None:
    """axe on the page, then screenshots at 1440×900 and 390×844 (restoring the viewport after)."""
    bad = axe_violations(page)
    assert not bad, f"{name}: {json.dumps(bad, indent=1)}"
    before = page.viewport_size or DESKTOP
    for label, size in (("1440x900", DESKTOP), ("390x844", PHONE)):
        page.set_viewport_size(size)  # type: ignore[arg-type]
        page.wait_for_timeout(150)
        if label == "390x844":
            bad = axe_violations(page)
            assert not bad, f"{name} at phone width: {json.dumps(bad, indent=1)}"
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=False)
    page.set_viewport_size(before)  # type: ignore[arg-type]
