"""The scheduler: runs made ahead from deployment schedules, and the catch-up policy.

The scheduler creates SCHEDULED runs for every active schedule of an unpaused deployment,
up to ``scheduler_max_runs`` per schedule and ``scheduler_horizon_hours`` ahead. Each run's
idempotency key names its schedule and slot, so a restart, or a second server process on
PostgreSQL (which also takes an advisory lock for the round), never makes two runs for one
slot. It runs on its loop and at once when a schedule changes.

Missed slots: a scheduled run still unclaimed more than one schedule period after its time
(the server was down, the pool paused, no worker) is handled by the deployment's catch-up
policy — ``latest`` (default: only the most recent overdue run starts, older missed ones are
cancelled), ``all`` (every one starts) or ``skip`` (missed ones are cancelled) — and a run
later than the deployment's ``max_lateness_seconds`` is cancelled instead of started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import CatchUp
from dockyard.schemas import StateType as S
from dockyard.server import orchestration, schedules
from dockyard.server.db import Database
from dockyard.server.names import run_name
from dockyard.server.tables import DeploymentRow, FlowRunRow, ScheduleRow, utcnow
from dockyard.settings import Settings

log = logging.getLogger("dockyard.server")
ADVISORY_KEY = 7244310502


def slot_key(schedule_id: uuid.UUID, moment: datetime) -> str:
    return f"schedule:{schedule_id}:{moment.isoformat()}"


async def schedule_runs(db: Database, settings: Settings) -> int:
    """Create the runs due within the horizon that do not exist yet; return how many."""
    now = utcnow()
    end = now + timedelta(hours=settings.scheduler_horizon_hours)
    created = 0
    async with db.write() as session:
        if not db.is_sqlite:
            got = await session.scalar(text(f"SELECT pg_try_advisory_xact_lock({ADVISORY_KEY})"))
            if not got:
                return 0  # another server process is scheduling right now
        rows = await session.execute(
            select(ScheduleRow, DeploymentRow)
            .join(DeploymentRow, DeploymentRow.id == ScheduleRow.deployment_id)
            .where(ScheduleRow.active.is_(True), DeploymentRow.paused.is_(False))
        )
        for schedule, deployment in rows.all():
            moments = schedules.times(schedule, now, end, settings.scheduler_max_runs)
            created += await _add_runs(session, schedule, deployment, moments)
        await apply_catchup(session, now)
    return created


async def _add_runs(
    session: AsyncSession,
    schedule: ScheduleRow,
    deployment: DeploymentRow,
    moments: list[datetime],
) -> int:
    keys = {slot_key(schedule.id, m): m for m in moments}
    if not keys:
        return 0
    existing = set(
        await session.scalars(
            select(FlowRunRow.idempotency_key).where(
                FlowRunRow.idempotency_scope == deployment.id,
                FlowRunRow.idempotency_key.in_(list(keys)),
            )
        )
    )
    for key, moment in keys.items():
        if key in existing:
            continue
        run = FlowRunRow(
            id=uuid.uuid4(),
            name=run_name(),
            flow_id=deployment.flow_id,
            deployment_id=deployment.id,
            work_pool_id=deployment.work_pool_id,
            work_queue_id=deployment.work_queue_id,
            schedule_id=schedule.id,
            parameters=dict(deployment.parameters),
            job_variables={},
            tags=[*deployment.tags, "auto-scheduled"],
            idempotency_key=key,
            idempotency_scope=deployment.id,
            scheduled_start=moment,
            attempt=1,
        )
        session.add(run)
        orchestration.record(session, run, S.SCHEDULED)
    await session.flush()
    return len(keys) - len(existing)


async def apply_catchup(
    session: AsyncSession, now: datetime, pool_id: uuid.UUID | None = None
) -> int:
    """Cancel the overdue runs that the catch-up policies and max lateness rule out."""
    query = (
        select(FlowRunRow, DeploymentRow, ScheduleRow)
        .join(DeploymentRow, DeploymentRow.id == FlowRunRow.deployment_id)
        .outerjoin(ScheduleRow, ScheduleRow.id == FlowRunRow.schedule_id)
        .where(FlowRunRow.state == S.SCHEDULED, FlowRunRow.scheduled_start <= now)
        .order_by(FlowRunRow.scheduled_start)
    )
    if pool_id is not None:
        query = query.where(FlowRunRow.work_pool_id == pool_id)
    overdue: dict[uuid.UUID, list[tuple[FlowRunRow, DeploymentRow, ScheduleRow | None]]]
    overdue = defaultdict(list)
    for run, deployment, schedule in (await session.execute(query)).all():
        overdue[deployment.id].append((run, deployment, schedule))
    cancelled = 0
    for items in overdue.values():
        cancelled += _catch_up(session, items, now)
    return cancelled


def _catch_up(
    session: AsyncSession,
    items: list[tuple[FlowRunRow, DeploymentRow, ScheduleRow | None]],
    now: datetime,
) -> int:
    deployment = items[0][1]
    policy = CatchUp(deployment.catchup)
    newest = items[-1][0]
    cancelled = 0
    for run, _, schedule in items:
        assert run.scheduled_start is not None
        late = (now - run.scheduled_start).total_seconds()
        limit = deployment.max_lateness_seconds
        reason = None
        if limit is not None and late > limit:
            reason = (
                f"cancelled: {late:.0f} s late, more than the deployment's max_lateness "
                f"of {limit:g} s"
            )
        elif _skipped(run, schedule, policy, newest, now):
            reason = (
                f"skipped: the slot of {run.scheduled_start:%Y-%m-%d %H:%M:%S} UTC was "
                f"missed (catch-up policy '{policy}')"
            )
        if reason:
            orchestration.record(session, run, S.CANCELLED, reason)
            cancelled += 1
    return cancelled


def _skipped(
    run: FlowRunRow,
    schedule: ScheduleRow | None,
    policy: CatchUp,
    newest: FlowRunRow,
    now: datetime,
) -> bool:
    """Whether a missed slot (still unclaimed more than one schedule period after its time)
    is given up: all of them with ``skip``; all but the newest overdue run with ``latest``."""
    if schedule is None or policy == CatchUp.ALL or run.scheduled_start is None:
        return False
    if run.scheduled_start + schedules.period(schedule, run.scheduled_start) >= now:
        return False
    return policy == CatchUp.SKIP or run is not newest


async def scheduler_loop(db: Database, settings: Settings, interval: float = 10.0) -> None:
    """Schedule every ``interval`` seconds, and at once when a schedule changes."""
    while not db.notifier.closed:
        db.schedules_changed.clear()
        try:
            await schedule_runs(db, settings)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduler failed; retrying in %.1f s", interval)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(db.schedules_changed.wait(), interval)
