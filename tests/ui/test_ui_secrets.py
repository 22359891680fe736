"""The Secrets page over plain HTTP: list names and times, create with a password field,
delete; no page, and no refused form, shows a value."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from _support import RunningServer

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
VALUE = "ui-s3cret-0042"


@pytest.fixture
def web(server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client that keeps cookies, as a browser would."""
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as client:
        yield client


def post(web: httpx.Client, path: str, **fields: str) -> httpx.Response:
    found = TOKEN.search(web.get("/secrets").text)
    assert found, "no CSRF token on /secrets"
    return web.post(path, data={"csrf_token": found.group(1), **fields})


def test_create_list_and_delete_a_secret(server: RunningServer, web: httpx.Client) -> None:
    empty = web.get("/secrets")
    assert empty.status_code == 200 and "No secrets yet" in empty.text
    assert '<a href="/secrets"' in web.get("/").text  # in the navigation
    assert 'type="password" name="value"' in empty.text

    bad = post(web, "/secrets", name="Bad Name", value=VALUE)
    assert bad.status_code == 422 and "lowercase" in bad.text
    assert VALUE not in bad.text
    missing = post(web, "/secrets", name="token", value="")
    assert missing.status_code == 422 and "enter the secret&#39;s value" in missing.text

    made = post(web, "/secrets", name="token", value=VALUE)
    assert made.status_code == 303 and made.headers["location"] == "/secrets?done=created"
    listed = web.get("/secrets?done=created")
    assert 'data-secret="token"' in listed.text and "Secret created." in listed.text
    assert VALUE not in listed.text
    taken = post(web, "/secrets", name="token", value=VALUE + "-again")
    assert taken.status_code == 422 and "already exists" in taken.text
    assert VALUE not in taken.text
    with server.http() as http:
        assert http.get("/secrets/name/token/value").json()["value"] == VALUE

    deleted = post(web, "/secrets/token/delete")
    assert deleted.status_code == 303
    assert "No secrets yet" in web.get("/secrets").text
    assert post(web, "/secrets/token/delete").status_code == 404
    assert VALUE not in server.log()
