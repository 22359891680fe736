"""Flows."""

import uuid

from fastapi import APIRouter, Response
from sqlalchemy import select

from dockyard import schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Limit, Offset
from dockyard.server.models import flows
from dockyard.server.tables import FlowRow

router = APIRouter(
    prefix="/flows", tags=["flows"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)


@router.post("", status_code=200)
async def create_flow(body: schemas.FlowCreate, db: DB) -> schemas.Flow:
    async with db.write() as session:
        flow = await flows.ensure_flow(session, body.name, body.description, body.tags)
        return schemas.Flow.model_validate(flow)


@router.get("")
async def list_flows(
    db: DB, name: str | None = None, limit: Limit = 200, offset: Offset = 0
) -> list[schemas.Flow]:
    query = select(FlowRow).order_by(FlowRow.name).limit(limit).offset(offset)
    if name:
        query = query.where(FlowRow.slug == flows.slug(name))
    async with db.read() as session:
        return [schemas.Flow.model_validate(f) for f in await session.scalars(query)]


@router.get("/name/{name}")
async def read_flow_by_name(name: str, db: DB) -> schemas.Flow:
    async with db.read() as session:
        return schemas.Flow.model_validate(await flows.read_flow_by_name(session, name))


@router.get("/{flow_id}")
async def read_flow(flow_id: uuid.UUID, db: DB) -> schemas.Flow:
    async with db.read() as session:
        return schemas.Flow.model_validate(await flows.read_flow(session, flow_id))


@router.delete("/{flow_id}", status_code=204)
async def delete_flow(flow_id: uuid.UUID, db: DB) -> Response:
    async with db.write() as session:
        await session.delete(await flows.read_flow(session, flow_id))
    return Response(status_code=204)
