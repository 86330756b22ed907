"""Chromium, from Debian's package, driven by Playwright against the live console."""

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API runs an event loop in the test's thread; the ORM calls the test
# makes beside it are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class _PolicyWatchedBrowser:
    """The browser, whose every context reports what the Content-Security-Policy refused
    (an inline script, a script from elsewhere) into ``refused``."""

    def __init__(self, browser) -> None:
        self._browser = browser
        self.refused: list[str] = []

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        context.on("console", self._console)
        return context

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is not installed: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield _PolicyWatchedBrowser(browser)
        browser.close()


@pytest.fixture(autouse=True)
def _no_page_breaks_the_security_policy(request):
    """Every page a browser test opens runs under the console's Content-Security-Policy
    without a refusal: no inline script, nothing loaded from elsewhere."""
    if "browser" not in request.fixturenames:
        yield
        return
    watched = request.getfixturevalue("browser")
    watched.refused.clear()
    yield
    assert watched.refused == []


@pytest.fixture
def screens() -> Path:
    """A folder for this run's screenshots, printed so a reviewer can find it."""
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%d-%H%M%S")
    folder = Path(settings.BASE_DIR) / "var" / "screens" / f"e2e-{stamp}"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nScreenshots: {folder}")  # noqa: T201
    return folder
