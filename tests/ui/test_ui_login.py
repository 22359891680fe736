"""With an API key configured, the UI asks for it once and keeps a session; forms without
their CSRF token are refused."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from playwright.sync_api import Page, expect

from _support import RunningServer

KEY = "ui-test-key-7f3a"


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_API_KEY": KEY}], indirect=True)
def test_login_session_and_csrf(server: RunningServer, page: Page) -> None:
    base = server.url
    for path in ("/", "/work-pools", "/runs", "/work-pools/new"):
        page.goto(base + path)
        expect(page).to_have_url(f"{base}/login?next={quote(path, safe='')}")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    page.locator("#f-api_key").fill("not-the-key")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".field-error")).to_contain_text("not the server's API key")
    assert not [c for c in page.context.cookies() if c["name"] == "dockyard_session"]

    page.locator("#f-api_key").fill(KEY)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{base}/work-pools/new")  # where the visit began
    (session,) = [c for c in page.context.cookies() if c["name"] == "dockyard_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    assert KEY not in session["value"]

    # the session opens the UI only: the API still wants the key itself
    assert page.request.get(f"{base}/api/work-pools").status == 401

    # a form posted without its token (or with another browser's) is refused, and does nothing
    form = {"type": "process", "name": "forged"}
    refused = page.request.post(f"{base}/work-pools/new", form=form)
    assert refused.status == 403
    assert "security token" in refused.text()
    forged = page.request.post(f"{base}/work-pools/new", form={**form, "csrf_token": "x" * 64})
    assert forged.status == 403
    with server.client() as client:
        assert [p.name for p in client.list_work_pools()] == []

    # the real form carries its token
    page.locator("#f-name").fill("with-token")
    page.get_by_role("button", name="Create work pool").click()
    expect(page).to_have_url(f"{base}/work-pools/with-token")

    # a live fragment asked for without a session sends the page to the login form
    anonymous = page.context.browser.new_context()  # type: ignore[union-attr]
    try:
        answer = anonymous.request.get(
            f"{base}/work-pools?partial=rows", headers={"HX-Request": "true"}
        )
        assert answer.status == 401
        assert answer.headers["hx-redirect"].startswith("/login?next=")
    finally:
        anonymous.close()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/flows")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fflows$"))
