"""Claims, heartbeats and leases: how runs get from the database to a worker.

A claim is one write transaction:

1. it locks the pool's row (on SQLite the transaction is ``BEGIN IMMEDIATE``). On
   PostgreSQL, when the pool, one of its queues or one of its deployments has a
   concurrency limit, the lock is ``FOR UPDATE``, so two claims on the pool never
   interleave; when none has, it is ``FOR KEY SHARE`` and claims go side by side, as
   there is nothing to count (:func:`lock_pool`; a change that sets a limit takes ``FOR
   UPDATE`` on the pool's row first, so it waits for the claims in flight, and the
   claims after it take turns);
2. when limits apply, it counts the live runs (PENDING, RUNNING, CANCELLING,
   AWAITING_RETRY, and PAUSED unless suspended: a paused run's process waits, holding its
   infrastructure) of the pool, each queue and each deployment with a limit, from run
   states inside that transaction: this is the :class:`Room` — which queues and
   deployments can take a run now;
3. it reads due SCHEDULED runs of the open queues and deployments only (a paused or full
   queue or deployment is left out in the query itself, so a backlog of any size there never
   hides the runs of another), by queue priority then scheduled time, locking them as it
   reads them (PostgreSQL ``FOR UPDATE SKIP LOCKED``: a run that a cancel, the reaper,
   catch-up or another claim holds is left for the next claim);
4. it takes them while no limit would be exceeded, moves them to PENDING and leases them.

So no slot can leak, two claims cannot both take the last slot, and a claim comes back empty
only when nothing can be handed out: its long-poll then waits for :func:`Room.next_due`, the
earliest scheduled time of a run it could take, or for a change that frees something.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import job_templates, schemas
from dockyard.schemas import StateType as S
from dockyard.server import masking, orchestration
from dockyard.server.errors import Invalid
from dockyard.server.models import pools, runs
from dockyard.server.models.events import announce_ready
from dockyard.server.tables import (
    DeploymentRow,
    FlowRunRow,
    WorkerRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)

CANDIDATES_PER_SLOT = 20


@dataclass
class Room:
    """What can take a run right now: the free slots of a pool, its queues and deployments.

    ``where`` selects the SCHEDULED runs that could be handed out (due or not); ``blocked``
    says why nothing can be, when nothing can.
    """

    where: list[ColumnElement[bool]]
    pool_free: int | None = None
    queue_free: dict[uuid.UUID, int | None] = field(default_factory=dict)
    deployment_live: Counter[uuid.UUID] = field(default_factory=Counter)
    blocked: str | None = None
    # runs read (and locked) per run to take: some may be of a deployment at its limit
    candidates_per_slot: int = CANDIDATES_PER_SLOT

    @classmethod
    def closed(cls, why: str) -> Room:
        return cls(where=[false()], blocked=why)

    def allows(self, run: FlowRunRow, deployment: DeploymentRow | None) -> bool:
        """Whether one more run fits; if so, count it."""
        if self.pool_free is not None and self.pool_free <= 0:
            return False
        queue = self.queue_free.get(run.work_queue_id) if run.work_queue_id else None
        if queue is not None and queue <= 0:
            return False
        limit = deployment.concurrency_limit if deployment else None
        if deployment is not None and limit is not None:
            if self.deployment_live[deployment.id] >= limit:
                return False
            self.deployment_live[deployment.id] += 1
        if self.pool_free is not None:
            self.pool_free -= 1
        if queue is not None and run.work_queue_id is not None:
            self.queue_free[run.work_queue_id] = queue - 1
        return True

    def runs(self, *columns: Any) -> Any:
        """A select of ``columns`` over the runs this room could take (due or not)."""
        return (
            select(*columns)
            .outerjoin(DeploymentRow, DeploymentRow.id == FlowRunRow.deployment_id)
            .where(FlowRunRow.state == S.SCHEDULED, *self.where)
        )

    async def next_due(self, session: AsyncSession) -> datetime | None:
        """When the earliest run this room could take becomes due (None: no such run)."""
        if self.blocked:
            return None
        due: datetime | None = await session.scalar(self.runs(func.min(FlowRunRow.scheduled_start)))
        return due


async def _live_counts(session: AsyncSession, column: Any, where: Any) -> Counter[Any]:
    rows = await session.execute(
        select(column, func.count()).where(orchestration.live(), where).group_by(column)
    )
    return Counter({key: count for key, count in rows.all()})


async def _deployments_open(session: AsyncSession, room: Room) -> ColumnElement[bool]:
    """Runs of no deployment, or of one neither paused nor at its limit; fills its counts."""
    limited = select(DeploymentRow.id).where(DeploymentRow.concurrency_limit.is_not(None))
    room.deployment_live = await _live_counts(
        session, FlowRunRow.deployment_id, FlowRunRow.deployment_id.in_(limited)
    )
    full = [
        deployment_id
        for deployment_id, limit in await session.execute(
            select(DeploymentRow.id, DeploymentRow.concurrency_limit).where(
                DeploymentRow.id.in_(list(room.deployment_live))
            )
        )
        if limit is not None and room.deployment_live[deployment_id] >= limit
    ]
    return or_(
        FlowRunRow.deployment_id.is_(None),
        and_(DeploymentRow.paused.is_(False), FlowRunRow.deployment_id.not_in(full)),
    )


async def pool_room(
    session: AsyncSession,
    pool: WorkPoolRow,
    queue_names: Sequence[str] = (),
    *,
    limited: bool = True,
) -> Room:
    """The room of a pool (or of some of its queues); its row must be locked, ``FOR
    UPDATE`` unless no limit applies (``limited`` False: nothing is counted)."""
    if pool.paused:
        return Room.closed(f"work pool '{pool.name}' is paused")
    queue_query = select(WorkQueueRow).where(
        WorkQueueRow.work_pool_id == pool.id, WorkQueueRow.paused.is_(False)
    )
    if queue_names:
        queue_query = queue_query.where(WorkQueueRow.name.in_(queue_names))
    queues = list(await session.scalars(queue_query))
    if not limited:
        if not queues:
            return Room.closed(f"no queue of work pool '{pool.name}' is open (paused)")
        open_deployments = or_(FlowRunRow.deployment_id.is_(None), DeploymentRow.paused.is_(False))
        ids = [queue.id for queue in queues]
        where = [FlowRunRow.work_queue_id.in_(ids), open_deployments]
        return Room(where=where, candidates_per_slot=1)
    by_queue = await _live_counts(
        session, FlowRunRow.work_queue_id, FlowRunRow.work_pool_id == pool.id
    )
    room = Room(where=[FlowRunRow.work_pool_id == pool.id])
    if pool.concurrency_limit is not None:
        room.pool_free = pool.concurrency_limit - sum(by_queue.values())
        if room.pool_free <= 0:
            return Room.closed(f"work pool '{pool.name}' is at its concurrency limit")
    for queue in queues:
        limit = queue.concurrency_limit
        room.queue_free[queue.id] = None if limit is None else limit - by_queue[queue.id]
    open_queues = [q for q, free in room.queue_free.items() if free is None or free > 0]
    if not open_queues:
        return Room.closed(f"no queue of work pool '{pool.name}' is open (paused or full)")
    room.where += [
        FlowRunRow.work_queue_id.in_(open_queues),
        await _deployments_open(session, room),
    ]
    return room


async def served_room(session: AsyncSession, deployment_ids: Sequence[uuid.UUID]) -> Room:
    """The room of a serve process's deployments."""
    room = Room(where=[FlowRunRow.deployment_id.in_(list(deployment_ids))])
    room.where.append(await _deployments_open(session, room))
    return room


# ---------------------------------------------------------------- claims

POLLED_EVERY = timedelta(seconds=1)  # how fresh a pool's "last polled" is kept


async def _limited(session: AsyncSession, pool: WorkPoolRow) -> bool:
    """Whether a concurrency limit applies to the pool's runs: its own, or one of a queue or
    a deployment of it."""
    if pool.concurrency_limit is not None:
        return True
    of_pool = (
        exists().where(
            WorkQueueRow.work_pool_id == pool.id, WorkQueueRow.concurrency_limit.is_not(None)
        ),
        exists().where(
            DeploymentRow.work_pool_id == pool.id, DeploymentRow.concurrency_limit.is_not(None)
        ),
    )
    return bool(await session.scalar(select(or_(*of_pool))))


async def lock_pool(session: AsyncSession, name: str) -> tuple[WorkPoolRow, bool]:
    """Lock a pool's row for a claim; return it and whether a limit applies to its runs.

    With a limit (on the pool, a queue or a deployment of it) the lock is ``FOR UPDATE``:
    claims take turns, each counting the live runs. Without, it is ``FOR KEY SHARE``:
    claims go side by side. Whether a limit applies is read before the lock and again
    once it is held (a statement of its own, so it sees every change that committed while
    the lock was awaited); a limit set in between makes this claim take ``FOR UPDATE``
    after all (two such claims may deadlock: PostgreSQL ends one, and it is tried again).
    """
    pool = await pools.read_pool(session, name)
    if session.get_bind().dialect.name == "sqlite":  # one writer at a time anyway
        return pool, await _limited(session, pool)
    if not await _limited(session, pool):
        pool = await pools.read_pool(session, name, lock="key share")
        if not await _limited(session, pool):
            return pool, False
    return await pools.read_pool(session, name, lock=True), True


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
    if pool is not None and (pool.last_polled is None or now - pool.last_polled > POLLED_EVERY):
        await _polled(session, pool.id, now)
    await announce_ready(session, worker, pool)  # events: ready once per change
    return worker


async def _polled(session: AsyncSession, pool_id: uuid.UUID, now: datetime) -> None:
    """Note that the pool was polled: by one of the claims side by side (the others skip
    the row rather than queue on its lock), and once a second at most."""
    stale = (
        select(WorkPoolRow.id)
        .where(
            WorkPoolRow.id == pool_id,
            or_(WorkPoolRow.last_polled.is_(None), WorkPoolRow.last_polled < now - POLLED_EVERY),
        )
        .with_for_update(key_share=True, skip_locked=True)
    )
    await session.execute(
        update(WorkPoolRow)
        .where(WorkPoolRow.id.in_(stale.scalar_subquery()))
        .values(last_polled=now)
        .execution_options(synchronize_session=False)
    )


class Claim(NamedTuple):
    """What a claim took; when it took nothing, when the earliest run it could take becomes
    due (None: nothing it could take is scheduled); and the pool it claimed from (what its
    long-poll waits on: None, for a serve process, waits on every change)."""

    runs: list[schemas.ClaimedRun]
    next_due: datetime | None
    pool_id: uuid.UUID | None


async def claim(
    session: AsyncSession, request: schemas.ClaimRequest, *, lease_seconds: float
) -> Claim:
    """Take up to ``request.limit`` due runs for one worker or serve process."""
    now = utcnow()  # one instant for catch-up and for what is due
    pool = None
    if request.work_pool_name:
        pool, limited = await lock_pool(session, request.work_pool_name)
        worker = await upsert_worker(
            session, pool, request.worker_name, type_name=pool.type, version=None
        )
        if not pool.paused:
            from dockyard.server.scheduler import apply_catchup

            await apply_catchup(session, now, pool.id)
        room = await pool_room(session, pool, request.work_queue_names, limited=limited)
    elif request.deployment_ids:
        worker = await upsert_worker(
            session, None, request.worker_name, type_name="serve", version=None
        )
        await _serve(session, worker, request.deployment_ids)
        room = await served_room(session, request.deployment_ids)
    else:
        raise Invalid("a claim names a work pool or deployments", field="work_pool_name")
    taken = await _take(session, room, now, request.limit) if not room.blocked else []
    pool_id = pool.id if pool else None
    if taken:
        return Claim(await _bind(session, taken, worker, pool, lease_seconds), None, pool_id)
    return Claim([], await room.next_due(session), pool_id)


async def _serve(
    session: AsyncSession, worker: WorkerRow, deployment_ids: Sequence[uuid.UUID]
) -> None:
    """Bind the deployments to the serve process, locking them: its claims never interleave."""
    for deployment in await session.scalars(
        select(DeploymentRow).where(DeploymentRow.id.in_(list(deployment_ids))).with_for_update()
    ):
        deployment.serve_worker_id = worker.id


async def _take(
    session: AsyncSession, room: Room, now: datetime, limit: int
) -> list[tuple[FlowRunRow, DeploymentRow | None]]:
    query = (
        room.runs(FlowRunRow, DeploymentRow)
        .outerjoin(WorkQueueRow, WorkQueueRow.id == FlowRunRow.work_queue_id)
        .where(FlowRunRow.scheduled_start <= now)
        .order_by(WorkQueueRow.priority, FlowRunRow.scheduled_start, FlowRunRow.id)
        .limit(limit * room.candidates_per_slot)
        .with_for_update(of=FlowRunRow, skip_locked=True)
    )
    taken: list[tuple[FlowRunRow, DeploymentRow | None]] = []
    for run, deployment in (await session.execute(query)).all():
        if len(taken) >= limit:
            break
        if room.allows(run, deployment):
            taken.append((run, deployment))
    return taken


async def admit(session: AsyncSession, run: FlowRunRow, *, lease_seconds: float) -> uuid.UUID:
    """Take one SCHEDULED run for a process that starts it by hand (``python -m
    dockyard.engine RUN_ID``), under the rules of a claim: pauses and limits hold, only the
    time it was scheduled for does not. Returns the lease token; raises ``Conflict``."""
    if run.work_pool_id is not None:
        pool = await session.get(WorkPoolRow, run.work_pool_id, with_for_update=True)
        assert pool is not None  # the foreign key
        room = await pool_room(session, pool)
    elif run.deployment_id is not None:
        room = await served_room(session, [run.deployment_id])
    else:
        room = Room(where=[])
    found = None
    if not room.blocked:
        query = room.runs(FlowRunRow, DeploymentRow).where(FlowRunRow.id == run.id)
        found = (await session.execute(query)).first()
    if found is None or not room.allows(*found):
        why = room.blocked or "its queue or deployment is paused or at its concurrency limit"
        raise orchestration.refuse(run, f"flow run {run.id} cannot start now: {why}")
    token = orchestration.grant_lease(run, lease_seconds)
    orchestration.record(session, run, S.PENDING, "started by hand")
    return token


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
    shown = await runs.runs_schema(session, [run_id for run_id, *_ in claimed])
    return [
        schemas.ClaimedRun(
            flow_run=run,
            lease_token=token,
            base_job_template=template,
            job_variables=variables,
            deployment_path=path,
        )
        for run, (_, token, template, variables, path) in zip(shown, claimed, strict=True)
    ]


def job_configuration(
    pool: WorkPoolRow, deployment: DeploymentRow | None, run: FlowRunRow | None
) -> dict[str, Any]:
    """A run's job configuration as the server shows it: ``{{ $NAME }}`` left as is, secret
    values masked."""
    template = pool.base_job_template
    supplied = job_templates.merge(
        deployment.job_variables if deployment else {}, run.job_variables if run else {}
    )
    shown = masking.mask_variables(supplied, template)
    return job_templates.configuration(masking.mask_template(template), shown, None)


# ---------------------------------------------------------------- heartbeats and leases


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
    if beat.run_ids:
        # a guarded write (still PENDING, still this worker's), not a read-then-write: an
        # engine moving a run to RUNNING, or the reaper, may act on it at the same time
        await session.execute(
            update(FlowRunRow)
            .where(
                FlowRunRow.id.in_(beat.run_ids),
                FlowRunRow.worker_id == worker.id,
                FlowRunRow.state == S.PENDING,
            )
            .values(lease_expires=utcnow() + timedelta(seconds=lease_seconds))
            .execution_options(synchronize_session=False)
        )
    held = (
        await session.execute(
            select(FlowRunRow.id, FlowRunRow.state).where(
                FlowRunRow.worker_id == worker.id, orchestration.live()
            )
        )
    ).all()
    held_ids = {run_id for run_id, _ in held}
    return schemas.HeartbeatAnswer(
        worker_id=worker.id,
        cancel=[run_id for run_id, state in held if state == S.CANCELLING],
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
