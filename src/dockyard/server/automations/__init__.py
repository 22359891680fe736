"""Events and automations on the server: the loops that evaluate, deliver and announce.

- **evaluation** (:mod:`.evaluation`) wakes as soon as a transaction of this process that
  added events commits, and on a timer for those added through other server processes; it
  gives events their positions and writes the actions of the automations they fire;
- **delivery** (:mod:`.delivery`) wakes when actions were written and when the next retry
  is due, and does them;
- **housekeeping** announces workers and pools that stopped heartbeating not ready, and
  forgets events and finished actions older than ``events_retention_hours``.

Every loop runs in every server process; what makes each event act once across them is in
:mod:`.evaluation` and :mod:`.delivery`. Housekeeping needs no lock: announcing is an
``UPDATE … WHERE status = 'READY'``, which PostgreSQL re-checks on the row a concurrent
replica just changed, so one replica announces each change; forgetting deletes what is
old, which two replicas may both try harmlessly. On PostgreSQL the evaluator NOTIFYs
:data:`~.evaluation.CHANNEL` when it gave out positions, so that every process's event
readers (``GET /api/events?after=...&wait=...``) wake.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy import delete

from dockyard.server import retention
from dockyard.server.automations import delivery, evaluation, performing
from dockyard.server.db import Database, outage, unreachable
from dockyard.server.models.events import Bells, announce_not_ready, bells_for
from dockyard.server.notify import PostgresListener
from dockyard.server.tables import AutomationActionRow, AutomationBucketRow, utcnow
from dockyard.settings import Settings

__all__ = ["Loops", "start"]

log = logging.getLogger("dockyard.server")
RETENTION_EVERY = 60.0  # seconds between two passes that forget old events


class _EventsListener(PostgresListener):
    """LISTENs on the evaluator's channel (the run channel's listener is the database's);
    it reconnects, and wakes readers on the fallback timer meanwhile, as every listener."""

    channel = evaluation.CHANNEL


@dataclass
class Loops:
    """The running loops of one server process; :meth:`stop` ends them."""

    bells: Bells
    webhooks: performing.Webhooks
    listener: PostgresListener | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        self.bells.close()
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.listener is not None:
            await self.listener.stop()
        await self.webhooks.aclose()


async def start(db: Database, settings: Settings) -> Loops:
    """Start the loops of the database ``db`` (whose events wake them)."""
    bells = bells_for(db.write_engine.sync_engine)
    webhooks = performing.Webhooks(settings)
    loops = Loops(bells=bells, webhooks=webhooks)
    if not db.is_sqlite:
        dsn = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        loops.listener = _EventsListener(dsn, bells.positioned, db.listener_timers)
        await loops.listener.start()
    ui_url = settings.server_ui_url or f"http://{settings.server_host}:{settings.server_port}"
    interval = settings.automation_interval_seconds
    loops.tasks = [
        asyncio.create_task(_evaluating(db, bells, interval)),
        asyncio.create_task(_delivering(db, bells, webhooks, settings, ui_url.rstrip("/"))),
        asyncio.create_task(_housekeeping(db, bells, settings)),
    ]
    return loops


async def _guarded(what: str, step: Callable[[], Awaitable[int]]) -> int:
    """Run one step of a loop; an error is logged with its traceback, never raised."""
    try:
        return await step()
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if unreachable(exc):  # an outage is expected: said without a traceback
            log.warning("%s: the database is unreachable (%s); trying again", what, outage(exc))
        else:
            log.exception("%s failed; trying again", what)
        return -1


# how long the evaluation waits after a new event, for the rest of its burst
EVENT_BATCH_SECONDS = 0.1


async def _evaluating(db: Database, bells: Bells, interval: float) -> None:
    async def step() -> int:
        events, fired = await evaluation.evaluate_pending(db)
        if events:
            bells.positioned.notify()
        if fired:
            bells.actions.notify()
        return events

    while not bells.added.closed:
        rung = bells.added.rung
        done = await _guarded("evaluating events", step)
        if done > 0:
            continue  # there may be more: look again at once
        if bells.added.rung == rung:
            await bells.added.wait(interval)
        # let a burst of changes commit first: one evaluation then takes them all, and the
        # writers of the burst do not queue behind an evaluation per event (on SQLite, each
        # would wait for its write lock)
        await asyncio.sleep(EVENT_BATCH_SECONDS)


async def _delivering(
    db: Database, bells: Bells, webhooks: performing.Webhooks, settings: Settings, ui_url: str
) -> None:
    interval = settings.automation_interval_seconds

    async def step() -> int:
        return await delivery.deliver_due(db, webhooks, settings, ui_url)

    async def until_due() -> int:
        due = await delivery.next_due(db)
        if due is None:
            return int(interval * 1000)
        # an action due now but not claimed is another server's: look again shortly
        return int(max(0.05, (due - utcnow()).total_seconds()) * 1000)

    while not bells.actions.closed:
        rung = bells.actions.rung
        if await _guarded("doing automation actions", step) > 0:
            continue
        wait = await _guarded("reading the next automation action", until_due)
        if bells.actions.rung == rung:
            await bells.actions.wait(min(interval, wait / 1000) if wait > 0 else interval)


async def _housekeeping(db: Database, bells: Bells, settings: Settings) -> None:
    interval = min(settings.automation_interval_seconds, settings.worker_offline_seconds / 3)
    loop = asyncio.get_running_loop()
    forgot_at = loop.time()

    async def announce() -> int:
        async with db.write() as session:
            return await announce_not_ready(session, settings.worker_offline_seconds)

    async def forget() -> int:
        # one rule for what the server keeps (server.retention): events in batches
        cutoff = utcnow() - retention.events_kept(settings)
        await retention.delete_events_before(db, cutoff)
        async with db.write() as session:
            await session.execute(
                delete(AutomationActionRow).where(
                    AutomationActionRow.status != evaluation.PENDING,
                    AutomationActionRow.updated < cutoff,
                )
            )
            await session.execute(
                delete(AutomationBucketRow).where(AutomationBucketRow.start < cutoff)
            )
        return 0

    while not bells.added.closed:
        await _guarded("announcing workers and pools not ready", announce)
        if loop.time() - forgot_at >= RETENTION_EVERY:
            forgot_at = loop.time()
            await _guarded("forgetting old events", forget)
        await asyncio.sleep(interval)
