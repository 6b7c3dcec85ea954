"""One Chromium for the browser tests, and three tabs (desktop, phone, small phone) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.browser.shopper import VIEWPORTS, launch


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """The system Chromium, headless, with a fresh profile.

    Package-scoped: Playwright's sync API keeps an event loop marked running in the main
    thread while it is open, and code run by later tests (asyncio.run) would refuse to start.
    """
    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        yield context
        context.close()


@pytest.fixture
def tabs(browser: BrowserContext) -> Iterator[dict[str, Page]]:
    """A fresh tab per viewport size; closed after the test."""
    pages = {size: browser.new_page() for size in VIEWPORTS}
    yield pages
    for page in pages.values():
        page.close()
