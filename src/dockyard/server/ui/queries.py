"""Reads the pages need beyond what ``dockyard.server.models`` offers (counts, filters)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import orchestration
from dockyard.server.models import runs
from dockyard.server.models.flows import deployments_in_order, slug
from dockyard.server.tables import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    WorkPoolRow,
    utcnow,
)

FAILED = [str(S.FAILED), str(S.CRASHED)]
RANGES = {
    "past": ("Until now", None),
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "upcoming": ("Upcoming", None),
    "all": ("Any time", None),
}


def when() -> Any:
    """A run's time: when it started, else when it is (or was) due, else its creation."""
    return func.coalesce(FlowRunRow.start_time, FlowRunRow.scheduled_start, FlowRunRow.created)


@dataclass(frozen=True)
class RunFilter:
    """The flow-run list's filters, as given in its query string."""

    state: str = ""
    flow: str = ""
    deployment: str = ""
    pool: str = ""
    range: str = "past"
    deployment_id: uuid.UUID | None = None

    def apply(self, query: Any) -> Any:
        now = utcnow()
        if self.state == "LATE":
            query = query.where(
                FlowRunRow.state == S.SCHEDULED,
                FlowRunRow.scheduled_start < now - runs.LATE_AFTER,
            )
        elif self.state in S.__members__:
            query = query.where(FlowRunRow.state == self.state)
        if self.flow:
            query = query.where(FlowRow.slug == slug(self.flow))
        if self.deployment:
            query = query.where(DeploymentRow.name == self.deployment)
        if self.deployment_id:
            query = query.where(FlowRunRow.deployment_id == self.deployment_id)
        if self.pool:
            query = query.where(WorkPoolRow.name == self.pool)
        return self._in_range(query, now)

    def _in_range(self, query: Any, now: datetime) -> Any:
        if self.range == "upcoming":
            return query.where(when() > now).order_by(when(), FlowRunRow.id)
        if self.range in RANGES and self.range != "all":
            query = query.where(when() <= now)
            span = RANGES[self.range][1]
            if span is not None:
                query = query.where(when() >= now - span)
        return query.order_by(when().desc(), FlowRunRow.id)


async def list_runs(
    session: AsyncSession, filters: RunFilter, *, limit: int, offset: int = 0
) -> list[schemas.FlowRun]:
    query = filters.apply(runs.joined()).limit(limit).offset(offset)
    return [runs.from_row(row) for row in (await session.execute(query)).all()]


async def state_counts(session: AsyncSession, since: datetime) -> dict[str, int]:
    """How many runs (by state) started, or were due, since ``since`` (and not later than now)."""
    rows = await session.execute(
        select(FlowRunRow.state, func.count())
        .where(when() >= since, when() <= utcnow())
        .group_by(FlowRunRow.state)
    )
    return {state: count for state, count in rows.all()}


@dataclass(frozen=True)
class Failing:
    deployment_id: uuid.UUID
    flow_name: str
    name: str
    failures: int
    last_failure: datetime


async def failing_deployments(session: AsyncSession, since: datetime, limit: int) -> list[Failing]:
    """Deployments with runs that ended FAILED or CRASHED since ``since``, most failures first."""
    last = func.max(FlowRunRow.end_time)
    rows = await session.execute(
        select(DeploymentRow.id, FlowRow.name, DeploymentRow.name, func.count(), last)
        .join(FlowRunRow, FlowRunRow.deployment_id == DeploymentRow.id)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .where(FlowRunRow.state.in_(FAILED), FlowRunRow.end_time >= since)
        .group_by(DeploymentRow.id, FlowRow.name, DeploymentRow.name)
        .order_by(func.count().desc(), last.desc())
        .limit(limit)
    )
    return [
        Failing(deployment_id=i, flow_name=f, name=n, failures=c, last_failure=t)
        for i, f, n, c, t in rows.all()
        if t is not None
    ]


async def live_runs_by_pool(
    session: AsyncSession, pool_ids: Sequence[uuid.UUID]
) -> Counter[uuid.UUID]:
    """Runs holding a slot (PENDING, RUNNING, CANCELLING, AWAITING_RETRY) per pool."""
    rows = await session.execute(
        select(FlowRunRow.work_pool_id, func.count())
        .where(orchestration.live(), FlowRunRow.work_pool_id.in_(list(pool_ids)))
        .group_by(FlowRunRow.work_pool_id)
    )
    return Counter({pool_id: count for pool_id, count in rows.all() if pool_id is not None})


async def queue_counts(session: AsyncSession, pool_id: uuid.UUID) -> dict[str, Counter[Any]]:
    """Per queue of a pool: its late runs and its live runs."""
    late = await session.execute(
        select(FlowRunRow.work_queue_id, func.count())
        .where(
            FlowRunRow.work_pool_id == pool_id,
            FlowRunRow.state == S.SCHEDULED,
            FlowRunRow.scheduled_start < utcnow() - runs.LATE_AFTER,
        )
        .group_by(FlowRunRow.work_queue_id)
    )
    live = await session.execute(
        select(FlowRunRow.work_queue_id, func.count())
        .where(FlowRunRow.work_pool_id == pool_id, orchestration.live())
        .group_by(FlowRunRow.work_queue_id)
    )
    return {"late": Counter(dict(late.all())), "live": Counter(dict(live.all()))}


async def pools(session: AsyncSession, *, limit: int, offset: int = 0) -> list[WorkPoolRow]:
    query = select(WorkPoolRow).order_by(WorkPoolRow.name).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def deployments(
    session: AsyncSession,
    *,
    limit: int,
    offset: int = 0,
    pool_id: uuid.UUID | None = None,
    flow_ids: Sequence[uuid.UUID] | None = None,
) -> list[DeploymentRow]:
    query = deployments_in_order(limit=limit, offset=offset)
    if pool_id is not None:
        query = query.where(DeploymentRow.work_pool_id == pool_id)
    if flow_ids is not None:
        query = query.where(DeploymentRow.flow_id.in_(list(flow_ids)))
    return list(await session.scalars(query))


async def flows(session: AsyncSession, *, limit: int, offset: int = 0) -> list[FlowRow]:
    query = select(FlowRow).order_by(FlowRow.name).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def names(session: AsyncSession, column: Any, limit: int = 500) -> list[str]:
    """Distinct names for a filter's choices (flows, pools)."""
    return list(await session.scalars(select(column).distinct().order_by(column).limit(limit)))


async def run_counts_by_flow(
    session: AsyncSession, flow_ids: Sequence[uuid.UUID]
) -> Counter[uuid.UUID]:
    rows = await session.execute(
        select(FlowRunRow.flow_id, func.count())
        .where(FlowRunRow.flow_id.in_(list(flow_ids)))
        .group_by(FlowRunRow.flow_id)
    )
    return Counter(dict(rows.all()))
