"""Events: written in the transaction of the change they tell of, read in position order.

Every state change of a flow run adds its event in :func:`orchestration.record` (one more
row in the same flush: no query, no round trip of its own). The names of the run's flow,
deployment, pool and queue are not at hand there: the evaluator fills them in before it
gives the event its position (``server.automations``), and only events with a position are
read, so a reader never sees an event without them.

A pool's or worker's readiness is announced once per change: ``status`` holds what was last
announced, and a conditional UPDATE decides which of two racing writers announces it.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from dockyard.schemas import events as schemas
from dockyard.schemas.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from dockyard.server.notify import Notifier
from dockyard.server.tables import (
    DeploymentRow,
    EventRow,
    FlowRow,
    FlowRunRow,
    WorkerRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)

READY, NOT_READY = "READY", "NOT_READY"
# session.info key: this transaction added events (the evaluator is woken once it commits)
ADDED = "events_added"
# the kinds of resource whose names the evaluator fills in, by the table holding them
NAMED: dict[str, Any] = {
    "flow": FlowRow,
    "deployment": DeploymentRow,
    "work-pool": WorkPoolRow,
    "work-queue": WorkQueueRow,
}


class Bell(Notifier):
    """A :class:`Notifier` that counts its rings: a waiter that read ``rung`` before it
    looked knows whether something came while it looked, and then looks again instead of
    waiting (the notifier itself wakes only those already waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.rung = 0

    def notify(self, pools: Iterable[uuid.UUID] | None = None) -> None:
        self.rung += 1
        super().notify(pools)


@dataclass
class Bells:
    """What the event machinery of one database wakes: the evaluator (events added), the
    readers (events given positions) and the delivery (actions to do)."""

    added: Bell = field(default_factory=Bell)
    positioned: Bell = field(default_factory=Bell)
    actions: Bell = field(default_factory=Bell)

    def close(self) -> None:
        for bell in (self.added, self.positioned, self.actions):
            bell.close()


_bells: weakref.WeakKeyDictionary[Engine, Bells] = weakref.WeakKeyDictionary()


def bells_for(engine: Engine) -> Bells:
    """The bells of the database whose write engine is ``engine`` (made at first use)."""
    found = _bells.get(engine)
    if found is None:
        found = _bells[engine] = Bells()
    return found


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # wakes the evaluator of this process once events are visible to it
    if session.info.pop(ADDED, False) and isinstance(session.bind, Engine):
        bells = _bells.get(session.bind)
        if bells is not None:
            bells.added.notify()


def state_name(state: str) -> str:
    """A state as people write it: ``AWAITING_RETRY`` is ``AwaitingRetry``."""
    return "".join(part.capitalize() for part in state.split("_"))


def add_event(
    session: AsyncSession | Session,
    name: str,
    resource: dict[str, str],
    related: Iterable[dict[str, str]] = (),
    payload: dict[str, Any] | None = None,
    *,
    occurred: datetime | None = None,
    event_id: uuid.UUID | None = None,
) -> EventRow:
    """Add an event to the session's transaction (it is written with the next flush)."""
    row = EventRow(
        id=event_id or uuid.uuid4(),
        occurred=occurred or utcnow(),
        event=name,
        resource_id=resource[RESOURCE_ID][:512],
        resource=resource,
        related=list(related),
        payload=payload or {},
    )
    session.add(row)
    session.info[ADDED] = True
    return row


def _ref(kind: str, object_id: uuid.UUID) -> dict[str, str]:
    return {RESOURCE_ID: f"dockyard.{kind}.{object_id}", RESOURCE_ROLE: kind}


def flow_run_event(
    session: AsyncSession, run: FlowRunRow, state: str, message: str | None, now: datetime
) -> None:
    """Add the event of ``run`` moving to ``state`` (called before the run's state is set,
    so ``run.state`` is the state it leaves; None for a new run)."""
    related = [_ref("flow", run.flow_id)]
    for kind, object_id in (
        ("deployment", run.deployment_id),
        ("work-pool", run.work_pool_id),
        ("work-queue", run.work_queue_id),
    ):
        if object_id is not None:
            related.append(_ref(kind, object_id))
    for tag in run.tags or ():
        related.append(
            {RESOURCE_ID: f"dockyard.tag.{tag}", RESOURCE_ROLE: "tag", RESOURCE_NAME: tag}
        )
    name = state_name(state)
    resource = {
        RESOURCE_ID: f"dockyard.flow-run.{run.id}",
        RESOURCE_NAME: run.name,
        "dockyard.state-type": str(state),
        "dockyard.state-name": name,
        "dockyard.run-count": str(run.attempt or 1),
    }
    payload = {"state": str(state), "previous_state": run.state, "message": message}
    add_event(session, f"dockyard.flow-run.{name}", resource, related, payload, occurred=now)


async def fill_names(session: AsyncSession, rows: Sequence[EventRow]) -> None:
    """Give the related resources of ``rows`` that have none the name of what they refer to
    (a flow, deployment, work pool or work queue), read once per kind."""
    wanted: dict[str, set[uuid.UUID]] = {}
    for row in rows:
        for entry in row.related:
            kind, object_id = _named(entry)
            if object_id is not None:
                wanted.setdefault(kind, set()).add(object_id)
    names: dict[tuple[str, uuid.UUID], str] = {}
    for kind, ids in wanted.items():
        table = NAMED[kind]
        for object_id, name in await session.execute(
            select(table.id, table.name).where(table.id.in_(ids))
        ):
            names[kind, object_id] = name
    for row in rows:
        if any(_named(entry)[1] for entry in row.related):
            row.related = [_with_name(entry, names) for entry in row.related]


def _named(entry: dict[str, str]) -> tuple[str, uuid.UUID | None]:
    """The kind and id of a related resource whose name is to be filled in."""
    if RESOURCE_NAME in entry or entry.get(RESOURCE_ROLE) not in NAMED:
        return "", None
    kind = entry[RESOURCE_ROLE]
    try:
        return kind, uuid.UUID(entry.get(RESOURCE_ID, "").removeprefix(f"dockyard.{kind}."))
    except ValueError:
        return "", None


def _with_name(entry: dict[str, str], names: dict[tuple[str, uuid.UUID], str]) -> dict[str, str]:
    kind, object_id = _named(entry)
    if object_id is None or (kind, object_id) not in names:
        return entry
    return {**entry, RESOURCE_NAME: names[kind, object_id]}


# ---------------------------------------------------------------- emitting and reading


async def emit(session: AsyncSession, body: schemas.EventCreate) -> EventRow:
    """Store an emitted event; one whose id is stored already is answered as it is."""
    if body.id is not None:
        found = await session.scalar(select(EventRow).where(EventRow.id == body.id))
        if found is not None:
            return found
    row = add_event(
        session, body.event, body.resource, body.related, body.payload, event_id=body.id
    )
    await session.flush()
    return row


def event_schema(row: EventRow) -> schemas.Event:
    return schemas.Event(
        id=row.id,
        occurred=row.occurred,
        event=row.event,
        resource=row.resource,
        related=row.related,
        payload=row.payload,
        position=row.position,
    )


async def list_events(
    session: AsyncSession,
    *,
    after: int | None = None,
    before: int | None = None,
    upto: int | None = None,
    prefix: str | None = None,
    resource_id: str | None = None,
    limit: int = 100,
) -> list[EventRow]:
    """Events with a position: after ``after`` oldest first, else newest first (before
    ``before``), none past ``upto``; ``prefix`` keeps names that start with it,
    ``resource_id`` one resource's."""
    query = select(EventRow).where(EventRow.position.is_not(None)).limit(limit)
    if upto is not None:
        query = query.where(EventRow.position <= upto)
    if prefix:
        query = query.where(EventRow.event.startswith(prefix, autoescape=True))
    if resource_id:
        query = query.where(EventRow.resource_id == resource_id)
    if after is not None:
        query = query.where(EventRow.position > after).order_by(EventRow.position)
    else:
        if before is not None:
            query = query.where(EventRow.position < before)
        query = query.order_by(EventRow.position.desc())
    return list(await session.scalars(query))


async def last_position(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(EventRow.position))) or 0)


# ---------------------------------------------------------------- readiness


def _pool_resource(pool_id: uuid.UUID, name: str, type_name: str) -> dict[str, str]:
    return {
        RESOURCE_ID: f"dockyard.work-pool.{pool_id}",
        RESOURCE_NAME: name,
        "dockyard.work-pool.type": type_name,
    }


def _worker_event(
    session: AsyncSession, status: str, worker: Any, pool: tuple[uuid.UUID, str] | None
) -> None:
    resource = {
        RESOURCE_ID: f"dockyard.worker.{worker.id}",
        RESOURCE_NAME: worker.name,
        "dockyard.worker.type": worker.type,
    }
    related = []
    if pool is not None:
        related.append({**_ref("work-pool", pool[0]), RESOURCE_NAME: pool[1]})
    suffix = "ready" if status == READY else "not-ready"
    add_event(session, f"dockyard.worker.{suffix}", resource, related)


async def _claim_status(session: AsyncSession, table: Any, row_id: uuid.UUID, status: str) -> bool:
    """Set a row's announced status if it is another one; whether this transaction did."""
    result = await session.execute(
        update(table)
        .where(table.id == row_id, table.status != status)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


async def announce_ready(
    session: AsyncSession, worker: WorkerRow, pool: WorkPoolRow | None
) -> None:
    """A worker (and its pool) heartbeat: announce them ready unless they were already.

    Costs nothing while they are (the statuses are compared in memory first).
    """
    pool_ref = (pool.id, pool.name) if pool is not None else None
    if inspect(worker).pending:
        worker.status = READY
        _worker_event(session, READY, worker, pool_ref)
    elif worker.status != READY and await _claim_status(session, WorkerRow, worker.id, READY):
        _worker_event(session, READY, worker, pool_ref)
    ready = pool is not None and pool.status == READY
    if pool is not None and not ready and await _claim_status(session, WorkPoolRow, pool.id, READY):
        add_event(
            session, "dockyard.work-pool.ready", _pool_resource(pool.id, pool.name, pool.type)
        )


async def announce_not_ready(session: AsyncSession, offline_after: float) -> int:
    """Announce every worker whose heartbeat is stale, and every pool that has no fresh
    one, not ready (those announced ready only); return how many were."""
    cutoff = utcnow() - timedelta(seconds=offline_after)
    workers = (
        await session.execute(
            update(WorkerRow)
            .where(WorkerRow.status == READY, WorkerRow.last_heartbeat < cutoff)
            .values(status=NOT_READY)
            .returning(WorkerRow.id, WorkerRow.name, WorkerRow.type, WorkerRow.work_pool_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    fresh = (
        select(WorkerRow.id)
        .where(WorkerRow.work_pool_id == WorkPoolRow.id, WorkerRow.last_heartbeat >= cutoff)
        .exists()
    )
    pools = (
        await session.execute(
            update(WorkPoolRow)
            .where(WorkPoolRow.status == READY, ~fresh)
            .values(status=NOT_READY)
            .returning(WorkPoolRow.id, WorkPoolRow.name, WorkPoolRow.type)
            .execution_options(synchronize_session=False)
        )
    ).all()
    pool_ids = {w.work_pool_id for w in workers if w.work_pool_id is not None}
    pool_names = dict(
        (
            await session.execute(
                select(WorkPoolRow.id, WorkPoolRow.name).where(WorkPoolRow.id.in_(pool_ids))
            )
        ).all()
        if pool_ids
        else []
    )
    for worker in workers:
        pool = worker.work_pool_id
        _worker_event(
            session, NOT_READY, worker, (pool, pool_names.get(pool, "")) if pool else None
        )
    for pool_id, name, type_name in pools:
        add_event(session, "dockyard.work-pool.not-ready", _pool_resource(pool_id, name, type_name))
    return len(workers) + len(pools)
