"""Claims, heartbeats and leases: how runs get from the database to a worker.

A claim is one write transaction: it locks the pool's row first (PostgreSQL ``FOR UPDATE``;
on SQLite the transaction is ``BEGIN IMMEDIATE``), counts the live runs (PENDING, RUNNING,
CANCELLING, AWAITING_RETRY) of the pool, each queue and each deployment from run states
inside that transaction, then takes due SCHEDULED runs by queue priority and scheduled time
as long as no limit would be exceeded. Two concurrent claims therefore can never take the
same run or the last slot twice.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import job_templates, schemas
from dockyard.schemas import StateType as S
from dockyard.server import orchestration
from dockyard.server.errors import Invalid
from dockyard.server.models import pools, runs
from dockyard.server.tables import (
    DeploymentRow,
    FlowRunRow,
    WorkerRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)

ACTIVE = [str(s) for s in orchestration.ACTIVE]
CANDIDATES_PER_SLOT = 20


async def upsert_worker(
    session: AsyncSession,
    pool: WorkPoolRow | None,
    name: str,
    *,
    type_name: str,
    version: str | None,
) -> WorkerRow:
    pool_id = pool.id if pool else None
    worker = await session.scalar(
        select(WorkerRow).where(WorkerRow.work_pool_id == pool_id, WorkerRow.name == name)
    )
    now = utcnow()
    if worker is None:
        worker = WorkerRow(
            id=uuid.uuid4(), work_pool_id=pool_id, name=name, type=type_name, version=version
        )
        session.add(worker)
    worker.last_heartbeat = now
    worker.type = type_name
    worker.version = version or worker.version
    if pool is not None:
        pool.last_polled = now
    return worker


async def _live_counts(session: AsyncSession, column: Any, where: Any) -> Counter[uuid.UUID | None]:
    rows = await session.execute(
        select(column, func.count()).where(FlowRunRow.state.in_(ACTIVE), where).group_by(column)
    )
    return Counter({key: count for key, count in rows.all()})


async def claim(
    session: AsyncSession, request: schemas.ClaimRequest, *, lease_seconds: float
) -> list[schemas.ClaimedRun]:
    """Take up to ``request.limit`` due runs for one worker or serve process."""
    if request.work_pool_name:
        pool = await pools.read_pool(session, request.work_pool_name, lock=True)
        worker = await upsert_worker(
            session, pool, request.worker_name, type_name=pool.type, version=None
        )
        if pool.paused:
            return []
        return await _claim_from_pool(session, pool, worker, request, lease_seconds)
    if not request.deployment_ids:
        raise Invalid("a claim names a work pool or deployments", field="work_pool_name")
    worker = await upsert_worker(
        session, None, request.worker_name, type_name="serve", version=None
    )
    return await _claim_served(session, worker, request, lease_seconds)


async def _claim_from_pool(
    session: AsyncSession,
    pool: WorkPoolRow,
    worker: WorkerRow,
    request: schemas.ClaimRequest,
    lease_seconds: float,
) -> list[schemas.ClaimedRun]:
    queue_query = select(WorkQueueRow).where(
        WorkQueueRow.work_pool_id == pool.id, WorkQueueRow.paused.is_(False)
    )
    if request.work_queue_names:
        queue_query = queue_query.where(WorkQueueRow.name.in_(request.work_queue_names))
    queues = {q.id: q for q in await session.scalars(queue_query)}
    if not queues:
        return []
    from dockyard.server.scheduler import apply_catchup

    now = utcnow()  # one instant for catch-up and for what is due
    await apply_catchup(session, now, pool.id)
    in_pool = FlowRunRow.work_pool_id == pool.id
    by_queue = await _live_counts(session, FlowRunRow.work_queue_id, in_pool)
    pool_live = sum(by_queue.values())
    candidates = (
        select(FlowRunRow, DeploymentRow)
        .outerjoin(DeploymentRow, DeploymentRow.id == FlowRunRow.deployment_id)
        .join(WorkQueueRow, WorkQueueRow.id == FlowRunRow.work_queue_id)
        .where(
            in_pool,
            FlowRunRow.state == S.SCHEDULED,
            FlowRunRow.scheduled_start <= now,
            FlowRunRow.work_queue_id.in_(list(queues)),
        )
        .order_by(WorkQueueRow.priority, FlowRunRow.scheduled_start, FlowRunRow.id)
        .limit(request.limit * CANDIDATES_PER_SLOT)
    )
    rows = (await session.execute(candidates)).all()
    by_deployment = await _deployment_counts(session, rows)
    taken: list[tuple[FlowRunRow, DeploymentRow | None]] = []
    for run, deployment in rows:
        if len(taken) >= request.limit:
            break
        if pool.concurrency_limit is not None and pool_live >= pool.concurrency_limit:
            break
        queue = queues[run.work_queue_id]  # type: ignore[index]  # filtered by the query
        if queue.concurrency_limit is not None and by_queue[queue.id] >= queue.concurrency_limit:
            continue
        if not _deployment_allows(deployment, by_deployment):
            continue
        pool_live += 1
        by_queue[queue.id] += 1
        if deployment is not None:
            by_deployment[deployment.id] += 1
        taken.append((run, deployment))
    return await _bind(session, taken, worker, pool, lease_seconds)


async def _claim_served(
    session: AsyncSession,
    worker: WorkerRow,
    request: schemas.ClaimRequest,
    lease_seconds: float,
) -> list[schemas.ClaimedRun]:
    deployments = {
        d.id: d
        for d in await session.scalars(
            select(DeploymentRow)
            .where(DeploymentRow.id.in_(request.deployment_ids))
            .with_for_update()
        )
    }
    for deployment in deployments.values():
        deployment.serve_worker_id = worker.id
    rows = (
        await session.execute(
            select(FlowRunRow, DeploymentRow)
            .join(DeploymentRow, DeploymentRow.id == FlowRunRow.deployment_id)
            .where(
                FlowRunRow.deployment_id.in_(list(deployments)),
                FlowRunRow.state == S.SCHEDULED,
                FlowRunRow.scheduled_start <= utcnow(),
            )
            .order_by(FlowRunRow.scheduled_start, FlowRunRow.id)
            .limit(request.limit * CANDIDATES_PER_SLOT)
        )
    ).all()
    by_deployment = await _deployment_counts(session, rows)
    taken: list[tuple[FlowRunRow, DeploymentRow | None]] = []
    for run, deployment in rows:
        if len(taken) >= request.limit:
            break
        if _deployment_allows(deployment, by_deployment):
            by_deployment[deployment.id] += 1
            taken.append((run, deployment))
    return await _bind(session, taken, worker, None, lease_seconds)


async def _deployment_counts(session: AsyncSession, rows: Any) -> Counter[uuid.UUID | None]:
    ids = {d.id for _, d in rows if d is not None and d.concurrency_limit is not None}
    if not ids:
        return Counter()
    return await _live_counts(session, FlowRunRow.deployment_id, FlowRunRow.deployment_id.in_(ids))


def _deployment_allows(deployment: DeploymentRow | None, live: Counter[uuid.UUID | None]) -> bool:
    if deployment is None:
        return True
    if deployment.paused:
        return False
    limit = deployment.concurrency_limit
    return limit is None or live[deployment.id] < limit


async def _bind(
    session: AsyncSession,
    taken: list[tuple[FlowRunRow, DeploymentRow | None]],
    worker: WorkerRow,
    pool: WorkPoolRow | None,
    lease_seconds: float,
) -> list[schemas.ClaimedRun]:
    claimed = []
    for run, deployment in taken:
        token = orchestration.grant_lease(run, lease_seconds)
        run.worker_id = worker.id
        orchestration.record(session, run, S.PENDING, f"claimed by {worker.name}")
        template = pool.base_job_template if pool else {}
        variables = job_templates.merge(
            deployment.job_variables if deployment else {}, run.job_variables
        )
        path = deployment.path if deployment else None
        claimed.append((run.id, token, template, variables, path))
    await session.flush()
    return [
        schemas.ClaimedRun(
            flow_run=await runs.run_schema(session, run_id),
            lease_token=token,
            base_job_template=template,
            job_variables=variables,
            deployment_path=path,
        )
        for run_id, token, template, variables, path in claimed
    ]


def job_configuration(
    pool: WorkPoolRow, deployment: DeploymentRow | None, run: FlowRunRow | None
) -> dict[str, Any]:
    """A run's job configuration as the server shows it (``{{ $NAME }}`` left as is)."""
    supplied = job_templates.merge(
        deployment.job_variables if deployment else {}, run.job_variables if run else {}
    )
    return job_templates.configuration(pool.base_job_template, supplied, None)


async def heartbeat(
    session: AsyncSession, beat: schemas.WorkerHeartbeat, *, lease_seconds: float
) -> schemas.HeartbeatAnswer:
    """Record that a worker lives, renew its PENDING runs' leases, list runs to cancel."""
    pool = await pools.read_pool(session, beat.work_pool_name) if beat.work_pool_name else None
    worker = await upsert_worker(
        session, pool, beat.name, type_name=beat.type, version=beat.version
    )
    if pool is None and beat.deployment_ids:
        for deployment in await session.scalars(
            select(DeploymentRow).where(DeploymentRow.id.in_(beat.deployment_ids))
        ):
            deployment.serve_worker_id = worker.id
    held = list(
        await session.scalars(
            select(FlowRunRow).where(
                FlowRunRow.worker_id == worker.id, FlowRunRow.state.in_(ACTIVE)
            )
        )
    )
    expires = utcnow() + timedelta(seconds=lease_seconds)
    for run in held:
        if run.state == S.PENDING and run.id in beat.run_ids:
            run.lease_expires = expires
    held_ids = {r.id for r in held}
    return schemas.HeartbeatAnswer(
        worker_id=worker.id,
        cancel=[r.id for r in held if r.state == S.CANCELLING],
        lost=[i for i in beat.run_ids if i not in held_ids],
    )


async def renew_lease(
    session: AsyncSession, run: FlowRunRow, token: uuid.UUID, *, lease_seconds: float
) -> None:
    """The engine keeps its run's lease; a stale token is refused (the run moved on)."""
    if run.lease_token != token:
        raise orchestration.refuse(
            run, f"flow run {run.id} is no longer leased to this process; stop reporting on it"
        )
    run.lease_expires = utcnow() + timedelta(seconds=lease_seconds)


async def next_due(session: AsyncSession, request: schemas.ClaimRequest) -> datetime | None:
    """When the earliest SCHEDULED run this claim could take becomes due."""
    query = select(func.min(FlowRunRow.scheduled_start)).where(FlowRunRow.state == S.SCHEDULED)
    if request.work_pool_name:
        query = query.join(WorkPoolRow, WorkPoolRow.id == FlowRunRow.work_pool_id).where(
            WorkPoolRow.name == request.work_pool_name
        )
    else:
        query = query.where(FlowRunRow.deployment_id.in_(request.deployment_ids))
    return await session.scalar(query)
