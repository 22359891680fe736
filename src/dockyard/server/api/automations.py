"""Automations: a trigger on events and the actions it starts (``dockyard.automations``)."""

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import events as schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Limit, Offset
from dockyard.server.models import automations
from dockyard.server.openapi import answers

router = APIRouter(tags=["automations"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED)


@router.post("/automations", status_code=201, responses=answers(409))
async def create_automation(body: schemas.AutomationCreate, db: DB) -> schemas.Automation:
    """Create an automation; 409 when one has its name, 422 naming the field of a bad spec
    (an action's deployment or pool that does not exist included)."""

    async def work(session: AsyncSession) -> schemas.Automation:
        row = await automations.create_automation(session, body)
        return await automations.automation_schema(session, row)

    return await db.write_retrying(work)


@router.get("/automations")
async def list_automations(
    db: DB, limit: Limit = 200, offset: Offset = 0
) -> list[schemas.Automation]:
    """Automations by name, each with its latest action results."""
    async with db.read() as session:
        rows = await automations.list_automations(session, limit=limit, offset=offset)
        return [await automations.automation_schema(session, row) for row in rows]


@router.get("/automations/{name}")
async def read_automation(name: str, db: DB) -> schemas.Automation:
    """An automation by id or name, with its latest action results (status, attempts and
    last error of each)."""
    async with db.read() as session:
        row = await automations.read_automation(session, name)
        return await automations.automation_schema(session, row)


@router.put("/automations/{name}", responses=answers(409))
async def replace_automation(
    name: str, body: schemas.AutomationCreate, db: DB
) -> schemas.Automation:
    """Replace an automation whole (its threshold windows start again)."""

    async def work(session: AsyncSession) -> schemas.Automation:
        row = await automations.replace_automation(session, name, body)
        return await automations.automation_schema(session, row)

    return await db.write_retrying(work)


@router.patch("/automations/{name}")
async def update_automation(
    name: str, body: schemas.AutomationUpdate, db: DB
) -> schemas.Automation:
    """Enable or disable an automation (a disabled one counts no events)."""

    async def work(session: AsyncSession) -> schemas.Automation:
        row = await automations.set_enabled(session, name, body.enabled)
        return await automations.automation_schema(session, row)

    return await db.write_retrying(work)


@router.delete("/automations/{name}", status_code=204)
async def delete_automation(name: str, db: DB) -> Response:
    """Delete an automation; its actions not done yet are dropped."""
    await db.write_retrying(lambda session: automations.delete_automation(session, name))
    return Response(status_code=204)


@router.put("/deployments/{deployment_id}/automations", responses=answers(409))
async def replace_deployment_automations(
    deployment_id: uuid.UUID, body: list[schemas.AutomationCreate], db: DB
) -> list[schemas.Automation]:
    """Make these the deployment's own automations, in place of those it had (its
    triggers, ``flow.deploy(triggers=[...])``); they go when the deployment goes."""

    async def work(session: AsyncSession) -> list[schemas.Automation]:
        rows = await automations.replace_for_deployment(session, deployment_id, body)
        return [await automations.automation_schema(session, row) for row in rows]

    return await db.write_retrying(work)
