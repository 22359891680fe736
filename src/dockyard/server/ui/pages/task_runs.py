"""A task run's page: its states with their times, its error in full, and its own logs."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import Response

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server.tables import TaskRunRow
from dockyard.server.ui.pages import run_logs
from dockyard.server.ui.web import UI, PageError

router = APIRouter(include_in_schema=False)


def task_states(task: schemas.TaskRun) -> list[tuple[str, datetime | None]]:
    """The states a task run went through, with their times, as far as its record tells:
    a task run is recorded once, when it ends, with its start and end."""
    states: list[tuple[str, datetime | None]] = []
    if task.start_time is not None and not task.cached:
        states.append((S.RUNNING, task.start_time))
    if task.state != S.RUNNING or not states:
        states.append((task.state, task.end_time))
    return states


@router.get("/task-runs/{task_run_id}")
async def task_run_page(task_run_id: uuid.UUID, ui: UI) -> Response:
    log_filter = replace(run_logs.LogFilter.read(ui), task=str(task_run_id))
    async with ui.db.read() as session:
        row = await session.get(TaskRunRow, task_run_id)
        if row is None:
            raise PageError(
                404,
                "Task run not found",
                f"There is no task run with the id “{task_run_id}”: a task run is recorded "
                "once it ends, so a task still running has no page yet.",
            )
        task = schemas.TaskRun.model_validate(row)
        run = await run_logs.flow_run(session, task.flow_run_id)
        batch = await run_logs.read_batch(session, run.id, log_filter)
    return ui.page(
        "runs/task.html",
        task=task,
        task_states=task_states(task),
        levels=run_logs.LEVELS,
        task_choices=[],
        fixed_task=task.id,
        page_path=f"/task-runs/{task.id}",
        **run_logs.tail_context(run, batch, log_filter),
    )
