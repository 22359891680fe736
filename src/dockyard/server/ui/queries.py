"""Reads the pages need beyond what ``dockyard.server.models`` offers (counts, filters)."""

from __future__ import annotations

import functools
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
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
    FlowRunStateRow,
    LogRow,
    TaskRunRow,
    UTCDateTime,
    WorkPoolRow,
    run_time,
    utcnow,
)
from dockyard.server.ui import gantt

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
    its creation. Indexed (``ix_flow_runs_when``): ranges of it are read off the index."""
    return run_time()


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


# ---------------------------------------------------------------- task timeline


async def gantt_spans(
    session: AsyncSession, run_id: uuid.UUID, *, order: str, limit: int, now: datetime
) -> tuple[list[gantt.Span], int]:
    """The task runs and subflow runs of a run that started, for its timeline: the first
    ``limit`` of them by start (or the longest, ``order="duration"``; one still running
    lasts until ``now``), each with its attempts' history; and how many there are (counted
    up to ``gantt.COUNT_AT_MOST``).

    As many queries whatever their number, each reading only the columns the chart needs:
    the bars (task runs and subflow runs in one query), their count when there are more than
    ``limit``, the retry lines of the task runs that were retried (a task run is recorded
    once, when it ends: :func:`gantt.retry_history`), and the states of the subflow runs.
    """
    task_runs = select(
        literal_column("'task'").label("kind"),
        *(getattr(TaskRunRow, c) for c in ("id", "name", "state", "start_time", "end_time")),
        TaskRunRow.attempts,
        TaskRunRow.cached,
    ).where(TaskRunRow.flow_run_id == run_id, TaskRunRow.start_time.is_not(None))
    subflow_runs = select(
        literal_column("'subflow'"),
        *(getattr(FlowRunRow, c) for c in ("id", "name", "state", "start_time", "end_time")),
        FlowRunRow.attempt,
        false(),
    ).where(FlowRunRow.parent_flow_run_id == run_id, FlowRunRow.start_time.is_not(None))
    both = union_all(task_runs, subflow_runs).subquery()
    by: list[Any] = [both.c.start_time, both.c.id]
    if order == "duration":
        ended = func.coalesce(both.c.end_time, literal(now, UTCDateTime()))
        by.insert(0, _seconds_between(session, both.c.start_time, ended).desc())
    rows = (await session.execute(select(both).order_by(*by).limit(limit + 1))).all()
    total = len(rows)
    if total > limit:
        rows, counted = rows[:limit], union_all(task_runs, subflow_runs).limit(gantt.COUNT_AT_MOST)
        total = int(await session.scalar(select(func.count()).select_from(counted.subquery())) or 0)
    retries = await _retry_lines(session, run_id, [r for r in rows if r.kind == "task"])
    states = await _subflow_states(session, [r.id for r in rows if r.kind == "subflow"])
    spans = []
    for r in rows:
        history = tuple(states.get(r.id, ()))
        if r.id in retries:
            history = gantt.retry_history(r.start_time, r.end_time, r.state, retries[r.id])
        spans.append(
            gantt.Span(
                id=r.id,
                name=r.name,
                state=r.state,
                start=r.start_time,
                end=r.end_time,
                kind=r.kind,
                attempts=r.attempts,
                cached=bool(r.cached),
                history=history,
            )
        )
    return spans, total


def _seconds_between(session: AsyncSession, start: Any, end: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":  # times are text there
        return (func.julianday(end) - func.julianday(start)) * 86400.0
    return func.extract("epoch", end - start)


async def _retry_lines(
    session: AsyncSession, run_id: uuid.UUID, task_runs: Sequence[Any]
) -> dict[uuid.UUID, list[tuple[datetime, str]]]:
    """The engine's lines about the failed attempts of the task runs that were retried."""
    retried = [t.id for t in task_runs if t.attempts > 1]
    found: dict[uuid.UUID, list[tuple[datetime, str]]] = defaultdict(list)
    if not retried:
        return found
    expected = sum(t.attempts - 1 for t in task_runs if t.attempts > 1)
    rows = await session.execute(
        select(LogRow.task_run_id, LogRow.timestamp, LogRow.message)
        .where(
            LogRow.flow_run_id == run_id,
            LogRow.task_run_id.in_(retried),
            LogRow.level == logging.WARNING,
            LogRow.message.like(gantt.RETRY_LIKE),
        )
        .order_by(LogRow.id)
        .limit(min(expected, gantt.COUNT_AT_MOST))
    )
    for task_run_id, timestamp, message in rows.all():
        if task_run_id is not None:
            found[task_run_id].append((timestamp, message))
    return found


async def _subflow_states(
    session: AsyncSession, subflow_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, datetime]]]:
    """The states of subflow runs, in order (their attempts and waits)."""
    found: dict[uuid.UUID, list[tuple[str, datetime]]] = defaultdict(list)
    if subflow_ids:
        rows = await session.execute(
            select(FlowRunStateRow.flow_run_id, FlowRunStateRow.type, FlowRunStateRow.timestamp)
            .where(FlowRunStateRow.flow_run_id.in_(list(subflow_ids)))
            .order_by(FlowRunStateRow.id)
            .limit(gantt.COUNT_AT_MOST)
        )
        for run_id, state, timestamp in rows.all():
            found[run_id].append((state, timestamp))
    return found


# ---------------------------------------------------------------- charts


@functools.cache
def _per_bucket_query(buckets: int, of_deployment: bool) -> Any:
    """The statement of :func:`runs_per_bucket`, built once per number of buckets: its
    edges (``e0`` ...) and deployment are parameters."""
    edges = [bindparam(f"e{i}", type_=UTCDateTime()) for i in range(buckets + 1)]
    # bucket numbers written in the statement, not sent as parameters of no type
    bucket = (
        case(
            *((when() < edges[i + 1], literal_column(str(i))) for i in range(buckets - 1)),
            else_=literal_column(str(buckets - 1)),
        )
        if buckets > 1
        else literal_column("0")
    )
    query = select(bucket.label("bucket"), FlowRunRow.state).where(
        when() >= edges[0], when() <= edges[-1]
    )
    if of_deployment:
        query = query.where(FlowRunRow.deployment_id == bindparam("deployment_id"))
    rows = query.subquery()
    # grouped outside: PostgreSQL would not match the CASE's parameters in a GROUP BY
    return select(rows.c.bucket, rows.c.state, func.count()).group_by(rows.c.bucket, rows.c.state)


async def runs_per_bucket(
    session: AsyncSession,
    edges: Sequence[datetime],
    *,
    deployment_id: uuid.UUID | None = None,
) -> dict[tuple[int, str], int]:
    """How many runs, by bucket and state, have their time (:func:`when`) in each bucket:
    bucket ``i`` runs from ``edges[i]`` to ``edges[i + 1]`` (the last one includes its end).

    Counted in the database, over the range only (``ix_flow_runs_when``, or
    ``ix_flow_runs_deployment_when`` for one deployment's runs)."""
    query = _per_bucket_query(len(edges) - 1, deployment_id is not None)
    params: dict[str, Any] = {f"e{i}": edge for i, edge in enumerate(edges)}
    if deployment_id is not None:
        params["deployment_id"] = deployment_id
    found = await session.execute(query, params)
    return {(int(bucket), state): count for bucket, state, count in found}


async def started_runs(
    session: AsyncSession,
    since: datetime,
    until: datetime,
    *,
    limit: int,
    deployment_id: uuid.UUID | None = None,
) -> list[Any]:
    """The latest ``limit`` runs that started between ``since`` and ``until``, newest first:
    rows of id, name, state, start_time and end_time. (A started run's :func:`when` is its
    start, so the range is read off the same index as the counts.)"""
    query = (
        select(
            FlowRunRow.id,
            FlowRunRow.name,
            FlowRunRow.state,
            FlowRunRow.start_time,
            FlowRunRow.end_time,
        )
        .where(when() >= since, when() <= until, FlowRunRow.start_time.is_not(None))
        .order_by(when().desc())
        .limit(limit)
    )
    if deployment_id is not None:
        query = query.where(FlowRunRow.deployment_id == deployment_id)
    return list((await session.execute(query)).all())


@dataclass(frozen=True)
class QueueOverTime:
    """A queue's runs at each moment of a pool's chart: waiting and not late yet, late, and
    running."""

    scheduled: list[int]
    late: list[int]
    running: list[int]


@functools.cache
def _over_time_query(moments: int) -> Any:
    """The statement of :func:`pool_over_time`, built once per number of moments: the pool,
    the moments (``t0`` ...) and the times before which a run waiting then is late
    (``late0`` ...) are parameters."""
    final = [str(s) for s in orchestration.FINAL]
    columns = [
        FlowRunRow.work_queue_id,
        FlowRunRow.scheduled_start,
        FlowRunRow.start_time,
        FlowRunRow.end_time,
    ]
    in_pool = FlowRunRow.work_pool_id == bindparam("pool_id")
    # two reads of ix_flow_runs_pool_state: the runs ended since the first moment, and those
    # not ended (not final), whatever their age; never the pool's older runs
    ended = select(*columns).where(
        in_pool, FlowRunRow.state.in_(final), FlowRunRow.end_time >= bindparam("t0")
    )
    not_ended = select(*columns).where(
        in_pool, FlowRunRow.state.in_([str(s) for s in S if str(s) not in final])
    )
    run = union_all(ended, not_ended).subquery()
    counts = []
    for i in range(moments):
        t = bindparam(f"t{i}", type_=UTCDateTime())
        late_before = bindparam(f"late{i}", type_=UTCDateTime())
        still_open = or_(run.c.end_time.is_(None), run.c.end_time > t)
        waiting = (
            run.c.scheduled_start <= t,
            or_(run.c.start_time.is_(None), run.c.start_time > t),
            still_open,
        )
        counts += [
            func.count().filter(*waiting, run.c.scheduled_start >= late_before),
            func.count().filter(*waiting, run.c.scheduled_start < late_before),
            func.count().filter(run.c.start_time <= t, still_open),
        ]
    return select(run.c.work_queue_id, *counts).group_by(run.c.work_queue_id)


async def pool_over_time(
    session: AsyncSession, pool_id: uuid.UUID, moments: Sequence[datetime]
) -> dict[uuid.UUID | None, QueueOverTime]:
    """Per queue of a pool (``None``: runs of no queue), its runs at each of ``moments``.

    Nothing stores how deep a queue was: it is read off the runs' times. A run waits at
    ``t`` once its scheduled start has come, until it starts or ends (cancelled before its
    start); it is late once it has waited longer than the late threshold; it runs from its
    start until its end. Only runs open at some moment count: those that ended after the
    first moment, and those not ended. All moments are counted in one pass over them.
    """
    params: dict[str, Any] = {"pool_id": pool_id}
    for i, t in enumerate(moments):
        params[f"t{i}"] = t
        params[f"late{i}"] = t - runs.LATE_AFTER
    found = {}
    for queue_id, *values in await session.execute(_over_time_query(len(moments)), params):
        found[queue_id] = QueueOverTime(
            scheduled=list(values[0::3]), late=list(values[1::3]), running=list(values[2::3])
        )
    return found
