"""Flow runs, task runs and logs."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import masking, orchestration
from dockyard.server.errors import Invalid, NotFound
from dockyard.server.names import run_name
from dockyard.server.tables import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    FlowRunStateRow,
    WorkerRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)

# Set by the app from the late threshold setting: a SCHEDULED run past its start by more
# than this is LATE (a label shown and filtered on, not a state).
LATE_AFTER = timedelta(seconds=15)


def is_late(run: Any) -> bool:
    """Whether a run (a row or a :class:`FlowRunRow`) waits past its start."""
    return (
        run.state == S.SCHEDULED
        and run.scheduled_start is not None
        and utcnow() - run.scheduled_start > LATE_AFTER
    )


async def read_run(session: AsyncSession, run_id: uuid.UUID, *, lock: bool = False) -> FlowRunRow:
    query = select(FlowRunRow).where(FlowRunRow.id == run_id)
    if lock:
        query = query.with_for_update()
    run = await session.scalar(query)
    if run is None:
        raise NotFound(f"flow run {run_id} not found", hint="list runs with `dockyard flow-run ls`")
    return run


async def _existing(session: AsyncSession, scope: uuid.UUID, key: str | None) -> FlowRunRow | None:
    """The run already made with ``key`` in ``scope`` (a deployment, or a flow's direct runs)."""
    if key is None:
        return None
    return await session.scalar(
        select(FlowRunRow).where(
            FlowRunRow.idempotency_scope == scope, FlowRunRow.idempotency_key == key
        )
    )


async def create_run(
    session: AsyncSession, flow: FlowRow, body: schemas.FlowRunCreate, *, lease_seconds: float
) -> tuple[FlowRunRow, uuid.UUID | None]:
    """A run of a flow called directly. One created RUNNING is leased to its caller."""
    existing = await _existing(session, flow.id, body.idempotency_key)
    if existing is not None:
        return existing, None
    if body.parent_flow_run_id is not None:
        await _check_parent(session, body.parent_flow_run_id)
    run = FlowRunRow(
        id=uuid.uuid4(),
        name=body.name or run_name(),
        flow_id=flow.id,
        parent_flow_run_id=body.parent_flow_run_id,
        parameters=body.parameters,
        job_variables={},
        tags=body.tags,
        idempotency_key=body.idempotency_key,
        idempotency_scope=flow.id if body.idempotency_key else None,
        scheduled_start=utcnow(),
        attempt=1,
    )
    session.add(run)
    token = None
    if body.state == S.RUNNING:
        token = orchestration.grant_lease(run, lease_seconds)
    elif body.state != S.SCHEDULED:
        raise Invalid("a new flow run starts SCHEDULED or RUNNING", field="state")
    orchestration.record(session, run, body.state)
    await session.flush()
    return run, token


async def _check_parent(session: AsyncSession, parent_id: uuid.UUID) -> None:
    """Refuse a parent run that does not exist, rather than let its foreign key fail.

    FOR KEY SHARE (on PostgreSQL) is the lock the foreign key itself takes: a parent deleted
    meanwhile waits until this run is written.
    """
    query = select(FlowRunRow.id).where(FlowRunRow.id == parent_id)
    if await session.scalar(query.with_for_update(read=True, key_share=True)) is None:
        raise Invalid(
            f"parent flow run {parent_id} not found",
            field="parent_flow_run_id",
            hint="name a run that exists, or leave parent_flow_run_id out",
        )


async def create_deployment_run(
    session: AsyncSession, deployment: DeploymentRow, body: schemas.DeploymentRunCreate
) -> FlowRunRow:
    """A run of a deployment, SCHEDULED at ``scheduled_start`` (default: now)."""
    from dockyard.server import jobs

    existing = await _existing(session, deployment.id, body.idempotency_key)
    if existing is not None:
        return existing
    job_variables = masking.restore(body.job_variables, None, "job_variables")
    if job_variables and deployment.work_pool_id:
        pool = await session.get(WorkPoolRow, deployment.work_pool_id)
        assert pool is not None
        jobs.validate_variables(pool.base_job_template, job_variables)
    run = FlowRunRow(
        id=uuid.uuid4(),
        name=body.name or run_name(),
        flow_id=deployment.flow_id,
        deployment_id=deployment.id,
        work_pool_id=deployment.work_pool_id,
        work_queue_id=deployment.work_queue_id,
        parameters={**deployment.parameters, **body.parameters},
        job_variables=job_variables,
        tags=[*deployment.tags, *body.tags],
        idempotency_key=body.idempotency_key,
        idempotency_scope=deployment.id if body.idempotency_key else None,
        scheduled_start=body.scheduled_start or utcnow(),
        attempt=1,
    )
    session.add(run)
    orchestration.record(session, run, S.SCHEDULED)
    await session.flush()
    return run


# ---------------------------------------------------------------- reading


@functools.cache
def joined() -> Any:
    """Runs' columns with the names of their flow, deployment, pool, queue and worker.

    Columns, not ORM objects: a run is read to be shown, and rows cost a fraction of the
    objects the ORM would track. Built once: statements are immutable (``.where()`` returns
    a new one), and building this one costs more than running it.
    """
    return (
        select(
            *FlowRunRow.__table__.columns,
            FlowRow.name.label("flow_name"),
            DeploymentRow.name.label("deployment_name"),
            WorkPoolRow.name.label("work_pool_name"),
            WorkQueueRow.name.label("work_queue_name"),
            WorkerRow.name.label("worker_name"),
        )
        .join(FlowRow, FlowRow.id == FlowRunRow.flow_id)
        .outerjoin(DeploymentRow, DeploymentRow.id == FlowRunRow.deployment_id)
        .outerjoin(WorkPoolRow, WorkPoolRow.id == FlowRunRow.work_pool_id)
        .outerjoin(WorkQueueRow, WorkQueueRow.id == FlowRunRow.work_queue_id)
        .outerjoin(WorkerRow, WorkerRow.id == FlowRunRow.worker_id)
    )


def from_row(row: Any) -> schemas.FlowRun:
    """The API's run from a row of :func:`joined`."""
    return to_schema(
        row,
        flow_name=row.flow_name,
        deployment_name=row.deployment_name,
        work_pool_name=row.work_pool_name,
        work_queue_name=row.work_queue_name,
        worker_name=row.worker_name,
    )


def to_schema(
    run: Any,
    *,
    flow_name: str,
    deployment_name: str | None = None,
    work_pool_name: str | None = None,
    work_queue_name: str | None = None,
    worker_name: str | None = None,
) -> schemas.FlowRun:
    """The API's run from a run's columns (a row or a :class:`FlowRunRow`) and the names."""
    return schemas.FlowRun(
        id=run.id,
        name=run.name,
        flow_id=run.flow_id,
        flow_name=flow_name,
        deployment_id=run.deployment_id,
        deployment_name=deployment_name,
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        parent_flow_run_id=run.parent_flow_run_id,
        parameters=run.parameters,
        job_variables=run.job_variables,
        tags=run.tags,
        state=run.state,
        state_message=run.state_message,
        scheduled_start=run.scheduled_start,
        start_time=run.start_time,
        end_time=run.end_time,
        created=run.created,
        attempt=run.attempt,
        worker_name=worker_name,
        infrastructure_id=run.infrastructure_id,
        lease_expires=run.lease_expires,
        idempotency_key=run.idempotency_key,
        result=run.result,
        late=is_late(run),
    )


@functools.cache
def _one_run() -> Any:
    return joined().where(FlowRunRow.id == bindparam("run_id"))


async def run_schema(session: AsyncSession, run_id: uuid.UUID) -> schemas.FlowRun:
    row = (await session.execute(_one_run(), {"run_id": run_id})).first()
    if row is None:
        raise NotFound(f"flow run {run_id} not found")
    (run,) = await shown(session, [row])
    return run


async def runs_schema(session: AsyncSession, run_ids: Sequence[uuid.UUID]) -> list[schemas.FlowRun]:
    """Several runs in one query, in the order of ``run_ids`` (all must exist)."""
    rows = (await session.execute(joined().where(FlowRunRow.id.in_(list(run_ids))))).all()
    by_id = {run.id: run for run in await shown(session, rows)}
    return [by_id[run_id] for run_id in run_ids]


async def shown(session: AsyncSession, rows: Sequence[Any]) -> list[schemas.FlowRun]:
    """The API's runs from rows of :func:`joined`, their secret job variables masked by
    their pool's template (read once per pool, only for runs that have job variables)."""
    needed = {row.work_pool_id for row in rows if row.job_variables and row.work_pool_id}
    templates: dict[uuid.UUID, Any] = {}
    if needed:
        found = await session.execute(
            select(WorkPoolRow.id, WorkPoolRow.base_job_template).where(WorkPoolRow.id.in_(needed))
        )
        templates = {pool_id: template for pool_id, template in found.all()}
    runs = []
    for row in rows:
        run = from_row(row)
        template = templates.get(row.work_pool_id)
        if template is not None:
            run.job_variables = masking.mask_variables(run.job_variables, template)
        runs.append(run)
    return runs


async def list_runs(
    session: AsyncSession,
    *,
    flow_name: str | None = None,
    deployment_name: str | None = None,
    deployment_id: uuid.UUID | None = None,
    work_pool_name: str | None = None,
    states: Sequence[S] = (),
    parent_flow_run_id: uuid.UUID | None = None,
    scheduled_before: datetime | None = None,
    late: bool | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[schemas.FlowRun]:
    from dockyard.server.models.flows import slug

    query = joined()
    if flow_name:
        query = query.where(FlowRow.slug == slug(flow_name))
    if deployment_name:
        query = query.where(DeploymentRow.name == deployment_name)
    if deployment_id:
        query = query.where(FlowRunRow.deployment_id == deployment_id)
    if work_pool_name:
        query = query.where(WorkPoolRow.name == work_pool_name)
    if states:
        query = query.where(FlowRunRow.state.in_([str(s) for s in states]))
    if parent_flow_run_id:
        query = query.where(FlowRunRow.parent_flow_run_id == parent_flow_run_id)
    if scheduled_before:
        query = query.where(FlowRunRow.scheduled_start <= scheduled_before)
    if late is not None:
        overdue = (FlowRunRow.state == S.SCHEDULED) & (
            FlowRunRow.scheduled_start < utcnow() - LATE_AFTER
        )
        query = query.where(overdue if late else ~overdue)
    query = query.order_by(FlowRunRow.created.desc(), FlowRunRow.id).limit(limit).offset(offset)
    return await shown(session, (await session.execute(query)).all())


async def states_of(session: AsyncSession, run_id: uuid.UUID) -> list[schemas.State]:
    await read_run(session, run_id)
    rows = await session.scalars(
        select(FlowRunStateRow)
        .where(FlowRunStateRow.flow_run_id == run_id)
        .order_by(FlowRunStateRow.id)
    )
    return [schemas.State(type=r.type, message=r.message, timestamp=r.timestamp) for r in rows]


async def already_applied(session: AsyncSession, run_id: uuid.UUID, key: str | None) -> bool:
    """Whether a transition with this idempotency key was already stored for the run."""
    if key is None:
        return False
    found = await session.scalar(
        select(FlowRunStateRow.id).where(
            FlowRunStateRow.flow_run_id == run_id, FlowRunStateRow.idempotency_key == key
        )
    )
    return found is not None
