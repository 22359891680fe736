"""The scheduler: runs made ahead from deployment schedules, and the catch-up policy.

The scheduler creates SCHEDULED runs for every active schedule of an unpaused deployment,
up to ``scheduler_max_runs`` per schedule and ``scheduler_horizon_hours`` ahead. Each run's
idempotency key names its schedule and slot, so a restart, or a second server process on
PostgreSQL (which also takes an advisory lock for the round), never makes two runs for one
slot. It runs on its loop and at once when a schedule changes.

Across replicas a pass is done by one at a time: its write transaction first takes the
scheduler's advisory lock without waiting (``leadership.try_lead``); a replica that does not
get it skips the pass, as the one holding it makes the same runs. The catch-up inside the
pass also locks the runs it reads ``FOR UPDATE SKIP LOCKED``, since claims apply it too.

One schedule never holds up the others: each is expanded on its own, with bounded work, in a
worker thread (see ``schedules``). A schedule that cannot be expanded (one stored before the
API refused such definitions, or one that has ended) is marked with its error, shown by the
API, the CLI and the UI, and skipped until it works again or is deleted.

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
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import CatchUp
from dockyard.schemas import StateType as S
from dockyard.server import leadership, orchestration, schedules
from dockyard.server.db import Database, outage, unreachable
from dockyard.server.errors import Invalid
from dockyard.server.names import run_name
from dockyard.server.tables import DeploymentRow, FlowRunRow, ScheduleRow, utcnow
from dockyard.settings import Settings

log = logging.getLogger("dockyard.server")


def slot_key(schedule_id: uuid.UUID, moment: datetime) -> str:
    return f"schedule:{schedule_id}:{moment.isoformat()}"


ACTIVE_SCHEDULES = (
    select(ScheduleRow, DeploymentRow)
    .join(DeploymentRow, DeploymentRow.id == ScheduleRow.deployment_id)
    .where(ScheduleRow.active.is_(True), DeploymentRow.paused.is_(False))
)
# What a schedule that could not be expanded because of a bug (not its definition) shows.
EXPAND_BUG = "the server could not expand this schedule (a bug: see the server's log)"


@dataclass(frozen=True)
class Window:
    """What one pass asks of every schedule: times in ``[start, end)``, at most ``limit``,
    none closer together than ``minimum``."""

    start: datetime
    end: datetime
    limit: int
    minimum: timedelta


async def schedule_runs(db: Database, settings: Settings) -> int:
    """Create the runs due within the horizon that do not exist yet; return how many.

    Each schedule is expanded on its own, in a worker thread, before the write transaction
    opens (the math is bounded but not free, and must never hold up the event loop or the
    database). One that cannot be expanded is marked with its error and skipped, and the
    others get their runs; once it works again, its error is cleared.
    """
    now = utcnow()
    window = Window(
        start=now,
        end=now + timedelta(hours=settings.scheduler_horizon_hours),
        limit=settings.scheduler_max_runs,
        minimum=timedelta(seconds=settings.scheduler_min_interval_seconds),
    )
    async with db.read() as session:
        specs = {
            row.id: schedules.Spec.of(row)
            for row, _ in (await session.execute(ACTIVE_SCHEDULES)).all()
        }
    plans = await asyncio.to_thread(expand, specs, window)
    created = 0
    async with db.write() as session:
        if not await leadership.try_lead(session, leadership.Job.SCHEDULE):
            return 0  # another server process is scheduling right now: it makes these runs
        for schedule, deployment in (await session.execute(ACTIVE_SCHEDULES)).all():
            # a schedule added since the read gets its runs on the next pass, which the
            # change itself starts at once
            plan = plans.get(schedule.id, [])
            await _mark(session, schedule, deployment, plan if isinstance(plan, str) else None)
            if not isinstance(plan, str):
                created += await _add_runs(session, schedule, deployment, plan)
        await apply_catchup(session, now)
    return created


def expand(
    specs: dict[uuid.UUID, schedules.Spec], window: Window
) -> dict[uuid.UUID, list[datetime] | str]:
    """The start times of each schedule in the window, or why it has none (its error)."""
    plans: dict[uuid.UUID, list[datetime] | str] = {}
    for schedule_id, spec in specs.items():
        try:
            plans[schedule_id] = schedules.times(
                spec, window.start, window.end, window.limit, window.minimum
            )
        except Invalid as exc:
            plans[schedule_id] = exc.detail
        except Exception:  # a bug in the math must not stop the other schedules
            log.exception("schedule %s could not be expanded", schedule_id)
            plans[schedule_id] = EXPAND_BUG
    return plans


async def _mark(
    session: AsyncSession, schedule: ScheduleRow, deployment: DeploymentRow, error: str | None
) -> None:
    """Record a schedule's error, or clear it, when it changed (logged once, not per pass)."""
    if schedule.error == error:
        return
    if error is None:
        log.info("schedule %s of deployment %s makes runs again", schedule.id, deployment.id)
    else:
        log.warning(
            "schedule %s of deployment %s makes no runs: %s", schedule.id, deployment.id, error
        )
    # a plain UPDATE: a schedule deleted meanwhile matches nothing, which is fine
    await session.execute(
        update(ScheduleRow)
        .where(ScheduleRow.id == schedule.id)
        .values(error=error)
        .execution_options(synchronize_session=False)
    )


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
    """Cancel the overdue runs that the catch-up policies and max lateness rule out.

    The runs are locked as they are read (PostgreSQL; runs another transaction holds, such
    as a claim's, are skipped this time), so a run claimed meanwhile is never cancelled.
    Only runs a rule could cancel are read: those of deployments with a max lateness, and
    the scheduled slots of deployments that do not catch up on all of them. A claim calls
    this, so a backlog of runs started by hand or by automations costs it nothing.
    """
    could_cancel = or_(
        DeploymentRow.max_lateness_seconds.is_not(None),
        and_(FlowRunRow.schedule_id.is_not(None), DeploymentRow.catchup != CatchUp.ALL),
    )
    query = (
        select(FlowRunRow, DeploymentRow, ScheduleRow)
        .join(DeploymentRow, DeploymentRow.id == FlowRunRow.deployment_id)
        .outerjoin(ScheduleRow, ScheduleRow.id == FlowRunRow.schedule_id)
        .where(FlowRunRow.state == S.SCHEDULED, FlowRunRow.scheduled_start <= now, could_cancel)
        .order_by(FlowRunRow.scheduled_start)
        .with_for_update(of=FlowRunRow, skip_locked=True)
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
        except Exception as exc:
            if not unreachable(exc):
                log.exception("scheduler failed; retrying in %.1f s", interval)
            else:  # an outage is expected, and said once per pass without a traceback
                log.warning("scheduler: the database is unreachable (%s); retrying", outage(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(db.schedules_changed.wait(), interval)
