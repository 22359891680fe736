"""Deployment schedules: create, change, delete, and the runs they make."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import schedules
from dockyard.server.errors import NotFound
from dockyard.server.tables import DeploymentRow, FlowRunRow, ScheduleRow

KEY_FIELDS = ("cron", "interval", "anchor_date", "rrule", "timezone", "active")


def schema(row: ScheduleRow) -> schemas.Schedule:
    return schemas.Schedule.model_validate(row)


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
    schedules.validate(body)
    row = ScheduleRow(id=uuid.uuid4(), deployment_id=deployment.id, **body.model_dump())
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
    their runs), so that deploying the same code twice disturbs nothing."""
    for body in wanted:
        schedules.validate(body)
    current = await of_deployment(session, deployment.id)
    remaining = list(wanted)
    for row in current:
        key = tuple(getattr(row, f) for f in KEY_FIELDS)
        same = next((b for b in remaining if tuple(getattr(b, f) for f in KEY_FIELDS) == key), None)
        if same is not None:
            remaining.remove(same)
        else:
            await remove(session, row)
    for body in remaining:
        await add(session, deployment, body)
