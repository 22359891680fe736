"""Charts in the browser: runs over time on the dashboard and on a deployment's page (bars by
state, each titled with its counts, and a dot per run), the range switch, and a pool's queues
and slots against its limit.

One server for the module, on a database seeded before it starts: runs of the past cannot be
made through the API, so they are written into the tables, at times set from the hour the
module starts in (a run 10 minutes past an hour is in that hour's bar, whatever the minute).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, insert

from _support import RunningServer, ServerFactory
from dockyard.server.db import Database
from dockyard.server.tables import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)
from dockyard.server.ui import charts

HOUR, MIN = timedelta(hours=1), timedelta(minutes=1)


def _seed(path: Path) -> dict[str, Any]:
    """Two pools (``busy`` with a limit of 3 and two queues, ``quiet`` without a limit), a
    deployment on each, and runs in the hours A and B, two days and ten days ago, and late."""

    async def create() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await db.migrate()
        await db.dispose()

    asyncio.run(create())
    now = utcnow()
    top_of_hour = charts.floor_to(now, HOUR)
    a, b = top_of_hour - 3 * HOUR, top_of_hour - 5 * HOUR  # the hours of two bars
    ids = {key: uuid.uuid4() for key in ("etl", "report", "busy", "quiet", "b-default")}
    ids |= {"b-urgent": uuid.uuid4(), "q-default": uuid.uuid4(), "etl-flow": uuid.uuid4()}
    ids["report-flow"] = uuid.uuid4()
    pools = [
        {"id": ids["busy"], "name": "busy", "type": "process", "concurrency_limit": 3},
        {"id": ids["quiet"], "name": "quiet", "type": "process", "concurrency_limit": None},
    ]
    queues = [
        {"id": ids["b-default"], "work_pool_id": ids["busy"], "name": "default", "priority": 1},
        {"id": ids["b-urgent"], "work_pool_id": ids["busy"], "name": "urgent", "priority": 2},
        {"id": ids["q-default"], "work_pool_id": ids["quiet"], "name": "default", "priority": 1},
    ]
    flows = [
        {"id": ids["etl-flow"], "name": "etl", "slug": "etl"},
        {"id": ids["report-flow"], "name": "report", "slug": "report"},
    ]
    deployments = [
        {"id": ids["etl"], "flow_id": ids["etl-flow"], "name": "nightly"}
        | {"work_pool_id": ids["busy"], "work_queue_id": ids["b-default"]},
        {"id": ids["report"], "flow_id": ids["report-flow"], "name": "daily"}
        | {"work_pool_id": ids["quiet"], "work_queue_id": ids["q-default"]},
    ]

    def run(deployment: str, name: str, state: str, start: datetime | None, **more: Any) -> Any:
        etl = deployment == "etl"
        pool, queue, flow = (
            ("busy", "b-default", "etl") if etl else ("quiet", "q-default", "report")
        )
        flow += "-flow"
        row = {"id": uuid.uuid4(), "name": name, "state": state, "flow_id": ids[flow]}
        row |= {"deployment_id": ids[deployment], "work_pool_id": ids[pool]}
        row |= {"work_queue_id": ids[queue], "created": (start or now) - MIN}
        row |= {"scheduled_start": start, "start_time": start, "lease_expires": None}
        return row | {"end_time": start + 2 * MIN if start else None} | more

    runs = [
        *(run("etl", f"a-done-{i}", "COMPLETED", a + (10 + i) * MIN) for i in range(3)),
        run("etl", "a-failed", "FAILED", a + 15 * MIN, end_time=a + 20 * MIN),
        run("etl", "a-crashed", "CRASHED", a + 16 * MIN),
        *(run("report", f"r-done-{i}", "COMPLETED", a + (20 + i) * MIN) for i in range(2)),
        run("etl", "b-cancelled", "CANCELLED", b + 10 * MIN),
        run(
            "etl",
            "b-running",
            "RUNNING",
            b + 10 * MIN,
            end_time=None,
            lease_expires=now + 24 * HOUR,
        ),
        *(
            run("etl", f"c-done-{i}", "COMPLETED", top_of_hour - 48 * HOUR + i * MIN)
            for i in range(2)
        ),
        run("etl", "d-failed", "FAILED", top_of_hour - 240 * HOUR),
        *(
            run("etl", f"late-{m}", "SCHEDULED", None, scheduled_start=now - m * MIN)
            for m in (40, 25)
        ),
    ]
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for table, rows in (
            (WorkPoolRow, pools),
            (WorkQueueRow, queues),
            (FlowRow, flows),
            (DeploymentRow, deployments),
            (FlowRunRow, runs),
        ):
            conn.execute(insert(table), rows)
    engine.dispose()
    return {key: str(value) for key, value in ids.items()} | {"A": a, "B": b}


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, dict[str, Any]]]:
    base = tmp_path_factory.mktemp("charts")
    ids = _seed(base / "dockyard.db")
    factory = ServerFactory(base / "servers", f"sqlite+aiosqlite:///{base / 'dockyard.db'}")
    yield factory(), ids
    problems = factory.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def bar_titles(page: Page) -> list[str]:
    return page.locator("#run-bars g.bar > title").all_text_contents()


def bar_of(page: Page, hour: datetime) -> dict[str, Any]:
    """The bar of the hour starting at ``hour``: its title and its parts' kinds and counts."""
    prefix = charts.span_text(hour, hour + HOUR) + ":"
    found: dict[str, Any] = page.evaluate(
        """prefix => {
            const bar = [...document.querySelectorAll('#run-bars g.bar')]
                .find(g => g.querySelector('title').textContent.startsWith(prefix));
            return bar && {
                title: bar.querySelector('title').textContent,
                parts: [...bar.querySelectorAll('rect.seg')]
                    .map(r => [r.dataset.kind, +r.dataset.runs]),
            };
        }""",
        prefix,
    )
    assert found, f"no bar titled {prefix!r}"
    return found


def legend(page: Page, chart: str) -> dict[str, str]:
    """A chart's legend: each kind's count as shown."""
    items = page.locator(f".chart-scroll:has(#{chart}) + ul.chart-legend").locator("li")
    return {
        item.get_attribute("data-kind") or "": item.locator(".count").inner_text()
        for item in items.all()
    }


def test_the_dashboard_draws_runs_by_state_per_hour_and_their_durations(
    seeded: tuple[RunningServer, dict[str, Any]],
    page: Page,
    console_errors: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    server, seed = seeded
    page.goto(server.url + "/")
    expect(page.locator(".chart-range a[aria-current=page]")).to_have_text("24 h")
    edges = charts.bucket_edges(utcnow(), 24 * HOUR, HOUR)
    assert len(bar_titles(page)) == len(edges) - 1  # a bar per hour, parts of one at the ends
    a = seed["A"]
    assert bar_of(page, a) == {
        "title": charts.span_text(a, a + HOUR) + ": 7 runs (5 completed, 1 failed, 1 crashed)",
        "parts": [["completed", 5], ["failed", 1], ["crashed", 1]],
    }
    assert bar_of(page, seed["B"])["title"].endswith(": 2 runs (1 cancelled, 1 not finished)")
    assert legend(page, "run-bars") == {
        "completed": "5",
        "failed": "1",
        "crashed": "1",
        "cancelled": "1",
        "unfinished": "3",  # the running run and the two late ones
    }
    dots = page.locator("#run-dots path.run-dot")
    expect(dots).to_have_count(9)  # the runs that started in the last 24 h
    titles = page.locator("#run-dots path.run-dot > title").all_text_contents()
    failed = next(t for t in titles if t.startswith("a-failed:"))
    assert failed.startswith("a-failed: Failed, started") and failed.endswith("ran 0:05:00")
    assert any(t.startswith("b-running: Running") and t.endswith("so far") for t in titles)
    assert legend(page, "run-dots")["unfinished"] == "1"
    expect(page.locator("#run-charts .capped")).to_have_count(0)
    screenshot("charts-dashboard")
    assert console_errors == []


def test_the_range_switch_redraws_the_charts_and_survives_a_live_refresh(
    seeded: tuple[RunningServer, dict[str, Any]],
    page: Page,
    console_errors: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    server, _ = seeded
    page.goto(server.url + "/?chart=bogus")
    expect(page.locator(".chart-range a[aria-current=page]")).to_have_text("24 h")
    page.locator(".chart-range a", has_text="7 days").click()
    expect(page).to_have_url(server.url + "/?chart=7d#run-charts")
    expect(page.locator(".chart-range a[aria-current=page]")).to_have_text("7 days")
    assert legend(page, "run-bars")["completed"] == "7"  # and the two of two days ago
    assert len(bar_titles(page)) == len(charts.bucket_edges(utcnow(), 7 * 24 * HOUR, 6 * HOUR)) - 1
    expect(page.locator("#run-dots path.run-dot")).to_have_count(11)
    page.evaluate("window.scrollTo(0, 0)")  # the link went to the charts
    screenshot("charts-dashboard-7d")
    # the dashboard's counts refresh every 5 s; the charts stay, on the range chosen
    with page.expect_response(lambda r: "partial=body" in r.url, timeout=15_000):
        pass
    expect(page.locator(".chart-range a[aria-current=page]")).to_have_text("7 days")
    expect(page.locator("#run-dots path.run-dot")).to_have_count(11)
    # ... and refresh themselves on their own, over the same range
    live = page.locator("#run-charts-body").get_attribute("hx-get")
    assert live == "/?partial=charts&chart=7d"
    fragment = page.request.get(server.url + "/?chart=30d&partial=charts").text()
    assert fragment.lstrip().startswith('<div id="run-charts-body"')
    assert 'aria-current="page">30 days</a>' in fragment
    page.goto(server.url + "/?chart=30d")
    assert legend(page, "run-bars")["failed"] == "2"  # and the one of ten days ago
    assert console_errors == []


def test_a_deployments_charts_count_its_runs_and_link_to_them(
    seeded: tuple[RunningServer, dict[str, Any]],
    page: Page,
    console_errors: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    server, ids = seeded
    page.goto(f"{server.url}/deployments/{ids['etl']}")
    assert bar_of(page, ids["A"])["title"].endswith(": 5 runs (3 completed, 1 failed, 1 crashed)")
    assert legend(page, "run-bars")["completed"] == "3"
    expect(page.locator("#run-dots path.run-dot")).to_have_count(7)
    screenshot("charts-deployment")
    completed = page.locator("#run-bars a[href*='state=COMPLETED']").first
    href = f"/runs?state=COMPLETED&range=24h&deployment_id={ids['etl']}"
    assert completed.get_attribute("href") == href
    completed.click()
    expect(page).to_have_url(server.url + href)
    expect(page.locator("#run-count")).to_have_text("3 flow runs match")
    page.goto(f"{server.url}/deployments/{ids['etl']}?chart=30d")
    assert legend(page, "run-bars") == {
        "completed": "5",
        "failed": "2",
        "crashed": "1",
        "cancelled": "1",
        "unfinished": "3",
    }
    assert console_errors == []


def test_a_pools_queues_and_slots_over_the_last_hours(
    seeded: tuple[RunningServer, dict[str, Any]],
    page: Page,
    console_errors: list[str],
    screenshot: Callable[[str], Path],
) -> None:
    server, _ = seeded
    page.goto(server.url + "/work-pools/busy")
    moments = len(charts.moments(utcnow(), charts.POOL_SPAN, charts.POOL_STEP))
    for chart in ("queue-0", "queue-1", "slots"):
        expect(page.locator(f"#{chart} g.column")).to_have_count(moments)
    assert legend(page, "queue-0") == {"scheduled": "0", "late": "2"}
    assert legend(page, "queue-1") == {"scheduled": "0", "late": "0"}
    now = page.locator("#queue-0 g.column > title").last.text_content() or ""
    assert now.endswith(", queue default: 0 scheduled, 2 late")
    assert legend(page, "slots") == {"running": "1"}
    expect(page.locator("#slots .limit-line")).to_have_count(1)
    expect(page.locator("#slots .limit-label")).to_have_text("limit 3")
    screenshot("charts-work-pool")
    page.goto(server.url + "/work-pools/quiet")
    expect(page.locator("#slots g.column")).to_have_count(moments)
    expect(page.locator("#slots .limit-line")).to_have_count(0)
    expect(page.locator("#pool-charts")).to_contain_text("This pool has no concurrency limit")
    assert console_errors == []
