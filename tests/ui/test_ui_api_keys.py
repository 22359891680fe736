"""The UI login takes user and admin keys, refuses worker keys, and a user sees no forms
that change pools, variables, secrets and the like."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Page, expect

from _support import RunningServer


def _key(http: httpx.Client, name: str, scope: str, admin: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {admin}"} if admin else {}
    made: Any = http.post("/api-keys", json={"name": name, "scope": scope}, headers=headers)
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def _log_in(page: Page, key: str) -> None:
    page.locator("#f-api_key").fill(key)
    page.get_by_role("button", name="Log in").click()


def test_login_with_user_and_worker_keys(server: RunningServer, page: Page) -> None:
    base = server.url
    with httpx.Client(base_url=server.api_url) as http:
        admin = _key(http, "root", "admin")  # the first key, while the API is still open
        user = _key(http, "viewer", "user", admin)
        worker = _key(http, "w", "worker", admin)

    page.goto(f"{base}/variables")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    _log_in(page, worker)
    expect(page.locator(".field-error")).to_contain_text("worker key cannot log in")
    assert not [c for c in page.context.cookies() if c["name"] == "dockyard_session"]

    _log_in(page, user)
    expect(page).to_have_url(f"{base}/variables")
    expect(page.get_by_role("heading", name="Variables")).to_be_visible()
    expect(page.locator("#new-variable")).to_have_count(0)
    page.goto(f"{base}/work-pools")
    expect(page.get_by_role("link", name="New work pool")).to_have_count(0)
    page.goto(f"{base}/secrets")
    expect(page.locator("#new-secret")).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    _log_in(page, admin)
    page.goto(f"{base}/variables")
    expect(page.locator("#new-variable")).to_have_count(1)
