"""Deployments, and runs made from them."""

import uuid

from fastapi import APIRouter, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config, Limit, Offset
from dockyard.server.models import flows, runs, schedules
from dockyard.server.tables import DeploymentRow, FlowRow, WorkPoolRow

router = APIRouter(
    prefix="/deployments",
    tags=["deployments"],
    dependencies=[PARAMETERS],
    responses=PARAMETERS_REFUSED,
)


@router.post("")
async def upsert_deployment(
    body: schemas.DeploymentCreate, db: DB, settings: Config
) -> schemas.Deployment:
    await schedules.validate(body.schedules or [], settings)

    async def work(session: AsyncSession) -> schemas.Deployment:
        deployment = await flows.upsert_deployment(session, body)
        return await flows.deployment_schema(session, deployment, settings.worker_offline_seconds)

    # two first deploys of one name race to insert: the loser's retry updates the winner's
    return await db.write_retrying(work)


@router.get("")
async def list_deployments(
    db: DB,
    settings: Config,
    flow_name: str | None = None,
    work_pool_name: str | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[schemas.Deployment]:
    query = flows.deployments_in_order(limit=limit, offset=offset)
    if flow_name:
        query = query.where(FlowRow.slug == flows.slug(flow_name))
    if work_pool_name:
        query = query.join(WorkPoolRow, WorkPoolRow.id == DeploymentRow.work_pool_id).where(
            WorkPoolRow.name == work_pool_name
        )
    async with db.read() as session:
        return [
            await flows.deployment_schema(session, d, settings.worker_offline_seconds)
            for d in await session.scalars(query)
        ]


@router.get("/name/{flow_name}/{name}")
async def read_deployment_by_name(
    flow_name: str, name: str, db: DB, settings: Config
) -> schemas.Deployment:
    async with db.read() as session:
        deployment = await flows.read_deployment_by_name(session, flow_name, name)
        return await flows.deployment_schema(session, deployment, settings.worker_offline_seconds)


@router.get("/{deployment_id}")
async def read_deployment(deployment_id: uuid.UUID, db: DB, settings: Config) -> schemas.Deployment:
    async with db.read() as session:
        deployment = await flows.read_deployment(session, deployment_id)
        return await flows.deployment_schema(session, deployment, settings.worker_offline_seconds)


@router.patch("/{deployment_id}")
async def update_deployment(
    deployment_id: uuid.UUID, body: schemas.DeploymentUpdate, db: DB, settings: Config
) -> schemas.Deployment:
    async with db.write() as session:
        deployment = await flows.read_deployment(session, deployment_id)
        await flows.update_deployment(session, deployment, body)
        await session.flush()
        return await flows.deployment_schema(session, deployment, settings.worker_offline_seconds)


@router.delete("/{deployment_id}", status_code=204)
async def delete_deployment(deployment_id: uuid.UUID, db: DB) -> Response:
    async with db.write() as session:
        await flows.delete_deployment(session, await flows.read_deployment(session, deployment_id))
    return Response(status_code=204)


@router.post("/{deployment_id}/runs", status_code=201)
async def create_deployment_run(
    deployment_id: uuid.UUID, body: schemas.DeploymentRunCreate, db: DB
) -> schemas.FlowRun:

    async def work(session: AsyncSession) -> schemas.FlowRun:
        deployment = await flows.read_deployment(session, deployment_id)
        run = await runs.create_deployment_run(session, deployment, body)
        return await runs.run_schema(session, run.id)

    return await db.write_retrying(work)


# ---------------------------------------------------------------- schedules


@router.get("/{deployment_id}/schedules")
async def list_schedules(deployment_id: uuid.UUID, db: DB) -> list[schemas.Schedule]:
    async with db.read() as session:
        await flows.read_deployment(session, deployment_id)
        return [
            schedules.schema(row) for row in await schedules.of_deployment(session, deployment_id)
        ]


@router.post("/{deployment_id}/schedules", status_code=201)
async def create_schedule(
    deployment_id: uuid.UUID, body: schemas.ScheduleCreate, db: DB, settings: Config
) -> schemas.Schedule:
    await schedules.validate([body], settings)
    async with db.write() as session:
        deployment = await flows.read_deployment(session, deployment_id)
        return schedules.schema(await schedules.add(session, deployment, body))


@router.patch("/{deployment_id}/schedules/{schedule_id}")
async def update_schedule(
    deployment_id: uuid.UUID, schedule_id: uuid.UUID, body: schemas.ScheduleUpdate, db: DB
) -> schemas.Schedule:
    async with db.write() as session:
        row = await schedules.read(session, deployment_id, schedule_id)
        if body.active is not None:
            await schedules.set_active(session, row, body.active)
        return schedules.schema(row)


@router.delete("/{deployment_id}/schedules/{schedule_id}", status_code=204)
async def delete_schedule(deployment_id: uuid.UUID, schedule_id: uuid.UUID, db: DB) -> Response:
    async with db.write() as session:
        await schedules.remove(session, await schedules.read(session, deployment_id, schedule_id))
    return Response(status_code=204)
