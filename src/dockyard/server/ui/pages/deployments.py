"""Deployments: the list, a deployment's page, quick runs, pausing schedules."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server import masking
from dockyard.server.errors import ApiError
from dockyard.server.models import flows, runs, schedules
from dockyard.server.tables import DeploymentRow, WorkPoolRow
from dockyard.server.ui import queries
from dockyard.server.ui.pages.dashboard import run_charts
from dockyard.server.ui.web import UI, Paged, PageError, Posted, found, paged, redirect

router = APIRouter(include_in_schema=False)

LAST_RUNS = 6
UPCOMING_SHOWN = 8
COUNT_AT_MOST = 1_000


def upcoming_runs(deployment_id: uuid.UUID) -> queries.RunFilter:
    """A deployment's runs still to start: SCHEDULED, not due yet (a cancelled one is over)."""
    return queries.RunFilter(deployment_id=deployment_id, state="SCHEDULED", range="upcoming")


@router.get("/deployments")
async def deployment_list(ui: UI) -> Response:
    page: Paged[schemas.Deployment] = paged(ui)
    offline = ui.settings.worker_offline_seconds
    async with ui.db.read() as session:
        rows = await queries.deployments(session, limit=page.limit, offset=page.offset)
        page.fill([await flows.deployment_schema(session, d, offline) for d in rows])
        last = {
            d.id: await queries.list_runs(
                session, queries.RunFilter(deployment_id=d.id), limit=LAST_RUNS
            )
            for d in page.items
        }
    return ui.page("deployments/list.html", page=page, last=last)


async def read_deployment(session: AsyncSession, deployment_id: uuid.UUID) -> DeploymentRow:
    with found():
        return await flows.read_deployment(session, deployment_id)


async def pool_template(session: AsyncSession, deployment: DeploymentRow) -> dict[str, Any]:
    """The base job template of the deployment's pool (for masking secrets), or ``{}``."""
    if deployment.work_pool_id is None:
        return {}
    pool = await session.get(WorkPoolRow, deployment.work_pool_id)
    return pool.base_job_template if pool is not None else {}


@router.get("/deployments/{deployment_id}")
async def deployment_page(deployment_id: uuid.UUID, ui: UI) -> Response:
    page: Paged[schemas.FlowRun] = paged(ui)
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
        template = await pool_template(session, row)
        upcoming_filter = upcoming_runs(row.id)
        upcoming = await queries.list_runs(session, upcoming_filter, limit=UPCOMING_SHOWN)
        upcoming_count = await queries.count_runs_upto(session, upcoming_filter, COUNT_AT_MOST)
        recent = await queries.list_runs(
            session,
            queries.RunFilter(deployment_id=row.id),
            limit=page.limit,
            offset=page.offset,
        )
        over_time = await run_charts(ui, session, deployment_id=row.id)
    page.fill(recent)
    return ui.page(
        "deployments/detail.html",
        deployment=deployment,
        job_variables=masking.mask_variables(deployment.job_variables, template),
        upcoming=upcoming,
        upcoming_count=upcoming_count,
        count_at_most=COUNT_AT_MOST,
        page=page,
        notice=_NOTICES.get(ui.request.query_params.get("done", "")),
        run_charts=over_time,
    )


_NOTICES = {
    "paused": "Deployment paused: its schedules make no new runs until it is resumed.",
    "resumed": "Deployment resumed.",
    "schedule-paused": "Schedule paused; its runs that had not started were removed.",
    "schedule-resumed": "Schedule resumed.",
    "saved": "Saved: runs made from now on use the new settings.",
    "schedule-added": "Schedule added.",
    "schedule-deleted": "Schedule deleted; its runs that had not started were removed.",
}


@router.post("/deployments/{deployment_id}/quick-run")
async def quick_run(deployment_id: uuid.UUID, ui: UI, form: Posted) -> Response:
    """Run now with the deployment's own parameters."""
    async with ui.db.write() as session:
        row = await read_deployment(session, deployment_id)
        try:
            run = await runs.create_deployment_run(session, row, schemas.DeploymentRunCreate())
        except ApiError as exc:
            raise PageError(exc.status, "Run refused", exc.detail) from None
    return redirect(f"/runs/{run.id}")


@router.post("/deployments/{deployment_id}/{action}")
async def pause_or_resume(deployment_id: uuid.UUID, action: str, ui: UI, form: Posted) -> Response:
    if action not in ("pause", "resume"):
        raise PageError(404, "Not found", f"deployments have no '{action}' action")
    async with ui.db.write() as session:
        row = await read_deployment(session, deployment_id)
        await flows.update_deployment(
            session, row, schemas.DeploymentUpdate(paused=action == "pause")
        )
    done = "paused" if action == "pause" else "resumed"
    return redirect(f"/deployments/{deployment_id}?done={done}")


@router.post("/deployments/{deployment_id}/schedules/{schedule_id}/{action}")
async def pause_or_resume_schedule(
    deployment_id: uuid.UUID, schedule_id: uuid.UUID, action: str, ui: UI, form: Posted
) -> Response:
    if action not in ("pause", "resume"):
        raise PageError(404, "Not found", f"schedules have no '{action}' action")
    async with ui.db.write() as session:
        with found():
            row = await schedules.read(session, deployment_id, schedule_id)
        await schedules.set_active(session, row, action == "resume")
    done = "schedule-paused" if action == "pause" else "schedule-resumed"
    return redirect(f"/deployments/{deployment_id}?done={done}")
