"""The UI's charts: their geometry from known numbers (``ui/charts.py``), the counts their
queries read on SQLite and PostgreSQL, and the indexes those queries read on SQLite.

Rows are written straight into the database: runs of the past cannot be made through the API.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.server.db import Database
from dockyard.server.models.runs import LATE_AFTER
from dockyard.server.tables import FlowRow, FlowRunRow, WorkPoolRow, WorkQueueRow
from dockyard.server.ui import charts, queries

NOW = datetime(2026, 3, 4, 15, 25, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


# ---------------------------------------------------------------- geometry


def test_buckets_fall_on_whole_hours_and_cover_exactly_the_range() -> None:
    edges = charts.bucket_edges(NOW, 24 * HOUR, HOUR)
    assert edges[0] == NOW - 24 * HOUR and edges[-1] == NOW
    assert edges[1] == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert all(e.minute == 0 and e.second == 0 for e in edges[1:-1])
    assert len(edges) - 1 == 25  # a part of an hour at each end, 23 whole hours between
    days = charts.bucket_edges(NOW, 30 * charts.DAY, charts.DAY)
    assert all(e.hour == 0 for e in days[1:-1]) and len(days) - 1 == 31


def test_an_unknown_range_is_the_default() -> None:
    assert charts.window("7d").span == timedelta(days=7)
    assert charts.window("bogus") is charts.window(None) is charts.WINDOWS["24h"]


def test_bars_stack_each_state_under_a_title_that_counts_them() -> None:
    edges = charts.bucket_edges(NOW, 24 * HOUR, HOUR)
    counts = {(3, "COMPLETED"): 5, (3, "FAILED"): 2, (3, "RUNNING"): 1, (3, "PENDING"): 1}
    counts[(24, "CRASHED")] = 1
    chart = charts.run_bars("b", edges, counts, charts.window("24h"), lambda k: f"/runs#{k.key}")
    assert len(chart.bars) == 25
    bar = chart.bars[3]
    assert bar.title == (
        "Mar 03 18:00 to 19:00 UTC: 9 runs (5 completed, 2 failed, 2 not finished)"
    )
    assert [(s.kind.key, s.count) for s in bar.segments] == [
        ("completed", 5),
        ("failed", 2),
        ("unfinished", 2),
    ]
    # stacked from the axis up, without gaps, to the height of 9 on the axis
    assert bar.segments[0].y + bar.segments[0].height == chart.plot.base
    for lower, upper in zip(bar.segments, bar.segments[1:], strict=False):
        assert upper.y + upper.height == pytest.approx(lower.y, abs=0.11)
    assert bar.segments[-1].y == chart.plot.y(9, 10)  # the axis goes to 10
    assert chart.bars[24].title == "Mar 04 15:00 to 15:25 UTC: 1 run (1 crashed)"
    assert chart.bars[0].title.endswith(": 0 runs") and chart.bars[0].segments == ()
    legend = {e.kind.key: (e.count, e.href) for e in chart.legend}
    assert legend["completed"] == (5, "/runs#completed") and legend["crashed"][0] == 1
    assert chart.total == 10
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10"]
    assert [t.label for t in chart.x_ticks][:2] == ["18:00", "21:00"]


def test_a_bar_is_as_wide_as_its_time() -> None:
    edges = charts.bucket_edges(NOW, 24 * HOUR, HOUR)
    chart = charts.run_bars("b", edges, {}, charts.window("24h"), lambda k: "")
    whole, last = chart.bars[5].width, chart.bars[-1].width
    assert last == pytest.approx((whole + 1) * 25.5 / 60 - 1, abs=0.2)  # 15:00 to 15:25:30


def test_dots_are_shaped_by_state_and_titled_with_their_run() -> None:
    started = NOW - 2 * HOUR
    runs = [
        charts.DotRun(uuid.uuid4(), "brave-otter", "COMPLETED", started, started + 5 * MIN),
        charts.DotRun(uuid.uuid4(), "calm-yak", "FAILED", started, started + 65 * SEC),
        charts.DotRun(uuid.uuid4(), "busy-bee", "RUNNING", NOW - 10 * MIN, None),
    ]
    chart = charts.duration_dots("d", runs, NOW - 24 * HOUR, NOW, charts.window("24h"), capped=True)
    assert [d.kind.key for d in chart.dots] == ["completed", "failed", "unfinished"]
    assert chart.dots[0].title == (
        "brave-otter: Completed, started Mar 04 13:25:30 UTC, ran 0:05:00"
    )
    assert chart.dots[2].title.endswith("ran 0:10:00 so far")
    assert chart.dots[0].href == f"/runs/{runs[0].id}"
    assert "M" in chart.dots[1].path and "a" not in chart.dots[1].path  # a cross, not a circle
    assert chart.capped
    assert [t.label for t in chart.y_ticks] == ["0", "5 min", "10 min"]
    shapes = {e.kind.key: e.shape for e in chart.legend}
    assert len(set(shapes.values())) == len(shapes), "each state has its own shape"


def test_columns_have_a_limit_line_and_an_axis_that_reaches_it() -> None:
    times = charts.moments(NOW, charts.POOL_SPAN, charts.POOL_STEP)
    assert len(times) == 37 and times[-1] == NOW and times[0] == NOW - 6 * HOUR
    running = [0] * 36 + [2]
    chart = charts.stacked_columns("s", "slots in use", times, [(charts.RUNNING, running)], limit=5)
    assert chart.limit is not None and chart.limit.label == "limit 5"
    assert chart.limit.y == chart.plot.y(5, 6)  # the axis goes past the limit, to 6
    assert chart.columns[-1].title == "Mar 04 15:25 UTC, slots in use: 2 running"
    assert chart.columns[0].parts == ()
    unlimited = charts.stacked_columns("s", "slots", times, [(charts.RUNNING, running)])
    assert unlimited.limit is None


def test_a_pools_charts_name_each_queue_and_sum_their_running_runs() -> None:
    times = charts.moments(NOW, charts.POOL_SPAN, charts.POOL_STEP)
    ones = queries.QueueOverTime([1] * 37, [0] * 36 + [2], [1] * 37)
    found = {uuid.UUID(int=1): ones, None: ones}
    queues = [(uuid.UUID(int=1), "default"), (uuid.UUID(int=2), "urgent")]
    pool = charts.pool_charts(times, queues, found, 4)
    assert [name for name, _ in pool.queues] == ["default", "urgent", "(no queue)"]
    last = pool.queues[0][1].columns[-1].title
    assert last == "Mar 04 15:25 UTC, queue default: 1 scheduled, 2 late"
    assert pool.slots.columns[-1].title.endswith(": 2 running")
    assert pool.span == "6 h" and pool.step == "10 min"


# ---------------------------------------------------------------- queries


def _run(flow_id: uuid.UUID, name: str, state: str, **times: Any) -> dict[str, Any]:
    row = {"id": uuid.uuid4(), "name": name, "flow_id": flow_id, "state": state}
    row |= {"work_pool_id": None, "work_queue_id": None, "deployment_id": None}
    row |= {"scheduled_start": None, "start_time": None, "end_time": None, "created": NOW}
    return row | times


async def _insert(session: AsyncSession, table: Any, rows: list[dict[str, Any]]) -> None:
    await session.execute(insert(table), rows)


async def test_runs_are_counted_per_bucket_and_state_in_the_database(db: Database) -> None:
    flow_id = uuid.uuid4()
    at = datetime(2026, 3, 4, 12, 10, tzinfo=UTC)  # in the bucket 12:00 to 13:00
    rows = [
        _run(flow_id, "done", "COMPLETED", start_time=at, end_time=at + MIN),
        _run(flow_id, "done-too", "COMPLETED", start_time=at + 40 * MIN),
        _run(flow_id, "boom", "FAILED", start_time=at + 5 * MIN),
        # never started: its end (cancelled), else its scheduled start, else its creation
        _run(flow_id, "called-off", "CANCELLED", scheduled_start=at - 5 * HOUR, end_time=at),
        _run(flow_id, "due", "SCHEDULED", scheduled_start=NOW - 20 * MIN, created=at),
        _run(flow_id, "long-ago", "COMPLETED", start_time=NOW - 30 * HOUR),
        _run(flow_id, "upcoming", "SCHEDULED", scheduled_start=NOW + HOUR),
    ]
    async with db.write() as session:
        await _insert(session, FlowRow, [{"id": flow_id, "name": "f", "slug": "f"}])
        await _insert(session, FlowRunRow, rows)
    edges = charts.bucket_edges(NOW, 24 * HOUR, HOUR)
    async with db.read() as session:
        counts = await queries.runs_per_bucket(session, edges)
        dots = await queries.started_runs(session, edges[0], NOW, limit=2)
    twelve = edges.index(datetime(2026, 3, 4, 12, 0, tzinfo=UTC))
    assert counts == {
        (twelve, "COMPLETED"): 2,
        (twelve, "FAILED"): 1,
        (twelve, "CANCELLED"): 1,
        (24, "SCHEDULED"): 1,
    }
    assert [d.name for d in dots] == ["done-too", "boom"]  # the latest two that started


async def test_a_pools_depth_and_slots_are_read_off_its_runs_times(db: Database) -> None:
    flow_id, pool_id, default, urgent = (uuid.uuid4() for _ in range(4))
    t = [NOW - 30 * MIN, NOW - 20 * MIN, NOW - 10 * MIN, NOW]
    in_default = {"work_pool_id": pool_id, "work_queue_id": default}
    in_urgent = {"work_pool_id": pool_id, "work_queue_id": urgent}
    rows = [
        # waited from t0 (late by t1), started between t1 and t2, still running
        _run(flow_id, "a", "RUNNING", scheduled_start=t[0], start_time=t[1] + MIN, **in_default),
        # due just before t2: waiting there, not late yet; then late at t3
        _run(flow_id, "b", "SCHEDULED", scheduled_start=t[2] - LATE_AFTER / 2, **in_default),
        # ran from before the first moment until between t0 and t1
        _run(
            flow_id,
            "c",
            "COMPLETED",
            scheduled_start=NOW - 2 * HOUR,
            start_time=NOW - 2 * HOUR,
            end_time=t[0] + MIN,
            **in_urgent,
        ),
        # cancelled while it waited, between t1 and t2
        _run(flow_id, "d", "CANCELLED", scheduled_start=t[0], end_time=t[1] + MIN, **in_urgent),
        # over long before: read by no moment
        _run(
            flow_id,
            "e",
            "COMPLETED",
            scheduled_start=NOW - 9 * HOUR,
            start_time=NOW - 9 * HOUR,
            end_time=NOW - 8 * HOUR,
            **in_urgent,
        ),
        # due later
        _run(flow_id, "f", "SCHEDULED", scheduled_start=NOW + HOUR, **in_default),
    ]
    async with db.write() as session:
        await _insert(session, FlowRow, [{"id": flow_id, "name": "f", "slug": "f"}])
        await _insert(session, WorkPoolRow, [{"id": pool_id, "name": "p", "type": "process"}])
        await _insert(
            session,
            WorkQueueRow,
            [
                {"id": default, "work_pool_id": pool_id, "name": "default", "priority": 1},
                {"id": urgent, "work_pool_id": pool_id, "name": "urgent", "priority": 2},
            ],
        )
        await _insert(session, FlowRunRow, rows)
    async with db.read() as session:
        found = await queries.pool_over_time(session, pool_id, t)
    assert found[default] == queries.QueueOverTime(
        scheduled=[1, 0, 1, 0], late=[0, 1, 0, 1], running=[0, 0, 1, 1]
    )
    assert found[urgent] == queries.QueueOverTime(
        scheduled=[1, 0, 0, 0], late=[0, 1, 0, 0], running=[1, 0, 0, 0]
    )


# ---------------------------------------------------------------- indexes (SQLite)

PLANS = {
    "ix_flow_runs_when": "SELECT count(*) FROM flow_runs WHERE {when} >= :a AND {when} <= :b",
    "ix_flow_runs_deployment_when": (
        "SELECT id FROM flow_runs WHERE deployment_id = :d AND {when} >= :a ORDER BY {when}"
    ),
    "ix_flow_runs_state_when": (
        "SELECT count(*) FROM flow_runs WHERE state IN ('FAILED', 'CRASHED') AND {when} >= :a"
    ),
    "ix_flow_runs_pool_state": (
        "SELECT count(*) FROM flow_runs WHERE work_pool_id = :d AND state IN ('RUNNING')"
    ),
}


@pytest.mark.parametrize("migrated", [True, False], ids=["migrated", "created"])
async def test_the_charts_queries_read_their_indexes_on_sqlite(
    tmp_path: Any, migrated: bool
) -> None:
    """SQLite cannot reflect indexes on expressions, so the schema comparison of
    test_migrations cannot see them: here a database migrated from the first revision and one
    created at once both have them, and the queries' plans read them."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}")
    try:
        if migrated:
            from dockyard.server.migrations.runner import upgrade

            async with db.write_engine.begin() as conn:
                await conn.run_sync(upgrade)
        else:
            await db.migrate()
        when = "coalesce(start_time, end_time, scheduled_start, created)"
        params = {"a": "2026-01-01", "b": "2026-02-01", "d": "x"}
        async with db.read() as session:
            for index, sql in PLANS.items():
                plan = await session.execute(
                    text("EXPLAIN QUERY PLAN " + sql.format(when=when)), params
                )
                details = " ".join(row[3] for row in plan)
                assert f"USING INDEX {index}" in details or f"COVERING INDEX {index}" in details
    finally:
        await db.dispose()


def test_names_in_a_chart_are_escaped() -> None:
    from dockyard.server.ui import rendering

    hostile = '<script>alert("x")</script>&'
    run = charts.DotRun(uuid.uuid4(), hostile, "COMPLETED", NOW - HOUR, NOW - HOUR + MIN)
    chart = charts.duration_dots(
        "d", [run], NOW - 24 * HOUR, NOW, charts.DEFAULT_WINDOW, capped=False
    )
    html = str(rendering.environment().get_template("charts/macros.html").module.dots(chart))  # type: ignore[attr-defined]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;: Completed" in html
