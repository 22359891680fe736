"""Forget a worker of a pool: only an offline one (an online worker would be recorded again
at its next poll). Asks first, on a page that says what goes with it; goes through what
``DELETE /api/work-pools/NAME/workers/WORKER`` does.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.server.models import pools
from dockyard.server.tables import FlowRunRow, WorkerRow
from dockyard.server.ui import forms
from dockyard.server.ui.pages.pool_edit import count
from dockyard.server.ui.web import UI, Posted, Ui, found, redirect

router = APIRouter(include_in_schema=False)


def _workers_link(pool: str) -> str:
    return f"/work-pools/{path_segment(pool)}/workers"


def still_online(worker: schemas.Worker) -> str:
    """Why ``worker`` cannot be forgotten now, or ``""``."""
    if worker.status == schemas.WorkerStatus.ONLINE:
        return (
            f"worker '{worker.name}' is online (it polled the pool moments ago): only an "
            "offline worker can be forgotten; stop it first"
        )
    return ""


async def _read(
    session: AsyncSession, ui: Ui, name: str, worker: str
) -> tuple[WorkerRow, schemas.Worker]:
    with found():
        pool = await pools.read_pool(session, name)
        row = await pools.read_worker(session, pool, worker)
    return row, pools.worker_schema(row, pool.name, ui.settings.worker_offline_seconds)


async def _page(ui: Ui, name: str, worker: str, status: int = 200) -> Response:
    async with ui.db.read() as session:
        row, shown = await _read(session, ui, name, worker)
        runs = await count(session, FlowRunRow.worker_id == row.id)
    return ui.page(
        "pools/worker_forget.html",
        status=status,
        pool_name=name,
        worker=shown,
        runs=runs,
        refusal=still_online(shown),
        workers_link=_workers_link(name),
        action=f"{_workers_link(name)}/{path_segment(worker)}/forget",
    )


@router.get("/work-pools/{name}/workers/{worker}/forget")
async def forget_worker_page(name: str, worker: str, ui: UI) -> Response:
    forms.admin_only(ui)
    return await _page(ui, name, worker)


@router.post("/work-pools/{name}/workers/{worker}/forget")
async def forget_worker(name: str, worker: str, ui: UI, posted: Posted) -> Response:
    async def work(session: AsyncSession) -> bool:
        row, shown = await _read(session, ui, name, worker)
        if still_online(shown):
            return False
        await session.delete(row)
        return True

    if not await ui.db.write_retrying(work):
        return await _page(ui, name, worker, status=409)
    return redirect(_workers_link(name))
