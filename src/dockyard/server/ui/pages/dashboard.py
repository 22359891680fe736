"""The dashboard: the last 24 hours at a glance, and runs over time (also on a deployment's
page: :func:`run_charts`).

Every count on it links to the flow-run list filtered to exactly the runs it counts: the
counts and the list read through the same filter (``queries.RunFilter``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import PoolStatus
from dockyard.schemas import StateType as S
from dockyard.server.tables import utcnow
from dockyard.server.ui import charts, queries
from dockyard.server.ui.pages.pools import pool_views
from dockyard.server.ui.web import UI, Ui

router = APIRouter(include_in_schema=False)

STATE_ORDER = [
    S.COMPLETED,
    S.RUNNING,
    S.PENDING,
    S.SCHEDULED,
    S.PAUSED,
    S.AWAITING_RETRY,
    S.CANCELLING,
    S.CANCELLED,
    S.FAILED,
    S.CRASHED,
]
LATE = queries.RunFilter(state="LATE", range="all")
# the late runs are counted up to here: the page refreshes itself every few seconds
COUNT_AT_MOST = 1_000
# the durations chart draws the latest runs of its range, up to this many
DOTS_AT_MOST = 500


@dataclass(frozen=True)
class RunCharts:
    """Runs over time: bars by state and each run's duration, over the window chosen with
    ``?chart=24h|7d|30d`` (``choices``: each window and the URL of the page showing it)."""

    window: charts.Window
    choices: list[tuple[charts.Window, str]]
    bars: charts.BarChart
    dots: charts.DotChart
    dots_at_most: int
    live_url: str = ""  # the charts alone, which refresh themselves (the dashboard's)


async def run_charts(
    ui: Ui, session: AsyncSession, *, deployment_id: uuid.UUID | None = None, live: bool = False
) -> RunCharts:
    """The runs of the window (of one deployment, or all), counted by the database per bar;
    the dots are the latest :data:`DOTS_AT_MOST` runs that started in it."""
    window = charts.window(ui.request.query_params.get("chart"))
    now = utcnow()
    edges = charts.bucket_edges(now, window.span, window.step)
    counts = await queries.runs_per_bucket(session, edges, deployment_id=deployment_id)
    rows = await queries.started_runs(
        session, edges[0], now, limit=DOTS_AT_MOST + 1, deployment_id=deployment_id
    )
    dots = [charts.DotRun(r.id, r.name, r.state, r.start_time, r.end_time) for r in rows]

    def runs_of(kind: charts.Kind) -> str:
        query = {"state": ",".join(kind.states), "range": window.key}
        if deployment_id is not None:
            query["deployment_id"] = str(deployment_id)
        return "/runs?" + urlencode(query, safe=",")

    return RunCharts(
        window=window,
        choices=[(w, ui.url_with(chart=w.key) + "#run-charts") for w in charts.WINDOWS.values()],
        bars=charts.run_bars("run-bars", edges, counts, window, runs_of),
        dots=charts.duration_dots(
            "run-dots", dots[:DOTS_AT_MOST], edges[0], now, window, capped=len(dots) > DOTS_AT_MOST
        ),
        dots_at_most=DOTS_AT_MOST,
        live_url=ui.url_with(partial="charts", chart=window.key) if live else "",
    )


@router.get("/")
async def dashboard(ui: UI) -> Response:
    if ui.partial == "charts":
        async with ui.db.read() as session:
            charts_only = await run_charts(ui, session, live=True)
        return ui.page("charts/_runs.html", run_charts=charts_only)
    since = utcnow() - timedelta(hours=24)
    async with ui.db.read() as session:
        # the body's refresh keeps the charts as they are: they refresh on their own
        found = await run_charts(ui, session, live=True) if ui.partial != "body" else None
        counts = await queries.state_counts(session, since)
        failing = await queries.failing_deployments(session, since, limit=10)
        late = await queries.list_runs(session, LATE, limit=10)
        late_count = await queries.count_runs_upto(session, LATE, COUNT_AT_MOST)
        recent = await queries.list_runs(session, queries.RunFilter(range="24h"), limit=10)
        pools = await pool_views(session, await queries.pools(session, limit=200), ui.settings)
    states = [(str(s), counts.get(str(s), 0)) for s in STATE_ORDER]
    return ui.page(
        "dashboard.html" if ui.partial != "body" else "dashboard_body.html",
        states=states,
        total=sum(counts.values()),
        failed=sum(counts.get(s, 0) for s in queries.FAILED),
        failed_states=",".join(queries.FAILED),
        peak=max([c for _, c in states] + [1]),
        failing=failing,
        late=late,
        late_count=late_count,
        count_at_most=COUNT_AT_MOST,
        recent=recent,
        unready=[p for p in pools if p.status != PoolStatus.READY],
        pool_count=len(pools),
        run_charts=found,
    )
