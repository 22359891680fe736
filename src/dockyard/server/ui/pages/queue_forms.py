"""A pool's work queues: create one, edit one (description, priority, concurrency limit,
paused), pause or resume it, and delete it.

Each form goes through the functions the API's queue routes call (``pools.create_queue``,
``update_queue``, ``delete_queue``), in a transaction rolled back when anything was
refused, so the form shows its own refusals and the API's together. Deleting asks first,
naming the deployments and runs that move to the pool's ``default`` queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.schemas import StateType as S
from dockyard.server.errors import ApiError, Conflict
from dockyard.server.models import pools
from dockyard.server.tables import DeploymentRow, FlowRunRow, WorkPoolRow, WorkQueueRow
from dockyard.server.ui import forms
from dockyard.server.ui.pages.pool_edit import count
from dockyard.server.ui.web import UI, Form, PageError, Posted, Ui, found, redirect

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("name", "description", "priority", "concurrency_limit", "paused")


@dataclass
class QueueForm:
    """What was typed, and what was wrong with it, by field."""

    name: str = ""
    description: str = ""
    priority: str = ""
    concurrency_limit: str = ""
    paused: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def _field_of(where: str) -> str:
    return forms.form_field(where, FORM_FIELDS)


def _queues_link(pool: str) -> str:
    return f"/work-pools/{path_segment(pool)}/queues"


def _queue_link(pool: str, queue: str) -> str:
    return f"{_queues_link(pool)}/{path_segment(queue)}"


def _show(
    ui: Ui, pool: WorkPoolRow, form: QueueForm, queue: WorkQueueRow | None, status: int = 200
) -> Response:
    link = _queue_link(pool.name, queue.name) if queue else ""
    deletable = queue is not None and queue.name != pools.DEFAULT_QUEUE
    return ui.page(
        "pools/queue_form.html",
        status=status,
        pool=pool,
        pool_link=f"/work-pools/{path_segment(pool.name)}",
        queues_link=_queues_link(pool.name),
        action=f"{link}/edit" if queue else f"{_queues_link(pool.name)}/new",
        delete_link=f"{link}/delete" if deletable else "",
        queue=queue,
        form=form,
    )


def _read(posted: Form) -> tuple[QueueForm, dict[str, Any]]:
    """The form as typed, and the request body's values that could be read."""
    form = QueueForm(
        name=posted.get("name").strip(),
        description=posted.get("description").strip(),
        priority=posted.get("priority").strip(),
        concurrency_limit=posted.get("concurrency_limit").strip(),
        paused=posted.optional("paused") is not None,
    )
    values: dict[str, Any] = {"description": form.description or None, "paused": form.paused}
    priority = forms.whole_number(form.priority, "priority", form.errors)
    if priority is not None:
        values["priority"] = priority
    limit = forms.whole_number(form.concurrency_limit, "concurrency_limit", form.errors)
    if "concurrency_limit" not in form.errors:
        values["concurrency_limit"] = limit
    return form, values


# ---------------------------------------------------------------- create


@router.get("/work-pools/{name}/queues/new")
async def new_queue_form(name: str, ui: UI) -> Response:
    forms.admin_only(ui)
    async with ui.db.read() as session:
        with found():
            pool = await pools.read_pool(session, name)
    return _show(ui, pool, QueueForm(), None)


@router.post("/work-pools/{name}/queues/new")
async def create_queue(name: str, ui: UI, posted: Posted) -> Response:
    form, values = _read(posted)
    values["name"] = form.name
    body = forms.checked(schemas.WorkQueueCreate, values, form.errors, _field_of)
    # a form refused already still goes through the API's checks of what it could read
    check = body or forms.partial(schemas.WorkQueueCreate, values, form.errors, _field_of)

    async def work(session: AsyncSession) -> None:
        with found():
            pool = await pools.read_pool(session, name, lock=True)
        await _api_checks(
            session, form, pools.create_queue(session, pool, check) if check else None
        )
        if body is None:
            raise forms.Refused

    return await _saved(ui, name, form, None, work)


async def _api_checks(session: AsyncSession, form: QueueForm, change: Any) -> None:
    """Run the API's ``change`` (a coroutine, or None when nothing the form read makes a
    request); raise ``Refused`` when anything was refused, rolling it back."""
    if change is not None:
        try:
            await change
        except ApiError as exc:
            forms.api_refusal(exc, form.errors, _field_of)
    if form.errors or change is None:
        raise forms.Refused


async def _saved(ui: Ui, name: str, form: QueueForm, queue: str | None, work: Any) -> Response:
    try:
        await ui.db.write_retrying(work)
    except forms.Refused:
        async with ui.db.read() as session:
            with found():
                pool = await pools.read_pool(session, name)
                row = await pools.read_queue(session, pool, queue) if queue else None
        return _show(ui, pool, form, row, status=422)
    return redirect(_queues_link(name))


# ---------------------------------------------------------------- edit


async def _queue(ui: Ui, name: str, queue: str) -> tuple[WorkPoolRow, WorkQueueRow]:
    async with ui.db.read() as session:
        with found():
            pool = await pools.read_pool(session, name)
            return pool, await pools.read_queue(session, pool, queue)


@router.get("/work-pools/{name}/queues/{queue}/edit")
async def edit_queue_form(name: str, queue: str, ui: UI) -> Response:
    forms.admin_only(ui)
    pool, row = await _queue(ui, name, queue)
    form = QueueForm(
        name=row.name,
        description=row.description or "",
        priority=str(row.priority),
        concurrency_limit="" if row.concurrency_limit is None else str(row.concurrency_limit),
        paused=row.paused,
    )
    return _show(ui, pool, form, row)


@router.post("/work-pools/{name}/queues/{queue}/edit")
async def edit_queue(name: str, queue: str, ui: UI, posted: Posted) -> Response:
    form, values = _read(posted)
    form.name = queue
    if "concurrency_limit" in values and values["concurrency_limit"] is None:
        values["clear_concurrency_limit"] = True
    if values["description"] is None:
        values["description"] = ""  # the API keeps a description it gets no value for
    body = forms.checked(schemas.WorkQueueUpdate, values, form.errors, _field_of)
    check = body or forms.partial(schemas.WorkQueueUpdate, values, form.errors, _field_of)

    async def work(session: AsyncSession) -> None:
        with found():
            pool = await pools.read_pool(session, name, lock=True)
            await pools.read_queue(session, pool, queue)
        await _api_checks(
            session, form, pools.update_queue(session, pool, queue, check) if check else None
        )
        if body is None:
            raise forms.Refused

    return await _saved(ui, name, form, queue, work)


# ---------------------------------------------------------------- delete


@dataclass(frozen=True)
class QueueCascade:
    """What deleting a queue moves to the pool's default queue."""

    deployments: int
    waiting_runs: int  # not started yet: a worker of the default queue takes them
    other_runs: int  # keep their history, now under the default queue


async def queue_cascade(session: AsyncSession, queue: WorkQueueRow) -> QueueCascade:
    in_queue = FlowRunRow.work_queue_id == queue.id
    deployments = await session.scalar(
        select(func.count())
        .select_from(DeploymentRow)
        .where(DeploymentRow.work_queue_id == queue.id)
    )
    return QueueCascade(
        deployments=int(deployments or 0),
        waiting_runs=await count(session, in_queue, FlowRunRow.state == S.SCHEDULED),
        other_runs=await count(session, in_queue, FlowRunRow.state != S.SCHEDULED),
    )


async def _delete_page(
    ui: Ui, name: str, queue: str, refusal: str = "", status: int = 200
) -> Response:
    async with ui.db.read() as session:
        with found():
            pool = await pools.read_pool(session, name)
            row = await pools.read_queue(session, pool, queue)
        cascade = await queue_cascade(session, row)
    if row.name == pools.DEFAULT_QUEUE and not refusal:
        refusal = f"the '{pools.DEFAULT_QUEUE}' queue of pool '{pool.name}' cannot be deleted"
    return ui.page(
        "pools/queue_delete.html",
        status=status,
        pool=pool,
        queue=row,
        queues_link=_queues_link(pool.name),
        action=_queue_link(pool.name, row.name) + "/delete",
        cascade=cascade,
        refusal=refusal,
        default_queue=pools.DEFAULT_QUEUE,
    )


@router.get("/work-pools/{name}/queues/{queue}/delete")
async def delete_queue_page(name: str, queue: str, ui: UI) -> Response:
    forms.admin_only(ui)
    return await _delete_page(ui, name, queue)


@router.post("/work-pools/{name}/queues/{queue}/delete")
async def delete_queue(name: str, queue: str, ui: UI, posted: Posted) -> Response:
    async def work(session: AsyncSession) -> None:
        pool = await pools.read_pool(session, name, lock=True)
        await pools.delete_queue(session, pool, queue)

    try:
        with found():
            await ui.db.write_retrying(work)
    except Conflict as exc:
        return await _delete_page(ui, name, queue, refusal=exc.detail, status=409)
    return redirect(_queues_link(name))


# a route of its own last: `{action}` would take `edit` and `delete` too
@router.post("/work-pools/{name}/queues/{queue}/{action}")
async def pause_or_resume_queue(
    name: str, queue: str, action: str, ui: UI, posted: Posted
) -> Response:
    if action not in ("pause", "resume"):
        raise PageError(404, "Not found", f"work queues have no '{action}' action")
    body = schemas.WorkQueueUpdate(paused=action == "pause")

    async def work(session: AsyncSession) -> None:
        pool = await pools.read_pool(session, name, lock=True)
        await pools.update_queue(session, pool, queue, body)

    with found():
        await ui.db.write_retrying(work)
    return redirect(_queues_link(name))
