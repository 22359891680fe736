"""A run's task timeline in Chromium, drawn from a real flow run: three tasks that sleep at
the same time on the thread pool, one after them, one that fails once and is retried, and a
subflow. Its bars sit on separate rows while they overlap, the retried task shows both its
attempts, a bar opens its task run's page, ``?gantt=duration`` puts the longest first, and a
run of more task runs than the chart draws says how many it left out.

One server and one flow run (about a second) for the module.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from _support import RunningServer, ServerFactory
from dockyard import schemas
from dockyard.server.ui.gantt import MAX_BARS

FAN_OUT = """\
import time

from dockyard import flow, task
from dockyard.runtime import flow_run
from dockyard.task_runners import ThreadPoolTaskRunner

tries = []


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@task
def total(values: list[float]) -> float:
    time.sleep(0.05)
    return sum(values)


@task(retries=1, retry_delay_seconds=0.1)
def flaky() -> str:
    tries.append(1)
    time.sleep(0.05)
    if len(tries) == 1:
        raise RuntimeError("the first try fails")
    return "fine"


@flow
def report() -> str:
    return "done"


@flow(name="fan-out", task_runner=ThreadPoolTaskRunner(max_workers=4))
def fan_out() -> None:
    print(flow_run.get_id())
    naps = [nap.submit(0.3) for _ in range(3)]
    total([n.result() for n in naps])
    flaky()
    report()


if __name__ == "__main__":
    fan_out()
"""
FLOW_SECONDS = 60


@dataclass
class World:
    server: RunningServer
    run_id: str
    crowded_id: str  # a run of more task runs than the chart draws


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("gantt")
    factory = ServerFactory(base / "servers", f"sqlite+aiosqlite:///{base / 'dockyard.db'}")
    server = factory()
    try:
        yield World(server, _run_fan_out(server, base), _crowded_run(server))
    finally:
        problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _run_fan_out(server: RunningServer, base: Path) -> str:
    """Run the flow as its user would (``python fan_out.py``); return its run's id."""
    script = base / "fan_out.py"
    script.write_text(FAN_OUT)
    done = subprocess.run(
        [sys.executable, str(script)],
        env=server.env,
        cwd=base,
        capture_output=True,
        text=True,
        timeout=FLOW_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[0]


def _crowded_run(server: RunningServer) -> str:
    with server.http() as http:
        made = http.post("/flow-runs", json={"flow_name": "crowded", "name": "crowded"}).json()
    started = schemas.utcnow() - timedelta(minutes=5)
    records = [
        schemas.TaskRunRecord(
            id=uuid.uuid4(),
            flow_run_id=made["id"],
            name=f"step-{i}",
            state="COMPLETED",
            start_time=started + timedelta(milliseconds=100 * i),
            end_time=started + timedelta(milliseconds=100 * i + 50 + i % 7),
        )
        for i in range(MAX_BARS + 20)
    ]
    with server.client() as client:
        client.create_task_runs(records)
    return str(made["id"])


def _bars(page: Page) -> Locator:
    return page.locator("#gantt svg a.g-bar")


def _bar(page: Page, task: str) -> Locator:
    """The bar of the (only) run of ``task``: its task runs are named ``task-0``, ..."""
    named = re.compile(f"^{task}-\\d+ \\(task run\\)")
    return _bars(page).filter(has=page.locator("title", has_text=named))


def _subflow(page: Page) -> Locator:
    return page.locator("#gantt svg a.g-bar[data-kind='subflow']")


def _y(bar: Locator) -> float:
    return float(bar.locator("rect.g-hit").get_attribute("y") or "nan")


def _open(page: Page, world: World, query: str = "") -> None:
    page.goto(f"{world.server.url}/runs/{world.run_id}{query}")
    expect(page.locator("#gantt h2")).to_have_text("Task timeline")


def test_overlapping_tasks_get_their_own_rows(
    world: World, page: Page, console_errors: list[str], screenshot: Callable[[str], Any]
) -> None:
    _open(page, world)
    expect(_bars(page)).to_have_count(6)  # 3 naps, total, flaky, and the subflow
    naps = _bar(page, "nap")
    expect(naps).to_have_count(3)
    rows = {_y(naps.nth(i)) for i in range(3)}
    assert len(rows) == 3, "the three naps ran at once: each has its own row"
    # what follows them ran alone: it goes back to a row already used
    assert _y(_bar(page, "total")) in rows and _y(_bar(page, "flaky")) in rows
    expect(_subflow(page)).to_have_count(1)
    expect(_subflow(page).locator("title")).to_contain_text("(subflow run)")
    title = _bar(page, "total").locator("title").text_content() or ""
    assert re.search(r"^Start: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", title, re.M), title
    assert re.search(r"^Duration: 0\.\d{3} s$", title, re.M), title
    expect(page.locator("#gantt .gantt-legend")).to_contain_text("Completed")
    screenshot("flow-run-fan-out")
    assert console_errors == []


def test_the_retried_task_shows_its_attempts_and_a_bar_opens_its_page(
    world: World, page: Page, console_errors: list[str]
) -> None:
    _open(page, world)
    flaky = _bar(page, "flaky")
    expect(flaky).to_have_attribute("data-attempts", "2")
    attempts = flaky.locator("rect.g-seg")
    expect(attempts).to_have_count(3)  # failed, the wait, completed
    states = [attempts.nth(i).get_attribute("data-state") for i in range(3)]
    assert states == ["FAILED", "AWAITING_RETRY", "COMPLETED"]
    expect(flaky.locator("line.g-split")).to_have_count(1)
    expect(flaky.locator("title")).to_contain_text("attempt 1: Failed")
    expect(flaky.locator("text")).to_contain_text("flaky")
    expect(page.locator("#gantt .gantt-legend")).to_contain_text("a retry starts")

    _bar(page, "total").locator("rect.g-hit").click()
    expect(page).to_have_url(re.compile(r"/task-runs/[0-9a-f-]{36}$"))
    expect(page.locator("h1")).to_contain_text("total")

    page.go_back()
    subflow_name = (_subflow(page).locator("title").text_content() or "").split(" ")[0]
    _subflow(page).locator("rect.g-hit").click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.locator("h1")).to_have_text(subflow_name)
    expect(page.locator(".crumbs")).to_contain_text("report")
    assert console_errors == []


def test_duration_order_puts_the_longest_first(
    world: World, page: Page, console_errors: list[str]
) -> None:
    _open(page, world)
    page.locator("#gantt .gantt-order a", has_text="Duration").click()
    expect(page).to_have_url(re.compile(r"\?gantt=duration#gantt$"))
    expect(page.locator("#gantt .gantt-order a[aria-current]")).to_have_text("Duration")
    bars = _bars(page)
    expect(bars).to_have_count(6)
    seconds = [float(bars.nth(i).get_attribute("data-seconds") or 0) for i in range(6)]
    rows = [_y(bars.nth(i)) for i in range(6)]
    assert seconds == sorted(seconds, reverse=True)
    assert rows == sorted(rows) and len(set(rows)) == 6, "one row each, longest on top"
    assert console_errors == []


def test_a_run_of_more_task_runs_than_drawn_says_so(
    world: World, page: Page, console_errors: list[str]
) -> None:
    page.goto(f"{world.server.url}/runs/{world.crowded_id}")
    expect(_bars(page)).to_have_count(MAX_BARS)
    cap = page.locator("#gantt .gantt-cap")
    expect(cap).to_have_text(f"Showing {MAX_BARS} of {MAX_BARS + 20}")
    page.locator("#gantt a[href='#task-runs']").click()
    expect(page.locator("#task-runs h2")).to_be_in_viewport()
    assert console_errors == []
