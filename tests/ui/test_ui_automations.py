"""The Automations page in Chromium: create one from a YAML spec (a bad spec is refused
beside the textarea, which keeps the text), disable, enable and delete it; the recent
events, filtered by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from _support import RunningServer, wait_until

SPEC = """name: runs-failing
trigger:
  expect: [dockyard.flow-run.Failed]
  threshold: 2
  within: 60
actions:
  - type: cancel-flow-run
"""


def test_create_disable_and_delete_an_automation(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Automations", exact=True).click()
    expect(page).to_have_url(f"{server.url}/automations")
    expect(page.locator("td.empty")).to_contain_text("No automations yet")

    page.get_by_role("link", name="New automation").click()
    form = page.locator("#automation-form")
    bad = SPEC.replace("  within: 60\n", "")
    form.locator("#f-spec").fill(bad)
    form.get_by_role("button", name="Create automation").click()
    expect(form.locator('[data-field="spec"] .field-error')).to_contain_text("within")
    expect(form.locator("#f-spec")).to_have_value(bad)  # what was typed stays
    with server.client() as client:
        assert client.list_automations() == []

    form.locator("#f-spec").fill(SPEC)
    form.get_by_role("button", name="Create automation").click()
    expect(page.get_by_role("status")).to_have_text("Automation created.")
    row = page.locator('tr[data-automation="runs-failing"]')
    expect(row).to_contain_text("dockyard.flow-run.Failed (2 within 60 s)")
    expect(row).to_contain_text("cancel-flow-run")
    expect(row).to_contain_text("enabled")
    screenshot("automations")

    row.get_by_role("button", name="Disable").click()
    expect(page.locator('tr[data-automation="runs-failing"]')).to_contain_text("disabled")
    with server.client() as client:
        assert client.read_automation("runs-failing").enabled is False
    page.locator('tr[data-automation="runs-failing"]').get_by_role("button", name="Enable").click()
    expect(page.locator('tr[data-automation="runs-failing"] .badge')).to_have_text("enabled")
    page.locator('tr[data-automation="runs-failing"]').get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("Automation deleted.")
    expect(page.locator('tr[data-automation="runs-failing"]')).to_have_count(0)
    with server.client() as client:
        assert client.list_automations() == []

    with server.http() as http:
        for name in ("acme.table.refreshed", "other.thing"):
            body = {"event": name, "resource": {"dockyard.resource.id": "acme.x"}}
            assert http.post("/events", json=body).status_code == 201
        # listed once evaluated (they have their position then)
        listed = lambda: len(http.get("/events").json()["events"]) == 2  # noqa: E731
        wait_until(listed, 30, "both events listed")
    page.get_by_role("link", name="Recent events").click()
    expect(page.locator("tr[data-event]")).to_have_count(2)
    page.locator("#f-event").fill("acme.")
    page.locator("#f-event").press("Enter")
    expect(page.locator("tr[data-event]")).to_have_count(1)
    expect(page.locator("tr[data-event]")).to_contain_text("acme.table.refreshed")
    assert console_errors == []
