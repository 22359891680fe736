"""Every main page, in light and dark, saved to ``tests/ui/screenshots/`` for people to look
at; along the way, every page renders without a script error and shows no secret."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from ui_support import DEPLOYMENT_SECRET, POOL_SECRET, RUN_SECRET, seed_showcase

from _support import RunningServer

SECRETS = (POOL_SECRET, DEPLOYMENT_SECRET, RUN_SECRET)
MASK = "••••••"


def pages(ids: dict[str, str]) -> dict[str, str]:
    return {
        "dashboard": "/",
        "work-pools": "/work-pools",
        "work-pool-new": "/work-pools/new",
        "work-pool-details": "/work-pools/my-docker-pool",
        "work-pool-limited": "/work-pools/local",  # its slots chart draws the limit
        "work-pool-queues": "/work-pools/local/queues",
        "work-pool-workers": "/work-pools/local/workers",
        "work-pool-runs": "/work-pools/local/runs",
        "work-pool-deployments": "/work-pools/local/deployments",
        "deployments": "/deployments",
        "deployment": f"/deployments/{ids['deployment']}",
        "deployment-docker": f"/deployments/{ids['docker_deployment']}",
        "custom-run": f"/deployments/{ids['deployment']}/run",
        "flow-runs": "/runs?range=all",
        "flow-run-completed": f"/runs/{ids['completed']}",
        "flow-run-failed": f"/runs/{ids['failed']}",
        "flow-run-running": f"/runs/{ids['running']}",
        "flows": "/flows",
    }


def test_screenshots_of_the_main_pages(
    server: RunningServer,
    page: Page,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    with server.client() as client:
        ids = seed_showcase(client)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, path in pages(ids).items():
            response = page.goto(server.url + path)
            assert response is not None and response.status == 200, path
            expect(page.locator("main")).to_be_visible()
            html = page.content()
            leaked = [s for s in SECRETS if s in html]
            assert not leaked, f"{path} shows a secret value"
            screenshot(f"{name}-{scheme}")
    assert console_errors == []


def test_secrets_are_masked_where_they_are_set(server: RunningServer, page: Page) -> None:
    with server.client() as client:
        ids = seed_showcase(client)
    page.goto(f"{server.url}/work-pools/my-docker-pool")
    expect(page.locator("#base-job-template")).to_contain_text(MASK)
    expect(page.locator("#base-job-template")).to_contain_text("ci-bot")
    page.goto(f"{server.url}/deployments/{ids['docker_deployment']}")
    expect(page.locator("main")).to_contain_text(MASK)
    page.goto(f"{server.url}/runs/{ids['failed']}")
    expect(page.locator("#job-variables")).to_contain_text(MASK)


def test_small_screens(
    server: RunningServer, page: Page, screenshot: Callable[[str], Path]
) -> None:
    with server.client() as client:
        ids = seed_showcase(client)
    page.set_viewport_size({"width": 390, "height": 844})
    for name, path in (("work-pools", "/work-pools"), ("flow-run", f"/runs/{ids['failed']}")):
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is wider than a phone's screen ({width} px)"
        screenshot(f"{name}-phone")
