"""The Concurrency page in Chromium: create a limit (a bad number is shown beside its field
and creates nothing), see slots in use and the leases holding them, edit the limit and
decay, disable and enable it, and delete it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from _support import RunningServer


def test_create_watch_edit_switch_and_delete_a_limit(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Concurrency", exact=True).click()
    expect(page).to_have_url(f"{server.url}/concurrency-limits")
    expect(page.locator("td.empty")).to_contain_text("No concurrency limits yet")

    page.get_by_role("link", name="New limit").click()
    form = page.locator("#limit-form")
    form.locator("#f-name").fill("db <i>pool & co?")  # any name but '/', shown as text
    form.locator("#f-limit").fill("ten")
    form.locator("#f-decay").fill("-1")
    form.get_by_role("button", name="Create limit").click()
    expect(form.locator('[data-field="limit"] .field-error')).to_contain_text("enter a number")
    expect(form.locator('[data-field="slot_decay_per_second"] .field-error')).to_contain_text(
        "greater than or equal to 0"
    )
    with server.client() as client:
        assert client.list_concurrency_limits() == []

    form.locator("#f-limit").fill("3")
    form.locator("#f-decay").fill("0")
    form.get_by_role("button", name="Create limit").click()
    expect(page.get_by_role("status")).to_have_text("Limit created.")
    expect(page.locator("h1")).to_have_text("db <i>pool & co?")
    expect(page.locator("#limit-slots")).to_contain_text("0 / 3")

    with server.http() as http:
        body = {"names": ["db <i>pool & co?"], "occupy": 2, "holder": "nightly etl"}
        assert http.post("/concurrency-limits/acquire", json=body).json()["acquired"]
    page.reload()
    expect(page.locator("#limit-slots")).to_contain_text("2 / 3")
    expect(page.locator("#lease-rows tbody tr")).to_contain_text("nightly etl")
    screenshot("concurrency-limit")

    form = page.locator("#limit-form")
    form.locator("#f-limit").fill("5")
    form.locator("#f-decay").fill("0.5")
    form.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("#limit-slots")).to_contain_text("2 / 5")
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#limit-state")).to_contain_text("Inactive")
    page.get_by_role("button", name="Enable").click()
    expect(page.locator("#limit-state")).to_contain_text("Active")
    with server.client() as client:
        shown = client.read_concurrency_limit_by_name("db <i>pool & co?")
    assert (shown.limit, shown.slot_decay_per_second, shown.active) == (5, 0.5, True)

    page.locator(".crumbs").get_by_role("link", name="Concurrency").click()
    row = page.locator("#limit-rows tbody tr")
    expect(row).to_contain_text("2 / 5")
    expect(row).to_contain_text("0.5/s")
    screenshot("concurrency-list")
    row.get_by_role("link").click()
    page.locator("#delete-limit summary").click()
    page.get_by_role("button", name="Delete limit").click()
    expect(page).to_have_url(f"{server.url}/concurrency-limits")
    expect(page.locator("td.empty")).to_contain_text("No concurrency limits yet")
    assert page.goto(f"{server.url}/concurrency-limits/nothing").status == 404
