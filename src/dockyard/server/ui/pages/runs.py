"""Flow runs: the filterable list, a run's page (live state and logs), Cancel, Run again."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import masking, orchestration
from dockyard.server.errors import ApiError, Conflict
from dockyard.server.models import flows, pools, runs
from dockyard.server.tables import FlowRow, LogRow, TaskRunRow, WorkPoolRow, utcnow
from dockyard.server.ui import queries
from dockyard.server.ui.web import UI, Paged, PageError, Posted, Ui, found, paged, redirect

router = APIRouter(include_in_schema=False)

LOG_BATCH = 500
# logs may still arrive this long after a run ended (a worker adding a crash trace)
LOG_GRACE = timedelta(seconds=10)
FILTER_STATES = [*S.__members__, "LATE"]
NOTICES = {
    "cancelling": "Cancel requested: the run's worker stops it and it ends Cancelled.",
    "cancelled": "Run cancelled before it started.",
    "not-cancellable": "This run has already ended; there is nothing to cancel.",
}


def _filters(ui: Ui) -> queries.RunFilter:
    params = ui.request.query_params
    deployment_id = params.get("deployment_id", "")
    try:
        parsed = uuid.UUID(deployment_id) if deployment_id else None
    except ValueError:
        parsed = None
    return queries.RunFilter(
        state=params.get("state", "").upper(),
        flow=params.get("flow", "").strip(),
        deployment=params.get("deployment", "").strip(),
        pool=params.get("pool", "").strip(),
        range=params.get("range", "past") if params.get("range") in queries.RANGES else "past",
        deployment_id=parsed,
    )


@router.get("/runs")
async def run_list(ui: UI) -> Response:
    page: Paged[schemas.FlowRun] = paged(ui)
    filters = _filters(ui)
    async with ui.db.read() as session:
        page.fill(await queries.list_runs(session, filters, limit=page.limit, offset=page.offset))
        flow_names = await queries.names(session, FlowRow.name)
        pool_names = await queries.names(session, WorkPoolRow.name)
    template = "runs/_rows.html" if ui.partial == "rows" else "runs/list.html"
    return ui.page(
        template,
        page=page,
        filters=filters,
        states=FILTER_STATES,
        ranges=queries.RANGES,
        flow_names=flow_names,
        pool_names=pool_names,
    )


async def _run(session: AsyncSession, run_id: uuid.UUID) -> schemas.FlowRun:
    with found():
        return await runs.run_schema(session, run_id)


def is_final(run: schemas.FlowRun) -> bool:
    return run.state in orchestration.FINAL


@router.get("/runs/{run_id}")
async def run_page(run_id: uuid.UUID, ui: UI) -> Response:
    tasks: Paged[schemas.TaskRun] = paged(ui, "tasks")
    async with ui.db.read() as session:
        run = await _run(session, run_id)
        states = await runs.states_of(session, run_id)
        rows = await session.scalars(
            select(TaskRunRow)
            .where(TaskRunRow.flow_run_id == run_id)
            .order_by(TaskRunRow.start_time, TaskRunRow.id)
            .limit(tasks.limit)
            .offset(tasks.offset)
        )
        tasks.fill([schemas.TaskRun.model_validate(r) for r in rows])
        context: dict[str, Any] = {"run": run, "states": states, "tasks": tasks}
        if ui.partial == "summary":
            return ui.page("runs/_summary.html", final=is_final(run), **context)
        template = await _pool_template(session, run.work_pool_name)
        logs = await _logs(session, run_id, 0)
    return ui.page(
        "runs/detail.html",
        final=is_final(run),
        job_variables=masking.mask_variables(run.job_variables, template),
        logs=logs,
        more=_more_logs(run, logs),
        after_id=logs[-1].id if logs else 0,
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
        **context,
    )


async def _pool_template(session: AsyncSession, pool_name: str | None) -> dict[str, Any]:
    if pool_name is None:
        return {}
    try:
        return (await pools.read_pool(session, pool_name)).base_job_template
    except ApiError:
        return {}


async def _logs(session: AsyncSession, run_id: uuid.UUID, after_id: int) -> list[schemas.Log]:
    rows = await session.scalars(
        select(LogRow)
        .where(LogRow.flow_run_id == run_id, LogRow.id > after_id)
        .order_by(LogRow.id)
        .limit(LOG_BATCH)
    )
    return [schemas.Log.model_validate(r) for r in rows]


def _more_logs(run: schemas.FlowRun, batch: list[schemas.Log]) -> str | None:
    """How the log tail asks again: at once (a full batch), every second, or never (done)."""
    if len(batch) >= LOG_BATCH:
        return "load"
    ended_long_ago = run.end_time is not None and utcnow() - run.end_time > LOG_GRACE
    if is_final(run) and ended_long_ago and not batch:
        return None
    return "every 1s"


@router.get("/runs/{run_id}/logs")
async def run_logs(run_id: uuid.UUID, ui: UI) -> Response:
    """The log lines after ``after_id``, and the poller that asks for the next ones."""
    after_id = ui.number("after_id", default=0, minimum=0)
    async with ui.db.read() as session:
        run = await _run(session, run_id)
        logs = await _logs(session, run_id, after_id)
    return ui.page(
        "runs/_logs.html",
        run=run,
        logs=logs,
        more=_more_logs(run, logs),
        after_id=logs[-1].id if logs else after_id,
    )


@router.post("/runs/{run_id}/cancel")
async def cancel_run(run_id: uuid.UUID, ui: UI, form: Posted) -> Response:
    async with ui.db.write() as session:
        with found():
            row = await runs.read_run(session, run_id, lock=True)
        try:
            orchestration.cancel(session, row, "cancelled from the UI")
        except Conflict:
            return redirect(f"/runs/{run_id}?done=not-cancellable")
        done = "cancelled" if row.state == S.CANCELLED else "cancelling"
    return redirect(f"/runs/{run_id}?done={done}")


@router.post("/runs/{run_id}/again")
async def run_again(run_id: uuid.UUID, ui: UI, form: Posted) -> Response:
    """A new run of the same deployment with the same parameters and job variables."""
    async with ui.db.write() as session:
        with found():
            row = await runs.read_run(session, run_id)
            if row.deployment_id is None:
                raise PageError(
                    409,
                    "Cannot run again",
                    "This run has no deployment (its flow was called "
                    "directly), so the server cannot start it again.",
                )
            deployment = await flows.read_deployment(session, row.deployment_id)
        body = schemas.DeploymentRunCreate(
            parameters=row.parameters, job_variables=row.job_variables
        )
        try:
            new = await runs.create_deployment_run(session, deployment, body)
        except ApiError as exc:
            raise PageError(exc.status, "Run refused", exc.detail) from None
    return redirect(f"/runs/{new.id}")
