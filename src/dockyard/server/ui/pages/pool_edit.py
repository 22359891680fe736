"""Edit a work pool (its description, concurrency limit and the defaults of its job
variables, or its whole base job template as JSON) and delete one.

The form is the new-pool form's settings part (:mod:`.pool_create`), started from the pool's
own template; it goes through ``pools.update_pool``, as ``PATCH /api/work-pools/NAME`` does.
Deleting asks first, on a page that names what goes with the pool; the API's refusal (a
deployment still uses it) is shown there, and no button is offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.schemas import StateType as S
from dockyard.server.errors import ApiError, Conflict
from dockyard.server.models import pools
from dockyard.server.tables import DeploymentRow, FlowRow, FlowRunRow, WorkPoolRow
from dockyard.server.ui import forms
from dockyard.server.ui.pages.pool_create import (
    PoolForm,
    blank,
    field_of,
    limit_of,
    read_settings,
    template_of,
)
from dockyard.server.ui.web import UI, Posted, Ui, found, redirect

router = APIRouter(include_in_schema=False)


async def count(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    """How many runs match ``where``."""
    return int(
        await session.scalar(select(func.count()).select_from(FlowRunRow).where(*where)) or 0
    )


def _link(name: str) -> str:
    return f"/work-pools/{path_segment(name)}"


async def _pool(ui: Ui, name: str) -> WorkPoolRow:
    async with ui.db.read() as session:
        with found():
            return await pools.read_pool(session, name)


def _show(ui: Ui, pool: WorkPoolRow, form: PoolForm, status: int = 200) -> Response:
    return ui.page(
        "pools/edit.html",
        status=status,
        pool=pool,
        link=_link(pool.name),
        form=form,
        fields=form.fields(),
    )


@router.get("/work-pools/{name}/edit")
async def edit_pool_form(name: str, ui: UI) -> Response:
    forms.admin_only(ui)
    pool = await _pool(ui, name)
    form = _start(pool)
    form.description = pool.description or ""
    form.concurrency_limit = "" if pool.concurrency_limit is None else str(pool.concurrency_limit)
    return _show(ui, pool, form)


def _start(pool: WorkPoolRow) -> PoolForm:
    form = blank(pool.type, pool.base_job_template)
    form.name, form.editing = pool.name, True
    return form


@router.post("/work-pools/{name}/edit")
async def edit_pool(name: str, ui: UI, posted: Posted) -> Response:
    """Every refusal at once: the form's own, then the API's (``pools.update_pool``, in a
    transaction rolled back when anything was refused)."""
    pool = await _pool(ui, name)
    form = _start(pool)
    read_settings(posted, form)
    template = template_of(form)
    limit = limit_of(form)
    values: dict[str, Any] = {"description": form.description}
    if template is not None:
        values["base_job_template"] = template
    if "concurrency_limit" not in form.errors:
        values.update(concurrency_limit=limit, clear_concurrency_limit=limit is None)
    body = forms.checked(schemas.WorkPoolUpdate, values, form.errors, field_of)
    # a form refused already still goes through the API's checks of what it could read
    check = body or forms.partial(schemas.WorkPoolUpdate, values, form.errors, field_of)

    async def work(session: AsyncSession) -> None:
        with found():
            await pools.read_pool(session, name)
        if check is not None:
            try:
                await pools.update_pool(session, name, check)
            except ApiError as exc:
                forms.api_refusal(exc, form.errors, field_of)
        if form.refused or body is None:
            raise forms.Refused

    try:
        await ui.db.write_retrying(work)
    except forms.Refused:
        return _show(ui, pool, form, status=422)
    return redirect(_link(name))


# ---------------------------------------------------------------- delete


@dataclass
class PoolCascade:
    """What deleting a pool takes with it, and what stops it."""

    queues: list[str]
    workers: int
    waiting_runs: int  # SCHEDULED: cancelled
    other_runs: int  # keep their history
    deployments: list[tuple[str, str, str]]  # (flow, name, id) of those using the pool


async def pool_cascade(session: AsyncSession, pool: WorkPoolRow) -> PoolCascade:
    users = await session.execute(
        select(FlowRow.name, DeploymentRow.name, DeploymentRow.id)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .where(DeploymentRow.work_pool_id == pool.id)
        .order_by(FlowRow.name, DeploymentRow.name)
    )
    in_pool = FlowRunRow.work_pool_id == pool.id
    return PoolCascade(
        queues=[q.name for q in await pools.list_queues(session, pool)],
        workers=len(await pools.list_workers(session, pool)),
        waiting_runs=await count(session, in_pool, FlowRunRow.state == S.SCHEDULED),
        other_runs=await count(session, in_pool, FlowRunRow.state != S.SCHEDULED),
        deployments=[(flow, name, str(id_)) for flow, name, id_ in users],
    )


async def _delete_page(ui: Ui, name: str, refusal: str = "", status: int = 200) -> Response:
    async with ui.db.read() as session:
        with found():
            pool = await pools.read_pool(session, name)
        cascade = await pool_cascade(session, pool)
    return ui.page(
        "pools/delete.html",
        status=status,
        pool=pool,
        link=_link(pool.name),
        cascade=cascade,
        refusal=refusal,
    )


@router.get("/work-pools/{name}/delete")
async def delete_pool_page(name: str, ui: UI) -> Response:
    forms.admin_only(ui)
    return await _delete_page(ui, name)


@router.post("/work-pools/{name}/delete")
async def delete_pool(name: str, ui: UI, posted: Posted) -> Response:
    try:
        with found():
            await ui.db.write_retrying(lambda session: pools.delete_pool(session, name))
    except Conflict as exc:
        return await _delete_page(ui, name, refusal=exc.detail, status=409)
    return redirect("/work-pools")
