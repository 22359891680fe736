"""Work pools: the list (live) and a pool's page with its tabs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.schemas import StateType as S
from dockyard.server import masking
from dockyard.server.models import flows, pools
from dockyard.server.notify import wake
from dockyard.server.tables import WorkPoolRow, WorkQueueRow, utcnow
from dockyard.server.ui import charts, queries, rendering
from dockyard.server.ui.web import UI, Paged, PageError, Posted, Ui, found, paged, redirect
from dockyard.settings import Settings

router = APIRouter(include_in_schema=False)

# The Runs tab's state filter: each state, late runs, and the failed and crashed ones together.
RUN_STATES = {
    **{str(s): rendering.state_label(s) for s in S},
    "LATE": "Late",
    ",".join(queries.FAILED): "Failed or crashed",
}
UPCOMING_SHOWN = 5
# upcoming runs are counted up to here: the tab refreshes itself every few seconds
COUNT_AT_MOST = 1_000

TABS = {
    "details": "Details",
    "queues": "Queues",
    "workers": "Workers",
    "runs": "Runs",
    "deployments": "Deployments",
}


@dataclass(frozen=True)
class PoolView:
    """A pool as its row or card shows it."""

    name: str
    type: str
    description: str | None
    status: str
    last_polled: datetime | None
    live: int
    limit: int | None
    paused: bool


async def pool_views(
    session: AsyncSession, rows: Sequence[WorkPoolRow], settings: Settings
) -> list[PoolView]:
    live = await queries.live_runs_by_pool(session, [p.id for p in rows])
    views = []
    for row in rows:
        pool = await pools.pool_schema(session, row, settings.worker_offline_seconds)
        views.append(
            PoolView(
                name=pool.name,
                type=pool.type,
                description=pool.description,
                status=pool.status,
                last_polled=pool.last_polled,
                live=live[row.id],
                limit=pool.concurrency_limit,
                paused=pool.paused,
            )
        )
    return views


@router.get("/work-pools")
async def pool_list(ui: UI) -> Response:
    page: Paged[PoolView] = paged(ui)
    async with ui.db.read() as session:
        rows = await queries.pools(session, limit=page.limit, offset=page.offset)
        page.fill(await pool_views(session, rows, ui.settings))
    template = "pools/_rows.html" if ui.partial == "rows" else "pools/list.html"
    return ui.page(template, page=page)


@router.get("/work-pools/{name}")
async def pool_page(name: str, ui: UI) -> Response:
    return await _pool_page(ui, name, "details")


@router.get("/work-pools/{name}/{tab}")
async def pool_tab(name: str, tab: str, ui: UI) -> Response:
    """Each tab has its own URL: ``/work-pools/NAME/workers`` is the Workers tab."""
    if tab not in TABS:
        raise PageError(404, "Not found", f"work pools have no '{tab}' tab")
    return await _pool_page(ui, name, tab)


async def _pool_page(ui: Ui, name: str, tab: str) -> Response:
    async with ui.db.read() as session:
        with found():
            row = await pools.read_pool(session, name)
        pool = (await pool_views(session, [row], ui.settings))[0]
        context = await TAB_LOADERS[tab](ui, session, row) if ui.partial != "header" else {}
    if ui.partial == "header":
        return ui.page("pools/_header.html", pool=pool)
    if ui.partial == "tab":
        return ui.page(f"pools/_tab_{tab}.html", pool=pool, tab=tab, **context)
    return ui.page("pools/detail.html", pool=pool, tab=tab, tabs=TABS, **context)


async def _details(ui: Ui, session: AsyncSession, row: WorkPoolRow) -> dict[str, Any]:
    template = masking.mask_template(row.base_job_template)
    variables = template.get("variables", {}).get("properties", {})
    queues = await pools.list_queues(session, row)
    moments = charts.moments(utcnow(), charts.POOL_SPAN, charts.POOL_STEP)
    over_time = await queries.pool_over_time(session, row.id, moments)
    return {
        "template": template,
        "variables": variables,
        "queue_count": len(queues),
        "pool_charts": charts.pool_charts(
            moments, [(q.id, q.name) for q in queues], over_time, row.concurrency_limit
        ),
    }


async def _queues(ui: Ui, session: AsyncSession, row: WorkPoolRow) -> dict[str, Any]:
    page: Paged[WorkQueueRow] = paged(ui)
    queues = await pools.list_queues(session, row)
    page.fill(queues[page.offset : page.offset + page.limit])
    return {"page": page, **await queries.queue_counts(session, row.id)}


async def _workers(ui: Ui, session: AsyncSession, row: WorkPoolRow) -> dict[str, Any]:
    page: Paged[schemas.Worker] = paged(ui)
    rows = (await pools.list_workers(session, row))[page.offset : page.offset + page.limit]
    offline = ui.settings.worker_offline_seconds
    page.fill([pools.worker_schema(w, row.name, offline) for w in rows])
    return {"page": page}


async def _runs(ui: Ui, session: AsyncSession, row: WorkPoolRow) -> dict[str, Any]:
    """The pool's past and running runs, newest first (filtered by state), and apart from
    them the next runs due."""
    page: Paged[schemas.FlowRun] = paged(ui)
    state = ui.request.query_params.get("state", "").upper()
    state = state if state in RUN_STATES else ""
    filters = queries.RunFilter(pool=row.name, state=state, range="past")
    page.fill(await queries.list_runs(session, filters, limit=page.limit, offset=page.offset))
    upcoming = queries.RunFilter(pool=row.name, state=str(S.SCHEDULED), range="upcoming")
    return {
        "page": page,
        "state_filter": state,
        "states": RUN_STATES,
        "upcoming": await queries.list_runs(session, upcoming, limit=UPCOMING_SHOWN),
        "upcoming_count": await queries.count_runs_upto(session, upcoming, COUNT_AT_MOST),
        "count_at_most": COUNT_AT_MOST,
        "live_url": ui.url_with(partial="tab"),
    }


async def _deployments(ui: Ui, session: AsyncSession, row: WorkPoolRow) -> dict[str, Any]:
    page: Paged[schemas.Deployment] = paged(ui)
    rows = await queries.deployments(session, limit=page.limit, offset=page.offset, pool_id=row.id)
    offline = ui.settings.worker_offline_seconds
    page.fill([await flows.deployment_schema(session, d, offline) for d in rows])
    return {"page": page}


TAB_LOADERS = {
    "details": _details,
    "queues": _queues,
    "workers": _workers,
    "runs": _runs,
    "deployments": _deployments,
}


@router.post("/work-pools/{name}/{action}")
async def pause_or_resume(name: str, action: str, ui: UI, form: Posted) -> Response:
    if action not in ("pause", "resume"):
        raise PageError(404, "Not found", f"work pools have no '{action}' action")
    async with ui.db.write() as session:
        with found():
            await pools.update_pool(session, name, schemas.WorkPoolUpdate(paused=action == "pause"))
        wake(session)  # a resumed pool's runs may be claimed at once
    return redirect(f"/work-pools/{path_segment(name)}")
