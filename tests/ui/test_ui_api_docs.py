"""``/docs``: the REST API's reference, served by the server alone, behind the UI's login
when an API key is set."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from _support import RunningServer

KEY = "ui-docs-test-key-51c0"


def test_the_api_reference_loads_nothing_from_elsewhere(
    server: RunningServer, page: Page, console_errors: list[str]
) -> None:
    asked: list[str] = []

    def record(request: Request) -> None:
        asked.append(request.url)

    page.on("request", record)
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="REST API").click()
    expect(page).to_have_url(f"{server.url}/docs")
    expect(page.get_by_role("heading", name="REST API", level=1)).to_be_visible()
    pools = page.locator("section#tag-work-pools")
    expect(pools).to_contain_text("/api/work-pools/{name}")
    pools.get_by_role("link", name="WorkPoolCreate").first.click()
    expect(page.locator("#schema-WorkPoolCreate")).to_be_in_viewport()
    styled = page.locator("table").first.evaluate("t => getComputedStyle(t).borderCollapse")
    assert styled == "collapse", "the UI's stylesheet did not load"

    docs_requests = asked[asked.index(f"{server.url}/docs") :]
    assert f"{server.url}/static/dockyard.css?v=" in " ".join(docs_requests)
    outside = [url for url in asked if not url.startswith(f"{server.url}/")]
    assert outside == [], outside
    assert console_errors == []


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": KEY}], indirect=True)
def test_the_api_reference_needs_the_key_when_one_is_set(server: RunningServer, page: Page) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        answer = anonymous.get("/docs")
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Fdocs"

    page.goto(f"{server.url}/docs")
    expect(page).to_have_url(f"{server.url}/login?next=%2Fdocs")
    page.locator("#f-api_key").fill(KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{server.url}/docs")
    expect(page.get_by_role("heading", name="REST API", level=1)).to_be_visible()
    expect(page.locator(".page-head")).to_contain_text("Authorization: Bearer")
