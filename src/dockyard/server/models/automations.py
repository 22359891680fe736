"""Automations: named triggers with their actions, and the results of those actions.

An automation is found by its id or its name (names are unique). One made for a deployment
(``flow.deploy(triggers=[...])``) belongs to it: it goes when the deployment goes, and
registering the deployment again replaces all of its automations at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import events as schemas
from dockyard.server.errors import Conflict, Invalid, NotFound
from dockyard.server.models import flows
from dockyard.server.tables import (
    AutomationActionRow,
    AutomationBucketRow,
    AutomationRow,
    WorkPoolRow,
    utcnow,
)

RESULTS_SHOWN = 10


def _as_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def read_automation(
    session: AsyncSession, name_or_id: str, *, lock: bool = False
) -> AutomationRow:
    """The automation with this id, else with this name."""
    found = None
    wanted = _as_id(name_or_id)
    for column, value in ((AutomationRow.id, wanted), (AutomationRow.name, name_or_id)):
        if value is None or found is not None:
            continue
        query = select(AutomationRow).where(column == value)
        found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(
            f"automation '{name_or_id}' not found",
            hint="list them with `dockyard automation ls`",
        )
    return found


async def list_automations(
    session: AsyncSession, *, limit: int = 200, offset: int = 0
) -> list[AutomationRow]:
    query = select(AutomationRow).order_by(AutomationRow.name).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def _check_targets(session: AsyncSession, body: schemas.AutomationCreate) -> None:
    """Refuse actions that name a deployment or a work pool that does not exist."""
    for index, action in enumerate(body.actions):
        deployment_id = getattr(action, "deployment_id", None)
        if deployment_id is not None:
            try:
                await flows.read_deployment(session, deployment_id)
            except NotFound:
                raise Invalid(
                    f"deployment {deployment_id} not found; see `dockyard deployment ls`",
                    field=f"actions.{index}.deployment_id",
                ) from None
        pool_id, pool_name = (getattr(action, n, None) for n in ("work_pool_id", "work_pool_name"))
        if pool_id is not None or pool_name is not None:
            column = WorkPoolRow.id if pool_id is not None else WorkPoolRow.name
            if (
                await session.scalar(select(WorkPoolRow.id).where(column == (pool_id or pool_name)))
                is None
            ):
                field = "work_pool_id" if pool_id is not None else "work_pool_name"
                raise Invalid(
                    f"work pool {pool_id or pool_name!s} not found; see `dockyard work-pool ls`",
                    field=f"actions.{index}.{field}",
                )


async def _name_free(session: AsyncSession, name: str, keep: uuid.UUID | None = None) -> None:
    taken = await session.scalar(select(AutomationRow.id).where(AutomationRow.name == name))
    if taken is not None and taken != keep:
        raise Conflict(
            f"an automation named '{name}' already exists",
            field="name",
            hint="choose another name, or replace it with `PUT /api/automations/{name}`",
        )


def _fill(row: AutomationRow, body: schemas.AutomationCreate) -> None:
    row.name = body.name
    row.description = body.description
    row.enabled = body.enabled
    row.trigger = body.trigger.model_dump(mode="json")
    row.actions = [action.model_dump(mode="json") for action in body.actions]
    row.updated = utcnow()


async def create_automation(
    session: AsyncSession, body: schemas.AutomationCreate, deployment_id: uuid.UUID | None = None
) -> AutomationRow:
    """Add an automation; 409 when its name is taken (two creates racing: the database's
    unique name fails the second, whose retry answers 409)."""
    await _name_free(session, body.name)
    await _check_targets(session, body)
    row = AutomationRow(id=uuid.uuid4(), deployment_id=deployment_id, created=utcnow())
    _fill(row, body)
    session.add(row)
    await session.flush()
    return row


async def replace_automation(
    session: AsyncSession, name_or_id: str, body: schemas.AutomationCreate
) -> AutomationRow:
    """Replace an automation whole; its trigger's windows start again."""
    row = await read_automation(session, name_or_id, lock=True)
    await _name_free(session, body.name, keep=row.id)
    await _check_targets(session, body)
    _fill(row, body)
    await session.execute(
        delete(AutomationBucketRow).where(AutomationBucketRow.automation_id == row.id)
    )
    await session.flush()
    return row


async def set_enabled(session: AsyncSession, name_or_id: str, enabled: bool) -> AutomationRow:
    row = await read_automation(session, name_or_id, lock=True)
    row.enabled = enabled
    row.updated = utcnow()
    await session.flush()
    return row


async def delete_automation(session: AsyncSession, name_or_id: str) -> None:
    await session.delete(await read_automation(session, name_or_id, lock=True))


async def replace_for_deployment(
    session: AsyncSession, deployment_id: uuid.UUID, bodies: Sequence[schemas.AutomationCreate]
) -> list[AutomationRow]:
    """Make ``bodies`` the deployment's own automations, in place of those it had."""
    await flows.read_deployment(session, deployment_id)
    names = [body.name for body in bodies]
    if len(set(names)) != len(names):
        raise Invalid("two of the deployment's triggers have the same name", field="name")
    await session.execute(delete(AutomationRow).where(AutomationRow.deployment_id == deployment_id))
    await session.flush()
    return [await create_automation(session, body, deployment_id) for body in bodies]


async def automation_schema(session: AsyncSession, row: AutomationRow) -> schemas.Automation:
    """The automation, with its latest action results."""
    results = await session.scalars(
        select(AutomationActionRow)
        .where(AutomationActionRow.automation_id == row.id)
        .order_by(AutomationActionRow.created.desc(), AutomationActionRow.action_index)
        .limit(RESULTS_SHOWN)
    )
    return schemas.Automation(
        id=row.id,
        name=row.name,
        description=row.description,
        enabled=row.enabled,
        trigger=schemas.EventTrigger.model_validate(row.trigger),
        actions=row.actions,
        deployment_id=row.deployment_id,
        created=row.created,
        updated=row.updated,
        results=[
            schemas.ActionResult(
                id=r.id,
                action_index=r.action_index,
                type=str(r.action.get("type")),
                event_id=r.event_id,
                status=r.status,
                attempts=r.attempts,
                next_attempt=r.next_attempt if r.status == "PENDING" else None,
                last_error=r.last_error,
                created=r.created,
                updated=r.updated,
            )
            for r in results
        ],
    )
