"""A run's pages in Chromium: a failure's exception line with its traceback on demand, logs
that name the task run that wrote each line (filtered, searched, downloaded), task run pages,
keyboard focus that survives live refreshes, Cancel that asks first, the run list's filter
chips, and a 404 page for an address that names nothing.

One server (and browser) for the whole module, seeded once: the tests read what the seed
made, in any order; what one of them changes (the run it cancels, the late run it adds) no
other one looks at.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect
from ui_support import seed_showcase

from _support import RunningServer, ServerFactory
from dockyard import schemas
from dockyard.server.ui.rendering import Failure, failure

TRACEBACK = """ValueError: boom

Traceback (most recent call last):
  File "/srv/flows/boom.py", line 7, in boom
    transform(load())
  File "/srv/flows/boom.py", line 4, in transform
    raise ValueError("boom")
ValueError: boom"""
TASK_ERROR = (
    "KeyError: 'price'\n\nTraceback (most recent call last):\n"
    '  File "/srv/flows/boom.py", line 12, in transform\n'
    + "".join(
        f"    row{i} = rows[{i}]['price'] * rate  # a long line of the task\n" for i in range(4)
    )
    + "KeyError: 'price'"
)
DOCSTRING = "Fetch the repository's statistics.\n\nRuns every hour:\n  - stars\n  - forks"


@dataclass
class World:
    server: RunningServer
    ids: dict[str, str]
    running: str  # a run nobody finishes: its page keeps refreshing itself
    running_lease: str
    failed: str
    tasks: dict[str, str]  # task run ids of the failed run, by name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("run-pages")
    factory = ServerFactory(base / "servers", f"sqlite+aiosqlite:///{base / 'dockyard.db'}")
    # leases made here stay valid through the module: no reaper ends a run under a test
    server = factory(DOCKYARD_LEASE_SECONDS="86400")
    try:
        yield _seed(server)
    finally:
        problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _seed(server: RunningServer) -> World:
    with server.client() as client:
        ids = seed_showcase(client)
        client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="stats", name="hourly", work_pool_name="nightly", description=DOCSTRING
            )
        )
    failed, tasks = _failed_run(server)
    with server.http() as http:
        running, lease = _running_run(http, "watched")
        for number in range(30):  # more than a page of runs: the list has a pager
            _running_run(http, f"filler-{number}")
    return World(server, ids, running, lease, failed, tasks)


def _running_run(http: httpx.Client, name: str) -> tuple[str, str]:
    """A run in RUNNING, and its lease token."""
    made = http.post("/flow-runs", json={"flow_name": "nap", "name": name})
    made.raise_for_status()
    return str(made.json()["id"]), str(made.json()["lease_token"])


def _failed_run(server: RunningServer) -> tuple[str, dict[str, str]]:
    """A run whose task ``transform`` failed, and whose flow failed with it; both write
    "finished in state FAILED"."""
    with server.http() as http:
        made = http.post("/flow-runs", json={"flow_name": "boom", "name": "failed-boom"}).json()
    run_id, token = uuid.UUID(made["id"]), made["lease_token"]
    tasks = {"load": uuid.uuid4(), "transform": uuid.uuid4()}
    started = schemas.utcnow() - timedelta(seconds=5)

    def log(message: str, task: str | None = None, level: int = 20) -> schemas.LogCreate:
        task_run_id = tasks[task] if task else None
        return schemas.LogCreate(
            flow_run_id=run_id, task_run_id=task_run_id, level=level, message=message
        )

    with server.client() as client:
        client.create_logs(
            [
                log("Beginning flow run 'failed-boom'"),
                log("debugging detail", level=10),
                log("loaded 3 rows", "load"),
                log("Finished in state COMPLETED", "load"),
                log("KeyError: 'price'", "transform", level=40),
                log("Finished in state FAILED", "transform", level=40),
                log("Finished in state FAILED", level=40),
            ]
        )
        client.create_task_runs(
            [
                schemas.TaskRunRecord(
                    id=tasks["load"],
                    flow_run_id=run_id,
                    name="load",
                    state="COMPLETED",
                    start_time=started,
                    end_time=started + timedelta(seconds=1),
                ),
                schemas.TaskRunRecord(
                    id=tasks["transform"],
                    flow_run_id=run_id,
                    name="transform",
                    state="FAILED",
                    start_time=started + timedelta(seconds=1),
                    end_time=started + timedelta(seconds=2),
                    attempts=2,
                    error=TASK_ERROR,
                ),
            ]
        )
        client.set_flow_run_state(
            run_id, schemas.StateTransition(state="FAILED", lease_token=token, message=TRACEBACK)
        )
    return str(run_id), {name: str(task_id) for name, task_id in tasks.items()}


def lines(page: Page) -> list[tuple[str, str]]:
    """The log lines shown: (source, message)."""
    found = page.locator("#log-body .log-line")
    return [
        (found.nth(i).locator(".src").inner_text(), found.nth(i).locator(".msg").inner_text())
        for i in range(found.count())
    ]


# ---------------------------------------------------------------- failures and task runs


def test_a_failure_shows_its_exception_line_and_its_traceback_on_demand(
    world: World, page: Page, console_errors: list[str]
) -> None:
    page.goto(f"{world.server.url}/runs/{world.failed}")
    message = page.locator("#state-message")
    expect(message.locator(".failure-line")).to_have_text("ValueError: boom")
    trace = message.locator("details.traceback")
    expect(trace.locator("summary")).to_have_text("Traceback")
    expect(trace.locator("pre")).to_be_hidden()
    trace.locator("summary").click()
    expect(trace.locator("pre")).to_contain_text('File "/srv/flows/boom.py", line 4, in transform')
    last_state = page.locator("#timeline li").last
    expect(last_state.locator(".failure-line")).to_have_text("ValueError: boom")
    expect(last_state.locator("details.traceback summary")).to_have_text("Traceback")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], "the traceback makes the page wider"  # type: ignore[index]

    row = page.locator("#run-summary tbody tr", has_text="transform")
    expect(row.locator(".task-note .muted")).to_have_text("KeyError: 'price'")
    row.get_by_role("link", name="transform", exact=True).click()
    expect(page).to_have_url(f"{world.server.url}/task-runs/{world.tasks['transform']}")
    expect(page.locator("h1")).to_have_text("transform")
    expect(page.locator("#task-state")).to_have_text("Failed")
    error = page.locator("#error")
    expect(error.locator(".failure-line")).to_have_text("KeyError: 'price'")
    expect(error.locator("pre")).to_be_visible()  # in full, at once
    full = error.locator("pre").inner_text()
    assert full.strip() == TASK_ERROR.strip() and len(full) > 300
    timeline = page.locator("#task-timeline li")
    expect(timeline).to_have_count(2)
    expect(timeline.first).to_contain_text("Running")
    expect(timeline.last).to_contain_text("Failed")
    expect(timeline.last).to_contain_text("after 2 attempts")
    # its own log lines only
    expect(page.locator("#log-body .log-line")).to_have_count(2)
    assert {source for source, _ in lines(page)} == {"transform"}
    page.get_by_role("link", name="failed-boom").first.click()
    expect(page).to_have_url(f"{world.server.url}/runs/{world.failed}")
    assert console_errors == []


def test_logs_name_their_task_run_and_filter_search_and_download(
    world: World, page: Page, tmp_path: Path
) -> None:
    page.goto(f"{world.server.url}/runs/{world.failed}")
    expect(page.locator("#log-body .log-line")).to_have_count(7)
    shown = lines(page)
    finished = [source for source, message in shown if message == "Finished in state FAILED"]
    assert finished == ["transform", "flow"], "the two FAILED lines say who wrote them"
    link = page.locator("#log-body .src a", has_text="load").first
    expect(link).to_have_attribute("href", f"/task-runs/{world.tasks['load']}")

    page.locator("#f-log-level").select_option(label="Errors only")
    expect(page.locator("#log-body .log-line")).to_have_count(3)
    assert all(level == "ERROR" for level in page.locator("#log-body .lvl").all_inner_texts())
    page.locator("#f-log-task").select_option(label="The flow only")
    expect(page.locator("#log-body .log-line")).to_have_count(1)
    page.locator("#f-log-level").select_option(label="All levels")
    expect(page.locator("#log-body .log-line")).to_have_count(3)  # the flow's own lines
    page.locator("#f-log-task").select_option(label="Task run transform")
    expect(page.locator("#log-body .log-line")).to_have_count(2)
    page.locator("#f-log-task").select_option(label="The flow and its task runs")
    page.locator("#f-log-q").fill("ROWS")
    expect(page.locator("#log-body .log-line")).to_have_count(1)
    assert lines(page) == [("load", "loaded 3 rows")]
    page.locator("#f-log-q").fill("nothing like this")
    expect(page.locator("#log-body .log-line")).to_have_count(0)
    # "No log lines match these filters", or "No matching lines yet" while lines may come
    expect(page.locator("#log-body .waiting")).to_contain_text("match")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download as text").click()
    assert download.value.suggested_filename == "failed-boom-logs.txt"
    saved = tmp_path / "logs.txt"
    download.value.save_as(saved)
    text = saved.read_text().splitlines()
    assert len(text) == 7
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO +\[load\] loaded 3 rows", text[2]
    )
    assert text[-2].endswith("ERROR    [transform] Finished in state FAILED")
    assert text[-1].endswith("ERROR    [flow] Finished in state FAILED")
    with httpx.Client(base_url=world.server.url) as http:
        answer = http.get(f"/runs/{world.failed}/logs.txt", params={"level": 40})
    assert answer.headers["content-type"].startswith("text/plain")
    assert answer.headers["content-disposition"].startswith("attachment;")
    assert len(answer.text.splitlines()) == 3


# ---------------------------------------------------------------- keyboard and live refreshes


def tab_to(page: Page, accessible: str, presses: int = 200) -> None:
    """Press Tab, as a keyboard user would, until the element with this text has focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == accessible:
            return
    pytest.fail(f"Tab never reached {accessible!r}", pytrace=False)


def survives_refreshes(page: Page, partial: str, refreshes: int) -> None:
    """The focused element is replaced by ``refreshes`` live refreshes, and focus follows."""
    page.evaluate("document.activeElement.dataset.beforeRefresh = 'yes'")
    for _ in range(refreshes):
        with page.expect_response(lambda r: partial in r.url):
            pass
    expect(page.locator("[data-before-refresh]")).to_have_count(0)  # swapped for a new one
    focused = page.evaluate("document.activeElement.tagName")
    assert focused != "BODY", "a live refresh dropped keyboard focus to the page"


def test_keyboard_focus_survives_live_refreshes_and_cancel_asks_first(
    world: World, page: Page, console_errors: list[str]
) -> None:
    page.goto(f"{world.server.url}/runs/{world.running}")
    tab_to(page, "Cancel")
    survives_refreshes(page, "partial=summary", refreshes=3)
    expect(page.locator(":focus")).to_have_text("Cancel")

    asked: list[str] = []

    def answer(dialog: Dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, accept=False))
    page.keyboard.press("Enter")
    expect(page.locator(":focus")).to_have_text("Cancel")
    assert asked and "Cancel this run?" in asked[0]
    with world.server.client() as client:
        assert client.read_flow_run(world.running).state == "RUNNING"

    page.once("dialog", lambda dialog: answer(dialog, accept=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{world.server.url}/runs/{world.running}?done=cancelling")
    expect(page.get_by_role("status")).to_contain_text("Cancel requested")
    expect(page.locator("#run-state")).to_have_text("Cancelling")
    # the run's engine stops, as it does on the worker's SIGTERM
    finish = schemas.StateTransition(state="CANCELLED", lease_token=world.running_lease)
    with world.server.client() as client:
        client.set_flow_run_state(world.running, finish)
    expect(page.locator("#run-state")).to_have_text("Cancelled")
    expect(page.get_by_role("status")).to_have_count(0)  # the notice goes once the run is final
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)

    page.goto(f"{world.server.url}/runs?range=all")
    tab_to(page, "Older →")
    survives_refreshes(page, "partial=rows", refreshes=2)
    expect(page.locator(":focus")).to_have_text("Older →")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/runs\?range=all&page=2$"))

    page.goto(f"{world.server.url}/work-pools")  # the same for every live part
    tab_to(page, "nightly")
    survives_refreshes(page, "partial=rows", refreshes=1)
    expect(page.locator(":focus")).to_have_text("nightly")
    assert console_errors == []


# ---------------------------------------------------------------- the run list's filters


def test_run_list_filters_show_as_chips_and_match_what_the_ui_shows(
    world: World, page: Page
) -> None:
    # the seeded deployments have three past runs each (their schedules add upcoming ones)
    deployment = world.ids["deployment"]
    page.goto(f"{world.server.url}/runs?deployment_id={deployment}")
    box = page.locator("#f-deployment")
    expect(box).to_have_value("get_repo_info/my-first-deployment")
    chips = page.locator("#run-rows .chip > span")
    expect(chips).to_have_text(["Deployment: get_repo_info/my-first-deployment"])
    rows = page.locator("#run-rows tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#run-count")).to_have_text("3 flow runs match")

    for typed in ("MY-FIRST", "Get_Repo_Info/my", "get_repo_info/my-first-deployment"):
        box.fill(typed)
        box.press("Enter")
        expect(chips).to_have_text([f"Deployment: {typed}"])
        expect(rows).to_have_count(3)
    box.fill("etl/NIGHT")
    box.press("Enter")
    expect(rows.locator("td:nth-child(3)")).to_have_text(["etl"] * 3)
    box.fill("")
    box.press("Enter")
    expect(chips).to_have_count(0)
    expect(page.locator("#run-count")).to_have_text(re.compile(r"^\d+ flow runs$"))

    page.goto(f"{world.server.url}/runs?state=FAILED&flow=etl")
    expect(page.locator("#run-count")).to_have_text("1 flow run matches")
    page.goto(f"{world.server.url}/runs?state=FAILED,CRASHED&flow=etl&range=all")
    expect(chips).to_have_text(["State: Failed, Crashed", "Flow: etl", "Time: Any time"])
    expect(page.locator("#run-count")).to_have_text("2 flow runs match")
    page.get_by_role("link", name="Remove filter Flow: etl").click()
    expect(page).to_have_url(re.compile(r"/runs\?state=FAILED%2CCRASHED&range=all$"))
    expect(page.locator("#run-count")).to_have_text("3 flow runs match")  # and failed-boom
    expect(chips).to_have_count(2)


# ---------------------------------------------------------------- smaller defects


def test_a_page_address_that_names_nothing_is_an_html_404(world: World, page: Page) -> None:
    for path, title in [
        ("/runs/not-a-uuid", "Flow run not found"),
        ("/deployments/123", "Deployment not found"),
        ("/task-runs/nope", "Task run not found"),
        ("/runs/not-a-uuid/logs.txt", "Flow run not found"),
        (f"/task-runs/{uuid.uuid4()}", "Task run not found"),
    ]:
        answer = page.goto(world.server.url + path)
        assert answer is not None and answer.status == 404, path
        assert answer.headers["content-type"].startswith("text/html"), path
        expect(page.locator("h1")).to_have_text(title)
    expect(page.locator("main")).to_contain_text("a task run is recorded once it ends")


def test_the_smaller_things(world: World, page: Page) -> None:
    base = world.server.url
    # a deployment's docstring keeps its line breaks
    with world.server.client() as client:
        (described,) = [d for d in client.list_deployments() if d.name == "hourly"]
    page.goto(f"{base}/deployments/{described.id}")
    assert page.locator(".description").inner_text() == DOCSTRING

    # a late run says so, in words, on the run list
    with world.server.client() as client:
        late = client.create_deployment_run(
            described.id,
            schemas.DeploymentRunCreate(scheduled_start=schemas.utcnow() - timedelta(hours=1)),
        )
    page.goto(f"{base}/runs?state=LATE&range=all")
    row = page.locator("#run-rows tbody tr", has_text=late.name)
    expect(row.locator(".badge")).to_have_text("Late")

    # a paused pool's icon is drawn, not a glyph the fonts lack
    page.goto(f"{base}/work-pools")
    icon = page.locator('tr[data-pool="nightly"] .status svg.icon-paused')
    expect(icon).to_be_visible()

    # the Duration column fits a window 800 px wide
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(f"{base}/runs?range=all")
    table = page.locator("#run-rows .table-wrap")
    fits = table.evaluate("wrap => wrap.scrollWidth <= wrap.clientWidth")
    assert fits, "the run list's table is wider than its card at 800 px"
    header = page.locator("#run-rows th", has_text="Duration").bounding_box()
    card = table.bounding_box()
    assert header is not None and card is not None
    assert header["x"] + header["width"] <= card["x"] + card["width"]


def test_a_failure_is_summed_up_by_its_exception_line() -> None:
    assert failure(TRACEBACK) == Failure("ValueError: boom", TRACEBACK, traceback=True)
    bare = TRACEBACK.split("\n\n", 1)[1]  # as a worker captures a crash
    assert failure(bare).summary == "ValueError: boom"
    assert failure("lease expired") == Failure("lease expired")
    several = failure("Crashed: exit code 1\nlast output: Killed")
    assert (several.summary, several.traceback) == ("Crashed: exit code 1", False)
    assert several.full == "Crashed: exit code 1\nlast output: Killed"
    assert len(failure("x" * 5000).summary) <= 300
