"""Fixtures of the console suites: a live case-console (SQLite, and PostgreSQL when it runs) and Chromium."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.console.browser import launch, new_context
from tests.console.server import ConsoleServer
from tests.support.databases import tenant_endpoints
from tests.support.live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    workdir: Path = tmp_path_factory.mktemp(f"console-{request.param}")
    with tenant_endpoints(request.param, workdir) as endpoints:
        server = ConsoleServer(endpoints, workdir).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def case_api(console: ConsoleServer) -> Iterator[LiveServer]:
    """The public API over the console's databases: what the Paging and On-Call APIs report after a console change."""
    server = LiveServer(console.endpoints).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, installed by the project's own script when it is missing."""
    if not Path(CHROMIUM).exists():
        subprocess.run(["bash", str(ROOT / "scripts/tools/install-chromium.sh")], check=True)
    found = shutil.which("chromium") or CHROMIUM
    if not Path(found).exists():
        pytest.fail("chromium is not installed and scripts/tools/install-chromium.sh could not install it")
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One Chromium per test module (a new context per test keeps cookies apart)."""
    with sync_playwright() as playwright:
        found = launch(playwright, chromium_path)
        try:
            yield found
        finally:
            found.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    found = context.new_page()
    yield found
    context.close()
