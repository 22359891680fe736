"""Deployment schedules: create, change, delete, and the runs they make."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import schedules
from dockyard.server.errors import NotFound
from dockyard.server.tables import DeploymentRow, FlowRunRow, ScheduleRow
from dockyard.settings import Settings

KEY_FIELDS = ("cron", "interval", "anchor_date", "rrule", "timezone", "active")


def schema(row: ScheduleRow) -> schemas.Schedule:
    return schemas.Schedule.model_validate(row)


async def validate(bodies: Sequence[schemas.ScheduleCreate], settings: Settings) -> None:
    """Refuse (422, naming the field) a schedule that is malformed, fires more often than
    the server's minimum interval, or never fires.

    Expanding a schedule is bounded but costs up to tens of milliseconds for a hostile rule,
    so it runs off the event loop, before any transaction is open.
    """
    if bodies:
        minimum = timedelta(seconds=settings.scheduler_min_interval_seconds)
        await asyncio.to_thread(_validate_all, list(bodies), minimum)


def _validate_all(bodies: list[schemas.ScheduleCreate], minimum: timedelta) -> None:
    for body in bodies:
        schedules.validate(body, minimum)


async def of_deployment(session: AsyncSession, deployment_id: uuid.UUID) -> list[ScheduleRow]:
    rows = await session.scalars(
        select(ScheduleRow)
        .where(ScheduleRow.deployment_id == deployment_id)
        .order_by(ScheduleRow.created, ScheduleRow.id)
    )
    return list(rows)


async def read(
    session: AsyncSession, deployment_id: uuid.UUID, schedule_id: uuid.UUID
) -> ScheduleRow:
    row = await session.get(ScheduleRow, schedule_id)
    if row is None or row.deployment_id != deployment_id:
        raise NotFound(
            f"schedule {schedule_id} not found on this deployment",
            hint="list them with `dockyard deployment schedule ls FLOW/DEPLOYMENT`",
        )
    return row


async def drop_pending_runs(session: AsyncSession, schedule_ids: Sequence[uuid.UUID]) -> None:
    """Remove the not-started runs a schedule made (it changed or went away)."""
    if schedule_ids:
        await session.execute(
            delete(FlowRunRow).where(
                FlowRunRow.schedule_id.in_(schedule_ids), FlowRunRow.state == S.SCHEDULED
            )
        )
    session.info["schedules"] = True


async def add(
    session: AsyncSession, deployment: DeploymentRow, body: schemas.ScheduleCreate
) -> ScheduleRow:
    """Add a schedule (the route has validated it: see :func:`validate`)."""
    schedules.check_form(body)
    row = ScheduleRow(id=uuid.uuid4(), deployment_id=deployment.id, **_stored(body))
    session.add(row)
    session.info["schedules"] = True
    await session.flush()
    return row


async def set_active(session: AsyncSession, row: ScheduleRow, active: bool) -> ScheduleRow:
    if row.active != active:
        row.active = active
        await drop_pending_runs(session, [row.id])
    return row


async def remove(session: AsyncSession, row: ScheduleRow) -> None:
    await drop_pending_runs(session, [row.id])
    await session.delete(row)


async def replace(
    session: AsyncSession, deployment: DeploymentRow, wanted: list[schemas.ScheduleCreate]
) -> None:
    """Make the deployment's schedules ``wanted``, keeping those that did not change (and
    their runs), so that deploying the same code twice disturbs nothing. The route has
    validated them (see :func:`validate`)."""
    current = await of_deployment(session, deployment.id)
    remaining = list(wanted)
    for row in current:
        key = tuple(getattr(row, f) for f in KEY_FIELDS)
        same = next((b for b in remaining if _key(b) == key), None)
        if same is not None:
            remaining.remove(same)
        else:
            await remove(session, row)
    for body in remaining:
        await add(session, deployment, body)


def _stored(body: schemas.ScheduleCreate) -> dict[str, object]:
    """The body's fields as stored: the anchor in UTC (one without a zone is read in the
    schedule's zone)."""
    values = body.model_dump()
    if body.anchor_date is not None:
        anchor = schedules.anchor_of(body, schedules.zone_of(body))
        values["anchor_date"] = anchor.astimezone(UTC)
    return values


def _key(body: schemas.ScheduleCreate) -> tuple[object, ...]:
    values = _stored(body)
    return tuple(values[f] for f in KEY_FIELDS)
