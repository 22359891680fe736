"""Artifacts in Chromium: the run page's panel (each type rendered, progress followed live),
the Artifacts page and a key's page with its history; hostile Markdown, table cells and links
are shown as text, never run or made clickable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from _support import RunningServer

HOSTILE_MARKDOWN = """# Nightly report

Loaded **42** rows. [The data](https://example.com/data) · [mail](mailto:ops@example.com)

<script>window.pwned = "script"</script>
<img src="x" onerror="window.pwned = 'img'">
[click me](javascript:window.pwned='link') and <javascript:window.pwned='auto'>
[data](data:text/html,<script>window.pwned='data'</script>)

![logo]({logo})

| step | rows |
|---|---|
| <b>extract</b> | 42 |
"""


def post(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post("/artifacts", json=body)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def test_the_run_panel_and_the_artifacts_pages(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    logo = f"{server.url}/static/favicon.svg"  # the page's policy loads images of its server
    with server.http() as http:
        run = http.post("/flow-runs", json={"flow_name": "nightly"}).json()
        linked = {"flow_run_id": run["id"]}
        post(http, type="markdown", key="report", data="# First version", **linked)
        post(
            http,
            type="markdown",
            key="report",
            data=HOSTILE_MARKDOWN.format(logo=logo),
            description="<b>not bold</b> *but emphasised*",
            **linked,
        )
        table = [{"step": "<script>window.pwned='cell'</script>", "rows": 42}, {"step": "<b>x</b>"}]
        post(http, type="table", key="rows", data=table, **linked)
        post(
            http,
            type="link",
            data={"link": "javascript:window.pwned='l'", "link_text": "js"},
            **linked,
        )
        post(http, type="link", data={"link": "https://example.com/a", "link_text": None}, **linked)
        bar = post(http, type="progress", key="load", data=40, **linked)
        post(http, type="image", data=logo, description="The logo", **linked)

    page.goto(f"{server.url}/runs/{run['id']}")
    panel = page.locator("#artifacts")
    expect(panel.locator("article.artifact")).to_have_count(7)
    report = panel.locator('article[data-type="markdown"]').first
    body = report.locator(".artifact-body")
    expect(body.locator("h1")).to_have_text("Nightly report")
    expect(body.locator("strong")).to_have_text("42")
    expect(report).to_contain_text('<script>window.pwned = "script"</script>')  # as text
    expect(report).to_contain_text('<img src="x" onerror=')
    expect(body.locator("td").first).to_have_text("<b>extract</b>")
    expect(report.locator(".artifact-description em")).to_have_text("but emphasised")
    expect(report.locator(".artifact-description")).to_contain_text("<b>not bold</b>")
    links = body.locator("a")
    expect(links).to_have_count(2)  # only the https and mailto links
    expect(links.first).to_have_attribute("href", "https://example.com/data")
    expect(links.first).to_have_attribute("rel", "noopener nofollow")
    expect(body.locator("img")).to_have_attribute("src", logo)
    cells = panel.locator('article[data-type="table"] td')
    expect(cells).to_have_text(["<script>window.pwned='cell'</script>", "42", "<b>x</b>", ""])
    link_items = panel.locator('article[data-type="link"]')
    expect(link_items.first.locator("a")).to_have_attribute("href", "https://example.com/a")
    expect(link_items.nth(1).locator("a")).to_have_count(0)
    expect(link_items.nth(1).locator("code")).to_have_text("javascript:window.pwned='l'")
    expect(panel.locator('article[data-type="image"] img')).to_have_attribute("alt", "The logo")
    expect(panel.locator("progress")).to_have_attribute("value", "40.0")
    expect(page.locator("script:not([src])")).to_have_count(0)
    expect(page.locator('a[href^="javascript" i], a[href^="data" i]')).to_have_count(0)
    screenshot("run-artifacts")

    # the panel follows a running run: the bar moves without a reload
    with server.http() as http:
        moved = http.patch(f"/artifacts/{bar['id']}", json={"data": 85})
        assert moved.status_code == 200, moved.text
    expect(panel.locator("progress")).to_have_attribute("value", "85.0", timeout=20_000)
    # what would have been a javascript: link is text: clicking it runs nothing
    report.get_by_text("click me", exact=False).click()
    link_items.nth(1).locator("code").click()
    expect(page).to_have_url(f"{server.url}/runs/{run['id']}")
    assert page.evaluate("window.pwned") is None

    page.get_by_role("link", name="Artifacts", exact=True).click()
    expect(page).to_have_url(f"{server.url}/artifacts")
    rows = page.locator("#artifact-rows tbody tr")
    expect(rows).to_have_count(3)  # the latest of each key; keyless ones are the run's
    expect(page.locator('tr[data-artifact="report"] td').nth(4)).to_have_text("2")
    expect(page.locator('tr[data-artifact="report"]')).to_contain_text(run["name"])
    screenshot("artifacts")
    page.locator("#f-type").select_option("table")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(r"type=table"))
    page.locator("#f-type").select_option("")
    page.locator("#f-prefix").fill("lo")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("load")
    page.locator("#f-prefix").fill("zzz")
    expect(page.locator("td.empty")).to_contain_text("No artifact's key matches")

    page.goto(f"{server.url}/artifacts/report")
    expect(page.locator("#artifact-shown h1")).to_have_text("Nightly report")
    history = page.locator("#artifact-history tbody tr")
    expect(history).to_have_count(2)
    history.nth(1).get_by_role("link", name="1").click()
    expect(page.get_by_role("status")).to_contain_text("An older version of this key")
    expect(page.locator("#artifact-shown h1")).to_have_text("First version")
    screenshot("artifact-key")
    for path in ("/artifacts/nope", "/artifacts/Not_A_Key"):
        answer = page.goto(f"{server.url}{path}")
        assert answer is not None and answer.status == 404
    assert page.evaluate("window.pwned") is None
    assert console_errors == []
