"""Flows and deployments."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import masking, orchestration
from dockyard.server.errors import Invalid, NotFound
from dockyard.server.models import pools
from dockyard.server.notify import wake
from dockyard.server.tables import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    WorkerRow,
    WorkPoolRow,
    WorkQueueRow,
    insert_for,
    utcnow,
)


def slug(name: str) -> str:
    """The spelling lookups compare: ``get_repo_info`` and ``get-repo-info`` are one flow."""
    return name.replace("_", "-").lower()


@functools.cache
def _by_slug() -> Select[FlowRow]:
    return select(FlowRow).where(FlowRow.slug == bindparam("slug"))


async def find_flow(session: AsyncSession, name: str) -> FlowRow | None:
    return await session.scalar(_by_slug(), {"slug": slug(name)})


async def read_flow_by_name(session: AsyncSession, name: str) -> FlowRow:
    flow = await find_flow(session, name)
    if flow is None:
        raise NotFound(f"flow '{name}' not found", hint="list flows with `dockyard flow ls`")
    return flow


async def read_flow(session: AsyncSession, flow_id: uuid.UUID) -> FlowRow:
    flow = await session.get(FlowRow, flow_id)
    if flow is None:
        raise NotFound(f"flow {flow_id} not found")
    return flow


async def ensure_flow(
    session: AsyncSession, name: str, description: str | None = None, tags: list[str] | None = None
) -> FlowRow:
    flow = await find_flow(session, name)
    if flow is not None:
        return flow
    # concurrent first runs of one flow race to create it: the loser keeps the winner's row
    insert = insert_for(session.get_bind().dialect.name)
    await session.execute(
        insert(FlowRow)
        .values(
            id=uuid.uuid4(),
            name=name,
            slug=slug(name),
            description=description,
            tags=tags or [],
            created=utcnow(),
        )
        .on_conflict_do_nothing()
    )
    flow = await find_flow(session, name)
    assert flow is not None
    return flow


# ---------------------------------------------------------------- deployments


def deployments_in_order(*, limit: int, offset: int = 0) -> Select[DeploymentRow]:
    """A page of deployments, by flow name then deployment name (the API's and the UI's)."""
    return (
        select(DeploymentRow)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .order_by(FlowRow.name, DeploymentRow.name)
        .limit(limit)
        .offset(offset)
    )


async def read_deployment(session: AsyncSession, deployment_id: uuid.UUID) -> DeploymentRow:
    deployment = await session.get(DeploymentRow, deployment_id)
    if deployment is None:
        raise NotFound(
            f"deployment {deployment_id} not found", hint="list them with `dockyard deployment ls`"
        )
    return deployment


async def read_deployment_by_name(
    session: AsyncSession, flow_name: str, name: str
) -> DeploymentRow:
    flow = await find_flow(session, flow_name)
    if flow is None:
        raise NotFound(
            f"deployment '{flow_name}/{name}' not found: no flow named '{flow_name}'",
            hint="list deployments with `dockyard deployment ls`",
        )
    deployment = await session.scalar(
        select(DeploymentRow).where(DeploymentRow.flow_id == flow.id, DeploymentRow.name == name)
    )
    if deployment is None:
        names = list(
            await session.scalars(
                select(DeploymentRow.name)
                .where(DeploymentRow.flow_id == flow.id)
                .order_by(DeploymentRow.name)
            )
        )
        suggestions = [f"{flow.name}/{n}" for n in names]
        hint = (
            "did you mean: " + ", ".join(suggestions)
            if suggestions
            else f"flow '{flow.name}' has no deployments yet"
        )
        raise NotFound(
            f"deployment '{flow_name}/{name}' not found", hint=hint, suggestions=suggestions
        )
    return deployment


async def _pool_and_queue(
    session: AsyncSession, pool_name: str | None, queue_name: str | None
) -> tuple[WorkPoolRow | None, WorkQueueRow | None]:
    if pool_name is None:
        if queue_name is not None:
            raise Invalid("a work queue needs a work pool", field="work_pool_name")
        return None, None
    try:
        pool = await pools.read_pool(session, pool_name)
    except NotFound as exc:
        raise Invalid(exc.detail, field="work_pool_name", **exc.extra) from None
    try:
        queue = await pools.read_queue(session, pool, queue_name or pools.DEFAULT_QUEUE)
    except NotFound as exc:
        raise Invalid(exc.detail, field="work_queue_name", **exc.extra) from None
    return pool, queue


async def upsert_deployment(session: AsyncSession, body: schemas.DeploymentCreate) -> DeploymentRow:
    from dockyard.server import jobs

    pool, queue = await _pool_and_queue(session, body.work_pool_name, body.work_queue_name)
    flow = await ensure_flow(session, body.flow_name)
    deployment = await session.scalar(
        select(DeploymentRow).where(
            DeploymentRow.flow_id == flow.id, DeploymentRow.name == body.name
        )
    )
    values = body.model_dump(
        exclude={"flow_name", "name", "work_pool_name", "work_queue_name", "schedules"}
    )
    for key in ("job_variables", "pull_steps"):  # a deployment read, then sent back
        values[key] = masking.restore(values[key], getattr(deployment, key, None), key)
    if pool is not None:
        jobs.validate_variables(pool.base_job_template, values["job_variables"])
    if values.get("concurrency_limit") is not None:
        await pools.lock_limits(session, pool.id if pool else None)
    if deployment is None:
        deployment = DeploymentRow(flow_id=flow.id, name=body.name)
        session.add(deployment)
    for key, value in values.items():
        setattr(deployment, key, value)
    await _place(session, deployment, pool, queue)
    deployment.updated = utcnow()
    await session.flush()
    if body.schedules is not None:
        from dockyard.server.models import schedules

        await schedules.replace(session, deployment, body.schedules)
    return deployment


async def _place(
    session: AsyncSession,
    deployment: DeploymentRow,
    pool: WorkPoolRow | None,
    queue: WorkQueueRow | None,
) -> None:
    """Put the deployment in ``pool`` and ``queue``; its runs that wait go with it (left
    behind, the old pool's workers would take them)."""
    where = (pool.id if pool else None, queue.id if queue else None)
    if (deployment.work_pool_id, deployment.work_queue_id) == where:
        return
    deployment.work_pool_id, deployment.work_queue_id = where
    if deployment.id is not None:
        await session.execute(
            update(FlowRunRow)
            .where(FlowRunRow.deployment_id == deployment.id, FlowRunRow.state == S.SCHEDULED)
            .values(work_pool_id=where[0], work_queue_id=where[1], version=FlowRunRow.version + 1)
            .execution_options(synchronize_session=False)
        )
        wake(session)


async def delete_deployment(session: AsyncSession, deployment: DeploymentRow) -> None:
    """Delete a deployment; its runs that never started are cancelled (nothing could run
    them: the engine needs the deployment's entrypoint)."""
    waiting = await session.scalars(
        select(FlowRunRow)
        .where(FlowRunRow.deployment_id == deployment.id, FlowRunRow.state == S.SCHEDULED)
        .with_for_update()
    )
    for run in waiting:
        orchestration.record(
            session, run, S.CANCELLED, f"its deployment '{deployment.name}' was deleted"
        )
    await session.delete(deployment)


async def update_deployment(
    session: AsyncSession, deployment: DeploymentRow, body: schemas.DeploymentUpdate
) -> DeploymentRow:
    from dockyard.server import jobs

    values = body.model_dump(exclude_unset=True)
    if values.get("concurrency_limit") is not None:
        await pools.lock_limits(session, deployment.work_pool_id)
    if "work_queue_name" in values:
        pool = (
            await session.get(WorkPoolRow, deployment.work_pool_id)
            if deployment.work_pool_id
            else None
        )
        _, queue = await _pool_and_queue(
            session, pool.name if pool else None, values.pop("work_queue_name")
        )
        await _place(session, deployment, pool, queue)
    if values.get("job_variables") is not None:
        values["job_variables"] = masking.restore(
            values["job_variables"], deployment.job_variables, "job_variables"
        )
        if deployment.work_pool_id:
            pool = await session.get(WorkPoolRow, deployment.work_pool_id)
            assert pool is not None
            jobs.validate_variables(pool.base_job_template, values["job_variables"])
    for key, value in values.items():
        if value is not None or key in ("concurrency_limit", "max_lateness_seconds"):
            setattr(deployment, key, value)
    if "paused" in values:
        session.info["schedules"] = True  # a resumed deployment gets its runs at once
    wake(session)
    deployment.updated = utcnow()
    return deployment


async def deployment_schema(
    session: AsyncSession, deployment: DeploymentRow, offline_after: float, *, reveal: bool = False
) -> schemas.Deployment:
    """The API's deployment; secret job variables and URL credentials masked unless
    ``reveal`` (for the engine holding the lease of one of its runs)."""
    from dockyard.server.models import schedules as sched

    flow = await session.get(FlowRow, deployment.flow_id)
    pool = (
        await session.get(WorkPoolRow, deployment.work_pool_id) if deployment.work_pool_id else None
    )
    queue = (
        await session.get(WorkQueueRow, deployment.work_queue_id)
        if deployment.work_queue_id
        else None
    )
    assert flow is not None
    status = await _deployment_status(session, deployment, pool, offline_after)
    return schemas.Deployment(
        id=deployment.id,
        flow_id=deployment.flow_id,
        flow_name=flow.name,
        name=deployment.name,
        entrypoint=deployment.entrypoint,
        path=deployment.path,
        description=deployment.description,
        version=deployment.version,
        tags=deployment.tags,
        parameters=deployment.parameters,
        parameter_schema=deployment.parameter_schema,
        work_pool_name=pool.name if pool else None,
        work_queue_name=queue.name if queue else None,
        job_variables=(
            masking.mask_variables(deployment.job_variables, pool.base_job_template)
            if pool and not reveal
            else deployment.job_variables
        ),
        image=deployment.image,
        pull_steps=(
            deployment.pull_steps if reveal else masking.mask_pull_steps(deployment.pull_steps)
        ),
        paused=deployment.paused,
        concurrency_limit=deployment.concurrency_limit,
        crash_retries=deployment.crash_retries,
        schedules=[sched.schema(row) for row in await sched.of_deployment(session, deployment.id)],
        catchup=deployment.catchup,
        max_lateness_seconds=deployment.max_lateness_seconds,
        status=status,
        created=deployment.created,
        updated=deployment.updated,
    )


async def _deployment_status(
    session: AsyncSession,
    deployment: DeploymentRow,
    pool: WorkPoolRow | None,
    offline_after: float,
) -> str:
    if deployment.paused:
        return schemas.PoolStatus.PAUSED
    if pool is not None:
        last = await session.scalar(
            select(func.max(WorkerRow.last_heartbeat)).where(WorkerRow.work_pool_id == pool.id)
        )
        return pools.pool_status(pool, last, offline_after)
    if deployment.serve_worker_id is not None:
        worker = await session.get(WorkerRow, deployment.serve_worker_id)
        fresh = worker and utcnow() - worker.last_heartbeat <= timedelta(seconds=offline_after)
        if fresh:
            return schemas.PoolStatus.READY
    return schemas.PoolStatus.NOT_READY
