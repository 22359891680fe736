"""The Variables page in Chromium: create (a bad value is shown beside its field and creates
nothing), edit and delete a variable; values are shown as JSON, as text, never as markup."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from _support import RunningServer
from dockyard.exceptions import NotFound

HOSTILE = {"html": "<script>window.pwned = 1</script><b>bold</b>", "list": [1, 2.5, None]}


def variable(server: RunningServer, name: str) -> object:
    with server.client() as client:
        return client.read_variable_by_name(name)


def test_create_edit_and_delete_a_variable(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    page.goto(f"{server.url}/")
    page.get_by_role("link", name="Variables", exact=True).click()
    expect(page).to_have_url(f"{server.url}/variables")
    expect(page.locator("td.empty")).to_contain_text("No variables yet")

    page.get_by_role("link", name="New variable").click()
    form = page.locator("#variable-form")
    form.locator("#f-name").fill("Crew List")
    form.locator("#f-value").fill("['zaphod']")  # not JSON: single quotes
    form.get_by_role("button", name="Create variable").click()
    expect(form.locator('[data-field="value"] .field-error')).to_contain_text("not valid JSON")
    expect(form.locator('[data-field="name"] .field-error')).to_contain_text("lowercase")
    expect(form.locator("#f-value")).to_have_value("['zaphod']")  # what was typed stays
    screenshot("variables-bad-value")
    with server.client() as client:
        assert client.list_variables() == []

    form.locator("#f-name").fill("  crew_list ")  # spaces around a name are dropped
    form.locator("#f-value").fill(
        '{"html": "<script>window.pwned = 1</script><b>bold</b>", "list": [1, 2.5, null]}'
    )
    form.locator("#f-tags").fill("ship, heart of gold")
    form.get_by_role("button", name="Create variable").click()
    expect(page).to_have_url(f"{server.url}/variables/crew_list?done=created")
    expect(page.get_by_role("status")).to_have_text("Variable created.")
    shown = page.locator("#variable-value")
    expect(shown).to_contain_text('"html": "<script>window.pwned = 1</script><b>bold</b>"')
    expect(shown.locator("b")).to_have_count(0)  # text, not markup
    expect(page.locator("#variable-tags .badge")).to_have_text(["ship", "heart of gold"])
    assert page.evaluate("window.pwned") is None
    created = variable(server, "crew_list")
    assert created.value == HOSTILE and created.tags == ["ship", "heart of gold"]  # type: ignore[attr-defined]
    screenshot("variable-page")

    edit = page.locator("#variable-form")
    edit.locator("#f-value").fill("[1, 2")
    edit.get_by_role("button", name="Save").click()
    expect(edit.locator('[data-field="value"] .field-error')).to_contain_text("not valid JSON")
    assert variable(server, "crew_list").value == HOSTILE  # type: ignore[attr-defined]
    edit.locator("#f-value").fill('"just text"')
    edit.locator("#f-tags").fill("")
    edit.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    expect(page.locator("#variable-value")).to_have_text('"just text"')
    saved = variable(server, "crew_list")
    assert saved.value == "just text" and saved.tags == []  # type: ignore[attr-defined]

    page.goto(f"{server.url}/variables")
    row = page.locator('tr[data-variable="crew_list"]')
    expect(row).to_contain_text('"just text"')
    screenshot("variables")
    row.get_by_role("link", name="crew_list").click()
    page.locator("#delete-variable summary").click()
    page.get_by_role("button", name="Delete variable").click()
    expect(page).to_have_url(f"{server.url}/variables")
    expect(page.locator('tr[data-variable="crew_list"]')).to_have_count(0)
    try:
        variable(server, "crew_list")
    except NotFound:
        pass
    else:
        raise AssertionError("the variable was not deleted")
    assert console_errors == []


def test_duplicates_unknown_names_and_the_list_filter(server: RunningServer, page: Page) -> None:
    with server.client() as client:
        from dockyard import schemas

        for name in ("db_host", "db_port", "api_url"):
            client.create_variable(schemas.VariableCreate(name=name, value=name.upper()))
    page.goto(f"{server.url}/variables?new=1")
    form = page.locator("#variable-form")
    form.locator("#f-name").fill("db_host")
    form.locator("#f-value").fill("1")
    form.get_by_role("button", name="Create variable").click()
    expect(form.locator('[data-field="name"] .field-error')).to_contain_text("already exists")
    assert variable(server, "db_host").value == "DB_HOST"  # type: ignore[attr-defined]

    page.locator("#f-prefix").fill("db_")  # the list follows what is typed
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody")).not_to_contain_text("api_url")
    expect(page).to_have_url(f"{server.url}/variables?prefix=db_")
    page.locator("#f-prefix").fill("x")
    page.locator("#f-prefix").press("Enter")
    expect(page.locator("td.empty")).to_contain_text("No variable's name starts with x")

    for path in ("/variables/nope", "/variables/Not%20A%20Name"):
        answer = page.goto(f"{server.url}{path}")
        assert answer is not None and answer.status == 404
        expect(page.locator("h1")).to_have_text(re.compile("Not found"))
