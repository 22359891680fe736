"""Work pools, their queues and workers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import name_problem, pool_name_problem
from dockyard.schemas import StateType as S
from dockyard.server import masking, orchestration, templates, worker_types
from dockyard.server.errors import Conflict, Invalid, NotFound
from dockyard.server.notify import wake
from dockyard.server.tables import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    WorkerRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)

DEFAULT_QUEUE = "default"


def pool_status(pool: WorkPoolRow, last_heartbeat: datetime | None, offline_after: float) -> str:
    if pool.paused:
        return schemas.PoolStatus.PAUSED
    if last_heartbeat and utcnow() - last_heartbeat <= timedelta(seconds=offline_after):
        return schemas.PoolStatus.READY
    return schemas.PoolStatus.NOT_READY


async def pool_schema(
    session: AsyncSession, pool: WorkPoolRow, offline_after: float
) -> schemas.WorkPool:
    last = await session.scalar(
        select(func.max(WorkerRow.last_heartbeat)).where(WorkerRow.work_pool_id == pool.id)
    )
    return schemas.WorkPool(
        id=pool.id,
        name=pool.name,
        type=pool.type,
        description=pool.description,
        base_job_template=masking.mask_template(pool.base_job_template),
        concurrency_limit=pool.concurrency_limit,
        paused=pool.paused,
        status=pool_status(pool, last, offline_after),
        last_polled=pool.last_polled,
        created=pool.created,
    )


def _unknown_pool(name: str) -> NotFound:
    # a name that could never be created gets no advice to create it
    problem = pool_name_problem(name)
    return NotFound(
        f"work pool '{name}' not found",
        hint=f"{name!r} {problem}"
        if problem
        else f"create it with `dockyard work-pool create {name} --type process`",
    )


async def read_pool(
    session: AsyncSession, name: str, *, lock: bool | Literal["key share"] = False
) -> WorkPoolRow:
    """The pool named ``name``, its row locked ``FOR UPDATE`` (``lock=True``) or ``FOR KEY
    SHARE`` (PostgreSQL; what a claim takes when no limit applies)."""
    query = select(WorkPoolRow).where(WorkPoolRow.name == name)
    if lock == "key share":
        query = query.with_for_update(read=True, key_share=True)
    elif lock:
        query = query.with_for_update()
    if lock:  # the row as it is now, not as this session last saw it
        query = query.execution_options(populate_existing=True)
    pool = await session.scalar(query)
    if pool is None:
        raise _unknown_pool(name)
    return pool


async def lock_limits(session: AsyncSession, pool_id: uuid.UUID | None) -> None:
    """Before a limit of the pool, of one of its queues or deployments is set: wait for
    the claims in flight that counted on none (see :func:`dockyard.server.dispatch.lock_pool`)."""
    if pool_id is not None:
        await session.execute(
            select(WorkPoolRow.id).where(WorkPoolRow.id == pool_id).with_for_update()
        )


async def create_pool(session: AsyncSession, body: schemas.WorkPoolCreate) -> WorkPoolRow:
    default = worker_types.get(body.type)
    if default is None:
        known = ", ".join(worker_types.known()) or "none installed"
        raise Invalid(f"unknown worker type '{body.type}'; known types: {known}", field="type")
    given = body.base_job_template
    if given is not None:
        given = masking.restore(given, None, "base_job_template")
    template = templates.validate_template(
        given if given is not None else default["base_job_template"]
    )
    if await session.scalar(select(WorkPoolRow.id).where(WorkPoolRow.name == body.name)):
        raise Conflict(f"a work pool named '{body.name}' already exists", field="name")
    pool = WorkPoolRow(
        name=body.name,
        type=body.type,
        description=body.description,
        base_job_template=template,
        concurrency_limit=body.concurrency_limit,
        paused=body.paused,
    )
    session.add(pool)
    await session.flush()
    session.add(WorkQueueRow(work_pool_id=pool.id, name=DEFAULT_QUEUE, priority=1))
    return pool


async def update_pool(
    session: AsyncSession, name: str, body: schemas.WorkPoolUpdate
) -> WorkPoolRow:
    pool = await read_pool(session, name, lock=True)  # waits for claims in flight (limits)
    wake(session)  # a resumed pool or a raised limit may free runs to claim
    values = body.model_dump(exclude_unset=True)
    if "base_job_template" in values and values["base_job_template"] is not None:
        # a template read (its secret defaults masked), edited and sent back keeps them
        given = masking.restore(
            values["base_job_template"], pool.base_job_template, "base_job_template"
        )
        pool.base_job_template = templates.validate_template(given)
    for key in ("description", "paused"):
        if key in values and values[key] is not None:
            setattr(pool, key, values[key])
    if "concurrency_limit" in values:
        pool.concurrency_limit = values["concurrency_limit"]
    if values.get("clear_concurrency_limit"):
        pool.concurrency_limit = None
    return pool


# ---------------------------------------------------------------- queues


async def read_queue(session: AsyncSession, pool: WorkPoolRow, name: str) -> WorkQueueRow:
    queue = await session.scalar(
        select(WorkQueueRow).where(WorkQueueRow.work_pool_id == pool.id, WorkQueueRow.name == name)
    )
    if queue is None:
        problem = name_problem(name)
        raise NotFound(
            f"work queue '{name}' not found in pool '{pool.name}'",
            hint=f"{name!r} {problem}"
            if problem
            else f"create it with `dockyard work-queue create {name} --pool {pool.name}`",
        )
    return queue


async def list_queues(session: AsyncSession, pool: WorkPoolRow) -> list[WorkQueueRow]:
    rows = await session.scalars(
        select(WorkQueueRow)
        .where(WorkQueueRow.work_pool_id == pool.id)
        .order_by(WorkQueueRow.priority)
    )
    return list(rows)


async def _make_room(session: AsyncSession, pool: WorkPoolRow, priority: int) -> None:
    """Move the queue at ``priority`` and those after it down by one, keeping them unique."""
    queues = await list_queues(session, pool)
    taken = {q.priority for q in queues}
    if priority not in taken:
        return
    # shift only the contiguous run starting at `priority`
    end = priority
    while end + 1 in taken:
        end += 1
    await session.execute(
        update(WorkQueueRow)
        .where(
            WorkQueueRow.work_pool_id == pool.id,
            WorkQueueRow.priority >= priority,
            WorkQueueRow.priority <= end,
        )
        .values(priority=WorkQueueRow.priority + 1)
    )


async def create_queue(
    session: AsyncSession, pool: WorkPoolRow, body: schemas.WorkQueueCreate
) -> WorkQueueRow:
    if body.concurrency_limit is not None:
        await lock_limits(session, pool.id)
    queues = await list_queues(session, pool)
    if any(q.name == body.name for q in queues):
        raise Conflict(
            f"work queue '{body.name}' already exists in pool '{pool.name}'", field="name"
        )
    if body.priority is None:
        priority = max((q.priority for q in queues), default=0) + 1
    else:
        priority = body.priority
        await _make_room(session, pool, priority)
    queue = WorkQueueRow(
        work_pool_id=pool.id,
        name=body.name,
        description=body.description,
        priority=priority,
        concurrency_limit=body.concurrency_limit,
        paused=body.paused,
    )
    session.add(queue)
    await session.flush()
    return queue


async def update_queue(
    session: AsyncSession, pool: WorkPoolRow, name: str, body: schemas.WorkQueueUpdate
) -> WorkQueueRow:
    values = body.model_dump(exclude_unset=True)
    if values.get("concurrency_limit") is not None:
        await lock_limits(session, pool.id)
    queue = await read_queue(session, pool, name)
    wake(session)
    if values.get("priority") is not None and values["priority"] != queue.priority:
        queue.priority = 0  # out of the way while the others make room
        await session.flush()
        await _make_room(session, pool, values["priority"])
        queue.priority = values["priority"]
    for key in ("description", "paused"):
        if values.get(key) is not None:
            setattr(queue, key, values[key])
    if "concurrency_limit" in values:
        queue.concurrency_limit = values["concurrency_limit"]
    if values.get("clear_concurrency_limit"):
        queue.concurrency_limit = None
    return queue


async def delete_queue(session: AsyncSession, pool: WorkPoolRow, name: str) -> None:
    """Delete a queue; its deployments and their runs move to the pool's default queue.

    A run of a pool always has a queue: without one, no claim would ever take it.
    """
    queue = await read_queue(session, pool, name)
    if queue.name == DEFAULT_QUEUE:
        raise Conflict(
            f"the '{DEFAULT_QUEUE}' queue of pool '{pool.name}' cannot be deleted",
            hint="delete the pool instead",
        )
    default = await read_queue(session, pool, DEFAULT_QUEUE)
    for table in (DeploymentRow, FlowRunRow):
        await session.execute(
            update(table)
            .where(table.work_queue_id == queue.id)
            .values(work_queue_id=default.id)
            .execution_options(synchronize_session=False)
        )
    wake(session)  # the moved runs may be claimable in the default queue
    await session.delete(queue)


async def delete_pool(session: AsyncSession, name: str) -> None:
    """Delete a pool no deployment uses; its runs that never started are cancelled.

    A deployment whose pool went would make runs that nothing can ever claim: move it to
    another pool or delete it first.
    """
    pool = await read_pool(session, name)
    users = list(
        await session.execute(
            select(FlowRow.name, DeploymentRow.name)
            .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
            .where(DeploymentRow.work_pool_id == pool.id)
            .order_by(FlowRow.name, DeploymentRow.name)
        )
    )
    if users:
        shown = ", ".join(f"{flow}/{deployment}" for flow, deployment in users[:10])
        more = f" and {len(users) - 10} more" if len(users) > 10 else ""
        raise Conflict(
            f"work pool '{name}' is used by deployment(s) {shown}{more}",
            hint="move them to another pool (deploy them again with another work pool) "
            "or delete them (`dockyard deployment delete FLOW/NAME`) first",
        )
    waiting = await session.scalars(
        select(FlowRunRow)
        .where(FlowRunRow.work_pool_id == pool.id, FlowRunRow.state == S.SCHEDULED)
        .with_for_update()
    )
    for run in waiting:
        orchestration.record(session, run, S.CANCELLED, f"its work pool '{name}' was deleted")
    await session.delete(pool)


def queue_schema(queue: WorkQueueRow, pool: WorkPoolRow) -> schemas.WorkQueue:
    return schemas.WorkQueue(
        id=queue.id,
        name=queue.name,
        work_pool_name=pool.name,
        description=queue.description,
        priority=queue.priority,
        concurrency_limit=queue.concurrency_limit,
        paused=queue.paused,
        created=queue.created,
    )


# ---------------------------------------------------------------- workers


def worker_schema(worker: WorkerRow, pool_name: str | None, offline_after: float) -> schemas.Worker:
    fresh = utcnow() - worker.last_heartbeat <= timedelta(seconds=offline_after)
    return schemas.Worker(
        id=worker.id,
        name=worker.name,
        work_pool_name=pool_name,
        type=worker.type,
        version=worker.version,
        status=schemas.WorkerStatus.ONLINE if fresh else schemas.WorkerStatus.OFFLINE,
        last_heartbeat=worker.last_heartbeat,
        created=worker.created,
    )


async def list_workers(session: AsyncSession, pool: WorkPoolRow) -> list[WorkerRow]:
    rows = await session.scalars(
        select(WorkerRow)
        .where(WorkerRow.work_pool_id == pool.id)
        .order_by(WorkerRow.last_heartbeat.desc())
    )
    return list(rows)


async def read_worker(session: AsyncSession, pool: WorkPoolRow, name: str) -> WorkerRow:
    worker = await session.scalar(
        select(WorkerRow).where(WorkerRow.work_pool_id == pool.id, WorkerRow.name == name)
    )
    if worker is None:
        raise NotFound(f"worker '{name}' not found in pool '{pool.name}'")
    return worker


def default_template(type_name: str) -> dict[str, Any]:
    entry = worker_types.get(type_name)
    if entry is None:
        known = ", ".join(worker_types.known())
        raise NotFound(f"unknown worker type '{type_name}'; known types: {known}")
    return entry
