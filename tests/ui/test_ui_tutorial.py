"""The tutorial, in the browser: a process pool made through the UI turns from red to green
when a worker starts, the worker shows with a recent "last polled", Run on a deployment
completes with the flow's printed line in its logs, and Cancel ends a long run Cancelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Locator, Page, Route, expect
from ui_support import running_worker, write_flows

from _support import RunningServer
from dockyard import schemas

POOL = "tutorial-pool"
RECENT = re.compile(r"^(just now|\d{1,2} s ago)$")


def create_pool_in_form(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/work-pools")
    page.get_by_role("link", name="New work pool").click()
    page.locator("#f-type").select_option("process")
    page.locator("#f-name").fill(name)
    page.get_by_role("button", name="Create work pool").click()
    expect(page).to_have_url(f"{base}/work-pools/{name}")


def nav(page: Page, name: str) -> Locator:
    """A link of the navigation bar that every page has."""
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def dot_colour(page: Page, selector: str) -> str:
    return str(page.locator(selector).evaluate("e => getComputedStyle(e).backgroundColor"))


def test_tutorial_in_the_browser(
    server: RunningServer,
    page: Page,
    tmp_path: Path,
    screenshot: Callable[[str], Path],
    console_errors: list[str],
) -> None:
    base = server.url
    create_pool_in_form(page, base, POOL)
    header = page.locator("#pool-header")
    expect(header.locator(".status")).to_have_text("Not ready")
    expect(header.locator(".banner")).to_contain_text(f"dockyard worker start --pool {POOL}")

    nav(page, "Work pools").click()
    row = page.locator(f'tr[data-pool="{POOL}"]')
    expect(row.locator(".status")).to_have_text("Not ready")
    expect(row.locator(".dot")).to_have_class(re.compile(r"\bstatus-not-ready\b"))
    red = dot_colour(page, f'tr[data-pool="{POOL}"] .dot')
    screenshot("tutorial-1-pool-not-ready")

    write_flows(tmp_path)
    with server.client() as client:
        hello = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="hello",
                name="ui-demo",
                entrypoint="flows.py:hello",
                path=str(tmp_path),
                work_pool_name=POOL,
            )
        )
        nap = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="nap",
                name="long",
                entrypoint="flows.py:nap",
                path=str(tmp_path),
                work_pool_name=POOL,
            )
        )

    with running_worker(server, POOL, tmp_path):
        # the list refreshes itself: no reload
        expect(row.locator(".status")).to_have_text("Ready", timeout=30_000)
        expect(row.locator(".dot")).to_have_class(re.compile(r"\bstatus-ready\b"))
        assert dot_colour(page, f'tr[data-pool="{POOL}"] .dot') != red
        expect(row.locator(".last-polled")).to_have_text(RECENT)
        screenshot("tutorial-2-pool-ready")

        row.get_by_role("link", name=POOL).click()
        expect(page.locator("#pool-header .status")).to_have_text("Ready")
        expect(page.locator("#pool-header .banner")).to_have_count(0)
        page.get_by_role("link", name="Workers", exact=True).click()
        expect(page).to_have_url(f"{base}/work-pools/{POOL}/workers")
        worker_row = page.locator('tr[data-worker="ui-worker"]')
        expect(worker_row).to_contain_text("Online")
        expect(worker_row.locator(".last-polled")).to_have_text(RECENT)
        screenshot("tutorial-3-workers-tab")

        run_from_list(page, base, hello.id)
        expect(page.locator("#run-state")).to_have_text("Completed", timeout=60_000)
        expect(page.locator("#logs")).to_contain_text(
            "hello from the UI test, dock!", timeout=15_000
        )
        expect(page.locator("#run-worker")).to_have_text("ui-worker")
        screenshot("tutorial-4-run-completed")

        page.goto(f"{base}/deployments/{nap.id}")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
        expect(page.locator("#run-state")).to_have_text("Running", timeout=60_000)
        expect(page.locator("#logs")).to_contain_text("napping for 60 s", timeout=15_000)
        page.once("dialog", lambda dialog: dialog.accept())  # "Cancel this run?"
        page.get_by_role("button", name="Cancel").click()
        # "Cancel requested" shows until the run is Cancelled (test_ui_run_pages checks it)
        expect(page.locator("#run-state")).to_have_text(re.compile("Cancelling|Cancelled"))
        expect(page.locator("#run-state")).to_have_text("Cancelled", timeout=30_000)
        expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
        screenshot("tutorial-5-run-cancelled")
    assert console_errors == []


def run_from_list(page: Page, base: str, deployment_id: object) -> None:
    """Press Run in the deployment's row of the Deployments page; land on the new run."""
    nav(page, "Deployments").click()
    page.locator('tr[data-deployment="hello/ui-demo"]').get_by_role("button", name="Run").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    deployment_link = page.locator("#run-summary .meta-line a").first
    expect(deployment_link).to_have_attribute("href", f"/deployments/{deployment_id}")


def test_changing_the_type_keeps_what_was_typed(server: RunningServer, page: Page) -> None:
    """The type's fields arrive after the person has typed on: the answer must not erase it."""
    base = server.url
    page.goto(f"{base}/work-pools/new")
    held: list[Route] = []
    fields_of_type = re.compile(r".*/work-pools/new\?type=.*")

    def hold(route: Route) -> None:
        held.append(route)

    page.route(fields_of_type, hold)
    page.locator("#f-type").select_option("docker")
    for _ in range(100):  # the request is held by the route until the name is typed
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "changing the type asks the server for the type's fields"
    page.locator("#f-name").fill("typed-while-loading")
    page.locator("#f-description").fill("kept")
    held[0].continue_()
    expect(page.locator("#type-parts")).to_contain_text("image")
    expect(page.locator("#type-hint")).not_to_be_empty()
    expect(page.locator("#f-name")).to_have_value("typed-while-loading")
    expect(page.locator("#f-description")).to_have_value("kept")
    page.get_by_role("button", name="Create work pool").click()
    expect(page).to_have_url(f"{base}/work-pools/typed-while-loading")
    expect(page.locator("#pool-header")).to_contain_text("docker")
