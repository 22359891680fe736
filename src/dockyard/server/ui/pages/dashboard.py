"""The dashboard: the last 24 hours at a glance.

Every count on it links to the flow-run list filtered to exactly the runs it counts: the
counts and the list read through the same filter (``queries.RunFilter``).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter
from fastapi.responses import Response

from dockyard.schemas import PoolStatus
from dockyard.schemas import StateType as S
from dockyard.server.tables import utcnow
from dockyard.server.ui import queries
from dockyard.server.ui.pages.pools import pool_views
from dockyard.server.ui.web import UI

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


@router.get("/")
async def dashboard(ui: UI) -> Response:
    since = utcnow() - timedelta(hours=24)
    async with ui.db.read() as session:
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
    )
