"""Fixtures of the UI tests: Debian's Chromium driven by Playwright, one server per test.

The UI tests run on SQLite only: the pages read through the same models as the API, whose
tests cover PostgreSQL. Screenshots go to ``tests/ui/screenshots/`` (ignored by git), and a
failing browser test leaves one there too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from _support import require

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only (overrides the suite's SQLite + PostgreSQL parametrization)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# Module scope, not session: Playwright's sync API keeps an event loop running in the main
# thread while it lives, and tests that follow (asyncio.run) must not find it there.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    require(CHROMIUM.exists(), "Chromium not installed: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright not installed: pip install -e '.[dev]'")
        raise
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """Errors the page's scripts met: a script error, or a script or style that the Content
    Security Policy refused. (Answers with an error status, such as a form's 422, are not.)"""
    return []


def _record_console(errors: list[str], message: ConsoleMessage) -> None:
    if message.type == "error" and not message.text.startswith("Failed to load resource"):
        errors.append(message.text)


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, console_errors: list[str]
) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda exc: console_errors.append(f"page error: {exc}"))
    page.on("console", lambda message: _record_console(console_errors, message))
    yield page
    report = getattr(request.node, "report_call", None)
    failed_shot = SCREENSHOTS / f"FAILED-{request.node.name}.png"
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(exist_ok=True)
        page.screenshot(path=str(failed_shot), full_page=True)
    else:
        failed_shot.unlink(missing_ok=True)
    context.close()


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """``screenshot("work-pools")`` saves the whole page as ``screenshots/work-pools.png``."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
