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
    """A run's time: when it started, else when it ended (a run cancelled before its start
    belongs with the past, not with the upcoming runs), else when it is (or was) due, else
    its creation."""
    return func.coalesce(
        FlowRunRow.start_time, FlowRunRow.end_time, FlowRunRow.scheduled_start, FlowRunRow.created
    )


@dataclass(frozen=True)
class RunFilter:
    """The flow-run list's filters, as given in its query string.

    ``state``: one state, ``LATE``, or several states joined by commas (``FAILED,CRASHED``).
    """

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
        elif self.states:
            query = query.where(FlowRunRow.state.in_(self.states))
        if self.flow:
            query = query.where(FlowRow.slug == slug(self.flow))
        if self.deployment:
            query = query.where(deployment_matches(self.deployment))
        if self.deployment_id:
            query = query.where(FlowRunRow.deployment_id == self.deployment_id)
        if self.pool:
            query = query.where(WorkPoolRow.name == self.pool)
        return self._in_range(query, now)

    @property
    def states(self) -> list[str]:
        """The states asked for (none: any state)."""
        return [s for s in self.state.split(",") if s in S.__members__]

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
    """How many runs (by state) have their time (:func:`when`) since ``since`` and not later
    than now: what the run list shows for each state over that range."""
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
    """Deployments with FAILED or CRASHED runs since ``since``, most failures first.

    A run counts by the same time as the run list's filters (:func:`when`), so a
    deployment's count is what ``/runs?deployment_id=…&state=FAILED,CRASHED`` lists.
    """
    last = func.max(FlowRunRow.end_time)
    rows = await session.execute(
        select(DeploymentRow.id, FlowRow.name, DeploymentRow.name, func.count(), last)
        .join(FlowRunRow, FlowRunRow.deployment_id == DeploymentRow.id)
        .join(FlowRow, FlowRow.id == DeploymentRow.flow_id)
        .where(FlowRunRow.state.in_(FAILED), when() >= since, when() <= utcnow())
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


def deployment_matches(text: str) -> Any:
    """Whether a run's deployment is the one typed as the UI shows it: the start of
    ``FLOW/NAME`` or of ``NAME``, in any case (``etl/night``, ``Nightly``)."""
    typed = text.strip().lower()
    shown = func.lower(FlowRow.name + "/" + DeploymentRow.name)
    return shown.startswith(typed, autoescape=True) | func.lower(DeploymentRow.name).startswith(
        typed, autoescape=True
    )


async def count_runs_upto(session: AsyncSession, filters: RunFilter, at_most: int) -> int:
    """How many runs ``list_runs`` would list, counting no further than ``at_most`` (a page
    that refreshes itself every few seconds must not count a million rows each time)."""
    listed = filters.apply(runs.joined()).order_by(None).limit(at_most).subquery()
    return int(await session.scalar(select(func.count()).select_from(listed)) or 0)


async def deployment_names(session: AsyncSession, limit: int = 500) -> list[str]:
    """``FLOW/NAME`` of deployments, for the run list's deployment box to suggest."""
    query = _full_names().order_by(FlowRow.name, DeploymentRow.name).limit(limit)
    return [f"{flow}/{name}" for flow, name in (await session.execute(query)).all()]


async def deployment_name(session: AsyncSession, deployment_id: uuid.UUID) -> str | None:
    """``FLOW/NAME`` of a deployment, or ``None`` if there is none with this id."""
    found = (await session.execute(_full_names().where(DeploymentRow.id == deployment_id))).first()
    return f"{found[0]}/{found[1]}" if found else None


def _full_names() -> Any:
    """A select of deployments' flow names and names (``FLOW/NAME`` as the UI shows them)."""
    return select(FlowRow.name, DeploymentRow.name).join(
        FlowRow, FlowRow.id == DeploymentRow.flow_id
    )
