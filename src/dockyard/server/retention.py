"""Retention: what the server forgets, and when. One rule: nothing is kept longer than
``retention_days`` (``DOCKYARD_RETENTION_DAYS``; 0, the default, keeps everything).

- A **final** flow run (:data:`~dockyard.schemas.FINAL_STATES`) whose end is older than that
  is deleted with its logs, task runs and state history. Its artifacts stay, unlinked, and its
  sub-runs lose their parent link, exactly as when a run is deleted through the API (both are
  the foreign keys' ``SET NULL``). Runs that have not ended are never touched, however old.
- **Events** have their own, usually shorter, window (``events_retention_hours``) and are
  forgotten by the automations' housekeeping loop; :func:`events_kept` caps that window at
  ``retention_days``, so the one rule holds for them too, and :func:`delete_events_before`
  deletes them the same way as runs.

Every delete goes in batches of at most :data:`BATCH` rows, one transaction each: no
transaction holds many locks, and on SQLite (one writer at a time) other writes slip in
between two batches. Every replica on one PostgreSQL runs the same loop; each batch picks its
rows ``FOR UPDATE SKIP LOCKED``, so two replicas never wait on each other or delete the same
rows twice — they share the work.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select

from dockyard.schemas import FINAL_STATES
from dockyard.server.db import Database
from dockyard.server.tables import EventRow, FlowRunRow, LogRow, TaskRunRow, utcnow
from dockyard.settings import Settings

__all__ = [
    "BATCH",
    "Swept",
    "delete_events_before",
    "events_kept",
    "retention_loop",
    "run_cutoff",
    "sweep",
]

log = logging.getLogger("dockyard.server")
BATCH = 1000  # rows per transaction
EVERY = 3600.0  # seconds between two passes: a window counted in days needs no finer grain
RETRY = 60.0  # seconds before a pass that failed is tried again


@dataclass
class Swept:
    """How many rows one pass deleted."""

    runs: int = 0
    logs: int = 0
    task_runs: int = 0

    def __bool__(self) -> bool:
        return bool(self.runs or self.logs or self.task_runs)


def run_cutoff(settings: Settings, now: datetime | None = None) -> datetime | None:
    """Final runs that ended before this are deleted; ``None`` when everything is kept."""
    if settings.retention_days <= 0:
        return None
    return (now or utcnow()) - timedelta(days=settings.retention_days)


def events_kept(settings: Settings) -> timedelta:
    """How long events are kept: ``events_retention_hours``, never longer than
    ``retention_days`` when that is set."""
    hours = settings.events_retention_hours
    if settings.retention_days > 0:
        hours = min(hours, settings.retention_days * 24)
    return timedelta(hours=hours)


def _old_runs(cutoff: datetime) -> ColumnElement[bool]:
    return FlowRunRow.state.in_(sorted(FINAL_STATES)) & (FlowRunRow.end_time < cutoff)


async def _delete_batches(db: Database, pick: Select[Any], key: Any, table: Any, batch: int) -> int:
    """Delete the rows ``pick`` selects (their ``key`` column), ``batch`` per transaction,
    until none is left; return how many went."""
    total = 0
    while True:
        async with db.write() as session:
            ids = list(await session.scalars(pick.limit(batch)))
            if ids:
                await session.execute(
                    delete(table).where(key.in_(ids)).execution_options(synchronize_session=False)
                )
        total += len(ids)
        if len(ids) < batch:
            return total
        await asyncio.sleep(0)  # let requests waiting for the database go first


async def sweep(db: Database, cutoff: datetime, *, batch: int = BATCH) -> Swept:
    """Delete the final runs that ended before ``cutoff``, with what belongs to them.

    Logs and task runs go first, in their own batches (a run may have thousands); then the
    runs, whose state history (a few rows each) goes with them through its foreign key.
    """
    old = _old_runs(cutoff)
    logs = (
        select(LogRow.id)
        .join(FlowRunRow, LogRow.flow_run_id == FlowRunRow.id)
        .where(old)
        .with_for_update(of=LogRow, skip_locked=True)
    )
    task_runs = (
        select(TaskRunRow.id)
        .join(FlowRunRow, TaskRunRow.flow_run_id == FlowRunRow.id)
        .where(old)
        .with_for_update(of=TaskRunRow, skip_locked=True)
    )
    runs = select(FlowRunRow.id).where(old).with_for_update(skip_locked=True)
    swept = Swept()
    swept.logs = await _delete_batches(db, logs, LogRow.id, LogRow, batch)
    swept.task_runs = await _delete_batches(db, task_runs, TaskRunRow.id, TaskRunRow, batch)
    swept.runs = await _delete_batches(db, runs, FlowRunRow.id, FlowRunRow, batch)
    return swept


async def delete_events_before(db: Database, cutoff: datetime, *, batch: int = BATCH) -> int:
    """Delete the events that occurred before ``cutoff`` and were evaluated (an event not
    evaluated yet may still fire an automation). Returns how many went."""
    pick = (
        select(EventRow.seq)
        .where(EventRow.position.is_not(None), EventRow.occurred < cutoff)
        .with_for_update(skip_locked=True)
    )
    return await _delete_batches(db, pick, EventRow.seq, EventRow, batch)


async def retention_loop(db: Database, settings: Settings, *, every: float = EVERY) -> None:
    """Sweep at start, then every ``every`` seconds; nothing to do when everything is kept.

    A pass that fails is logged with its traceback and tried again after :data:`RETRY`
    seconds: what it deleted so far stays deleted, and the next pass picks up the rest.
    """
    if run_cutoff(settings) is None:
        return
    while True:
        cutoff = run_cutoff(settings)
        assert cutoff is not None
        try:
            swept = await sweep(db, cutoff)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("deleting flow runs that ended before %s failed; trying again", cutoff)
            await asyncio.sleep(min(RETRY, every))
            continue
        if swept:
            log.info(
                "retention: deleted %d flow runs, %d task runs and %d logs that ended before %s",
                swept.runs,
                swept.task_runs,
                swept.logs,
                cutoff.isoformat(timespec="seconds"),
            )
        await asyncio.sleep(every)
