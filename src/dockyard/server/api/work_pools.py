"""Work pools, their queues and workers, and the worker types."""

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server import worker_types
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config, Limit, Offset
from dockyard.server.models import pools
from dockyard.server.openapi import answers
from dockyard.server.tables import WorkPoolRow

router = APIRouter(tags=["work pools"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED)


@router.get("/worker-types")
async def list_worker_types() -> list[schemas.WorkerType]:
    return [await read_worker_type(name) for name in worker_types.known()]


@router.get("/worker-types/{type_name}")
async def read_worker_type(type_name: str) -> schemas.WorkerType:
    entry = pools.default_template(type_name)
    return schemas.WorkerType(type=type_name, **entry)


@router.post("/work-pools", status_code=201, responses=answers(409))
async def create_work_pool(
    body: schemas.WorkPoolCreate, db: DB, settings: Config
) -> schemas.WorkPool:

    async def work(session: AsyncSession) -> schemas.WorkPool:
        pool = await pools.create_pool(session, body)
        return await pools.pool_schema(session, pool, settings.worker_offline_seconds)

    # two first creates of one name race to insert: the loser's retry answers 409
    return await db.write_retrying(work)


@router.get("/work-pools")
async def list_work_pools(
    db: DB, settings: Config, limit: Limit = 200, offset: Offset = 0
) -> list[schemas.WorkPool]:
    query = select(WorkPoolRow).order_by(WorkPoolRow.name).limit(limit).offset(offset)
    async with db.read() as session:
        return [
            await pools.pool_schema(session, pool, settings.worker_offline_seconds)
            for pool in await session.scalars(query)
        ]


@router.get("/work-pools/{name}")
async def read_work_pool(name: str, db: DB, settings: Config) -> schemas.WorkPool:
    async with db.read() as session:
        pool = await pools.read_pool(session, name)
        return await pools.pool_schema(session, pool, settings.worker_offline_seconds)


@router.patch("/work-pools/{name}")
async def update_work_pool(
    name: str, body: schemas.WorkPoolUpdate, db: DB, settings: Config
) -> schemas.WorkPool:

    async def work(session: AsyncSession) -> schemas.WorkPool:
        pool = await pools.update_pool(session, name, body)
        await session.flush()
        return await pools.pool_schema(session, pool, settings.worker_offline_seconds)

    return await db.write_retrying(work)


@router.delete("/work-pools/{name}", status_code=204, responses=answers(409))
async def delete_work_pool(name: str, db: DB) -> Response:
    await db.write_retrying(lambda session: pools.delete_pool(session, name))
    return Response(status_code=204)


@router.post("/work-pools/{name}/pause")
async def pause_work_pool(name: str, db: DB, settings: Config) -> schemas.WorkPool:
    return await update_work_pool(name, schemas.WorkPoolUpdate(paused=True), db, settings)


@router.post("/work-pools/{name}/resume")
async def resume_work_pool(name: str, db: DB, settings: Config) -> schemas.WorkPool:
    return await update_work_pool(name, schemas.WorkPoolUpdate(paused=False), db, settings)


# ---------------------------------------------------------------- queues


@router.post("/work-pools/{pool_name}/queues", status_code=201, responses=answers(409))
async def create_work_queue(
    pool_name: str, body: schemas.WorkQueueCreate, db: DB
) -> schemas.WorkQueue:

    async def work(session: AsyncSession) -> schemas.WorkQueue:
        pool = await pools.read_pool(session, pool_name, lock=True)
        queue = await pools.create_queue(session, pool, body)
        return pools.queue_schema(queue, pool)

    return await db.write_retrying(work)


@router.get("/work-pools/{pool_name}/queues")
async def list_work_queues(pool_name: str, db: DB) -> list[schemas.WorkQueue]:
    async with db.read() as session:
        pool = await pools.read_pool(session, pool_name)
        return [pools.queue_schema(q, pool) for q in await pools.list_queues(session, pool)]


@router.get("/work-pools/{pool_name}/queues/{name}")
async def read_work_queue(pool_name: str, name: str, db: DB) -> schemas.WorkQueue:
    async with db.read() as session:
        pool = await pools.read_pool(session, pool_name)
        return pools.queue_schema(await pools.read_queue(session, pool, name), pool)


@router.patch("/work-pools/{pool_name}/queues/{name}")
async def update_work_queue(
    pool_name: str, name: str, body: schemas.WorkQueueUpdate, db: DB
) -> schemas.WorkQueue:

    async def work(session: AsyncSession) -> schemas.WorkQueue:
        pool = await pools.read_pool(session, pool_name, lock=True)
        queue = await pools.update_queue(session, pool, name, body)
        await session.flush()
        return pools.queue_schema(queue, pool)

    return await db.write_retrying(work)


@router.delete("/work-pools/{pool_name}/queues/{name}", status_code=204, responses=answers(409))
async def delete_work_queue(pool_name: str, name: str, db: DB) -> Response:

    async def work(session: AsyncSession) -> None:
        pool = await pools.read_pool(session, pool_name, lock=True)
        await pools.delete_queue(session, pool, name)

    await db.write_retrying(work)
    return Response(status_code=204)


@router.post("/work-pools/{pool_name}/queues/{name}/pause")
async def pause_work_queue(pool_name: str, name: str, db: DB) -> schemas.WorkQueue:
    return await update_work_queue(pool_name, name, schemas.WorkQueueUpdate(paused=True), db)


@router.post("/work-pools/{pool_name}/queues/{name}/resume")
async def resume_work_queue(pool_name: str, name: str, db: DB) -> schemas.WorkQueue:
    return await update_work_queue(pool_name, name, schemas.WorkQueueUpdate(paused=False), db)


# ---------------------------------------------------------------- workers


@router.get("/work-pools/{pool_name}/workers")
async def list_workers(pool_name: str, db: DB, settings: Config) -> list[schemas.Worker]:
    async with db.read() as session:
        pool = await pools.read_pool(session, pool_name)
        return [
            pools.worker_schema(w, pool.name, settings.worker_offline_seconds)
            for w in await pools.list_workers(session, pool)
        ]


@router.delete("/work-pools/{pool_name}/workers/{name}", status_code=204)
async def delete_worker(pool_name: str, name: str, db: DB) -> Response:
    async with db.write() as session:
        pool = await pools.read_pool(session, pool_name)
        await session.delete(await pools.read_worker(session, pool, name))
    return Response(status_code=204)


@router.get("/work-pools/{name}/preview")
async def preview_job_configuration(
    name: str, db: DB, deployment: str | None = None
) -> dict[str, Any]:
    """The pool's job configuration as a worker would get it (``deployment=FLOW/NAME``)."""
    from dockyard.server.dispatch import job_configuration
    from dockyard.server.models import flows

    async with db.read() as session:
        pool = await pools.read_pool(session, name)
        row = None
        if deployment:
            flow_name, _, deployment_name = deployment.partition("/")
            row = await flows.read_deployment_by_name(session, flow_name, deployment_name)
        return job_configuration(pool, row, None)
