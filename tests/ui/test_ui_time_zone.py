"""Times show in the browser's time zone, with UTC in the tooltip: at load, and in the parts
that a live refresh swaps in (a running run's summary, its new log lines). The CLI's
``--json`` gives times in UTC, whatever the machine's time zone."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect
from ui_support import seed_showcase

from _support import RunningServer, run_cli
from dockyard import schemas

ZONE = "Asia/Kolkata"  # UTC+5:30 all year: no daylight saving time to allow for
ZONE_NAME = "GMT+5:30"  # what Chromium calls it in en-US
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
READ_TIMES = """els => els.map(el => ({
    iso: el.getAttribute("datetime"),
    title: el.getAttribute("title"),
    style: el.getAttribute("data-local"),
    text: el.textContent,
}))"""


@pytest.fixture
def kolkata(browser: Browser) -> Iterator[Page]:
    """A page in a browser set to India's time zone (the test machine's is UTC)."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id=ZONE, locale="en-US")
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == []


def expected(iso: str, style: str) -> str:
    local = datetime.fromisoformat(iso).astimezone(ZoneInfo(ZONE))
    if style == "log":
        return f"{local:%H:%M:%S}.{local.microsecond // 1000:03d}"
    if style == "time":
        return f"{local:%H:%M:%S} {ZONE_NAME}"
    return f"{local:%Y-%m-%d %H:%M:%S} {ZONE_NAME}"


def check_times(page: Page, selector: str = "time[data-local]") -> list[dict[str, str]]:
    """Every absolute time under ``selector`` reads in the local zone, with UTC on hover."""
    times: list[dict[str, str]] = page.locator(selector).evaluate_all(READ_TIMES)
    assert times, f"no time under {selector}"
    for time in times:
        assert ISO.fullmatch(time["iso"]), time
        utc = datetime.fromisoformat(time["iso"]).astimezone(UTC)
        assert time["title"] == f"{utc:%Y-%m-%d %H:%M:%S} UTC", time
        assert time["text"] == expected(time["iso"], time["style"]), time
    return times


def test_times_in_the_browsers_zone_and_utc_on_hover(server: RunningServer, kolkata: Page) -> None:
    page = kolkata
    with server.client() as client:
        ids = seed_showcase(client)
    page.goto(f"{server.url}/runs/{ids['running']}")
    styles = {t["style"] for t in check_times(page)}
    assert styles == {"datetime", "time", "log"}
    # relative times stay relative, with the UTC time on hover
    relative = page.locator("#timeline time:not([data-local])").first
    expect(relative).to_have_text(re.compile(r"ago|just now"))
    expect(relative).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"))

    # the running run's summary is replaced every second, and new log lines come in. A long
    # settle delay makes sure a swapped-in part is in local time from the moment it is shown,
    # not once htmx has settled it.
    page.evaluate("htmx.config.defaultSettleDelay = 5000")
    page.evaluate("document.getElementById('run-summary').dataset.old = 'yes'")
    with server.client() as client:
        line = f"a line after the page loaded {uuid.uuid4()}"
        client.create_logs([schemas.LogCreate(flow_run_id=uuid.UUID(ids["running"]), message=line)])
    page.wait_for_function("() => !document.getElementById('run-summary').dataset.old")
    expect(page.locator(".log-line", has_text=line)).to_have_count(1)
    check_times(page, "#run-summary time[data-local]")
    check_times(page, f".log-line:has-text('{line}') time[data-local]")

    # another page: a deployment's creation time
    page.goto(f"{server.url}/deployments/{ids['deployment']}")
    check_times(page)


def test_cli_json_times_are_utc_whatever_the_machines_zone(server: RunningServer) -> None:
    with server.client() as client:
        ids = seed_showcase(client)
    env = {**server.env, "TZ": ZONE}
    shown = json.loads(run_cli("flow-run", "inspect", ids["failed"], "--json", env=env).stdout)
    times = [shown["created"], shown["start_time"], *(s["timestamp"] for s in shown["states"])]
    for text in times:
        assert text.endswith("Z"), text
        assert datetime.fromisoformat(text).utcoffset() == timedelta(0)
    # tables are for people: the same time there is local
    table = run_cli("flow-run", "ls", env=env).stdout
    local = datetime.fromisoformat(shown["start_time"]).astimezone(ZoneInfo(ZONE))
    assert f"{local:%Y-%m-%d %H:%M:%S}" in table
