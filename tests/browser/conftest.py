"""Browser tests of the clinic's page and its chat widget (web/).

One headless Chromium (Debian's, /usr/bin/chromium) is shared by the whole session; each test gets
a fresh context (its own sessionStorage). Tests that need real answers use the `stack` fixture
(tests/conftest.py: action server, Rasa server and this web server on free ports); tests of the
widget's own behaviour (fallbacks, escalation rendering) run the web app in-process against a stub
of Rasa's REST channel, so they need no trained model.
"""
from typing import Callable, Dict, List

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from chatpage import DESKTOP, Served, StubRasa
from web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page plus what it did that it should not: dialogs (alert...), script errors, CSP reports."""

    def __init__(self, page: Page):
        self.page = page
        self.dialogs: List[str] = []
        self.errors: List[str] = []
        self.csp: List[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)

    def assert_clean(self) -> None:
        assert not self.dialogs, f"dialogs opened: {self.dialogs}"
        assert not self.errors, f"script errors: {self.errors}"
        assert not self.csp, f"CSP violations: {self.csp}"


@pytest.fixture
def new_page(browser) -> Callable[..., Page]:
    """new_page(viewport=DESKTOP, **context_options) -> a Page in a fresh context, checked at the
    end of the test for dialogs, script errors and CSP violations."""
    opened: List[tuple] = []

    def make(viewport: Dict[str, int] = DESKTOP, **options) -> Page:
        context = browser.new_context(viewport=viewport, **options)
        context.set_default_timeout(10_000)
        page = context.new_page()
        watched = Watched(page)
        page.watched = watched
        opened.append((context, watched))
        return page

    yield make
    for context, watched in opened:
        context.close()
    for _, watched in opened:
        watched.assert_clean()


@pytest.fixture
def stub_rasa():
    stub = StubRasa()
    yield stub
    stub.stop()


@pytest.fixture
def site_for() -> Callable[..., str]:
    """site_for(rasa_url, timeout_ms=...) -> the URL of the clinic's page served in-process."""
    served: List[Served] = []

    def make(rasa_url: str, **options) -> str:
        served.append(Served(create_app(rasa_url, **options)))
        return served[-1].url + "/"

    yield make
    for server in served:
        server.stop()


@pytest.fixture
def live_site(stack) -> str:
    """The clinic's page served by the real stack (web server, Rasa server, action server)."""
    return f"{stack.web_url}/"
