"""A deployment's schedules: add one (a cron expression, an interval or an RRule, in a time
zone) and delete one. Pausing and resuming are on the deployment's page (:mod:`.deployments`).

Adding goes through what ``POST /api/deployments/ID/schedules`` does: the model's checks,
``schedules.validate`` (off the event loop), then ``schedules.add``. The API stops at its
first refusal; the form asks again without a refused time zone or anchor, so that a bad
zone and a bad cron expression show together. Deleting asks first, naming the runs that go.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server.errors import ApiError
from dockyard.server.models import flows, schedules
from dockyard.server.tables import FlowRunRow
from dockyard.server.ui import forms
from dockyard.server.ui.pages.deployments import read_deployment
from dockyard.server.ui.pages.pool_edit import count
from dockyard.server.ui.web import UI, Form, Posted, Ui, found, redirect
from dockyard.settings import Settings

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("cron", "interval", "rrule", "timezone", "anchor_date", "active")
# what the API's refusals name (``schedules.cron``) is the form's field of that name; a
# refusal of the whole schedule ("exactly one of ...") goes beside the three kinds
ALIASES = {"schedules": "when"}
# a refused value the API's checks can do without, to look for more refusals behind it
WITHOUT: dict[str, dict[str, Any]] = {
    "schedules.timezone": {"timezone": "UTC"},
    "schedules.anchor_date": {"anchor_date": None},
}


@dataclass
class ScheduleForm:
    """What was typed, and what was wrong with it, by field."""

    cron: str = ""
    interval: str = ""
    rrule: str = ""
    timezone: str = "UTC"
    anchor_date: str = ""
    active: bool = True
    errors: dict[str, str] = field(default_factory=dict)


def _field_of(where: str) -> str:
    head, _, rest = where.partition(".")
    return forms.form_field(rest if head == "schedules" and rest else where, FORM_FIELDS, ALIASES)


async def _show(
    ui: Ui, deployment_id: uuid.UUID, form: ScheduleForm, status: int = 200
) -> Response:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
    return ui.page("deployments/schedule_new.html", status=status, deployment=deployment, form=form)


@router.get("/deployments/{deployment_id}/schedules/new")
async def new_schedule_form(deployment_id: uuid.UUID, ui: UI) -> Response:
    forms.admin_only(ui)
    return await _show(ui, deployment_id, ScheduleForm())


@router.post("/deployments/{deployment_id}/schedules/new")
async def add_schedule(deployment_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    form, values = _read(posted)
    body = forms.checked(schemas.ScheduleCreate, values, form.errors, _field_of)
    check = body or forms.partial(schemas.ScheduleCreate, values, form.errors, _field_of)
    if check is not None and (check.cron or check.interval or check.rrule):
        await _validate(check, form, ui.settings)

    async def work(session: AsyncSession) -> None:
        row = await read_deployment(session, deployment_id)
        if body is not None and not form.errors:
            try:
                await schedules.add(session, row, body)
            except ApiError as exc:
                forms.api_refusal(exc, form.errors, _field_of)
        if form.errors or body is None:
            raise forms.Refused

    try:
        await ui.db.write_retrying(work)
    except forms.Refused:
        return await _show(ui, deployment_id, form, status=422)
    return redirect(f"/deployments/{deployment_id}?done=schedule-added")


def _read(posted: Form) -> tuple[ScheduleForm, dict[str, Any]]:
    form = ScheduleForm(
        cron=posted.get("cron").strip(),
        interval=posted.get("interval").strip(),
        rrule=posted.get("rrule").strip(),
        timezone=posted.get("timezone").strip() or "UTC",
        anchor_date=posted.get("anchor_date").strip(),
        active=posted.optional("active") is not None,
    )
    values: dict[str, Any] = {
        "cron": form.cron or None,
        "rrule": form.rrule or None,
        "timezone": form.timezone,
        "anchor_date": form.anchor_date or None,
        "active": form.active,
    }
    if form.interval:
        try:
            values["interval"] = float(form.interval)
        except ValueError:
            form.errors["interval"] = "enter a number of seconds, e.g. 3600 for hourly"
    if not (form.cron or form.interval or form.rrule):
        form.errors["when"] = "fill in one of cron, interval or RRule"
    return form, values


async def _validate(body: schemas.ScheduleCreate, form: ScheduleForm, settings: Settings) -> None:
    """The API's checks (``schedules.validate``); after a refused time zone or anchor, once
    more without it, to show what else would be refused."""
    for _ in range(len(WITHOUT) + 1):
        try:
            await schedules.validate([body], settings)
        except ApiError as exc:
            forms.api_refusal(exc, form.errors, _field_of)
            neutral = WITHOUT.get(str(exc.extra.get("field")))
            if neutral is None:
                return
            body = body.model_copy(update=neutral)
        else:
            return


# ---------------------------------------------------------------- delete


async def _schedule(
    ui: Ui, deployment_id: uuid.UUID, schedule_id: uuid.UUID
) -> tuple[schemas.Deployment, schemas.Schedule, int]:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
        with found():
            schedule = await schedules.read(session, deployment_id, schedule_id)
        waiting = await count(
            session, FlowRunRow.schedule_id == schedule.id, FlowRunRow.state == S.SCHEDULED
        )
    return deployment, schedules.schema(schedule), waiting


@router.get("/deployments/{deployment_id}/schedules/{schedule_id}/delete")
async def delete_schedule_page(
    deployment_id: uuid.UUID, schedule_id: uuid.UUID, ui: UI
) -> Response:
    forms.admin_only(ui)
    deployment, schedule, waiting = await _schedule(ui, deployment_id, schedule_id)
    return ui.page(
        "deployments/schedule_delete.html",
        deployment=deployment,
        schedule=schedule,
        waiting_runs=waiting,
    )


@router.post("/deployments/{deployment_id}/schedules/{schedule_id}/delete")
async def delete_schedule(
    deployment_id: uuid.UUID, schedule_id: uuid.UUID, ui: UI, posted: Posted
) -> Response:
    async def work(session: AsyncSession) -> None:
        with found():
            await schedules.remove(
                session, await schedules.read(session, deployment_id, schedule_id)
            )

    await ui.db.write_retrying(work)
    return redirect(f"/deployments/{deployment_id}?done=schedule-deleted")
