"""Background services of the server: the lease reaper.

The reaper ends runs whose lease ran out: the process that held it (worker while PENDING,
engine while RUNNING) stopped renewing it, so nothing will ever report on the run again.
A run that was asked to cancel ends CANCELLED; any other becomes CRASHED, and is retried
while its deployment's ``crash_retries`` last. A paused run keeps its lease like a running
one (its process waits); a suspended run has none, and is FAILED instead once its pause's
timeout has passed (``models.pausing.fail_expired``): nobody else waits on it.

After the server starts, the reaper waits one full lease period before its first pass: a
lease that ran out while the server was down (an outage, a restart) was not renewed only
because nobody could reach the server, and the engines and workers holding them renew them
as soon as it answers again. A run whose process died during the outage is reaped one
lease period after the start. A database outage while the server runs is the same: the
reaper waits until the database answers again, then one full lease period.

Across replicas every reaper runs, and they share the work: the expired runs are read
``FOR UPDATE SKIP LOCKED`` (the suspended ones too, ``models.pausing.fail_expired``), so each
run is taken by one transaction, and the state it writes is a compare-and-set on the state
it read (``orchestration``): a run ended meanwhile by a replica, a claim or its engine is
left alone. No advisory lock is needed.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select

from dockyard.schemas import StateType as S
from dockyard.server import metrics, orchestration
from dockyard.server.db import Database, outage, unreachable
from dockyard.server.models import pausing
from dockyard.server.tables import FlowRunRow, utcnow

log = logging.getLogger("dockyard.server")
BATCH = 100


async def reap_expired_leases(db: Database) -> int:
    """End every live run whose lease has expired, and every suspended run past its pause's
    timeout. Returns how many were ended."""
    async with db.write() as session:
        now = utcnow()
        expired = list(
            await session.scalars(
                select(FlowRunRow)
                .where(
                    FlowRunRow.state.in_([str(s) for s in orchestration.ACTIVE]),
                    FlowRunRow.lease_expires < now,
                )
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for run in expired:
            if run.state == S.CANCELLING:
                orchestration.record(
                    session, run, S.CANCELLED, "cancelled: no process held the run anymore"
                )
                continue
            holder = "its worker" if run.state == S.PENDING else "the process running it"
            orchestration.record(
                session,
                run,
                S.CRASHED,
                f"lease expired: {holder} stopped renewing it (killed, or its machine was lost)",
            )
            await orchestration.retry_crashed(session, run)
            metrics.of(db).lease_expiries.inc()
        return len(expired) + await pausing.fail_expired(session)


async def reaper_loop(db: Database, interval: float, *, grace: float) -> None:
    """Run the reaper every ``interval`` seconds, the first time ``grace`` seconds after the
    start, until cancelled; never die of an error. After a database outage it waits for the
    database, then ``grace`` seconds again: nobody could renew a lease meanwhile."""
    await asyncio.sleep(grace)
    while not db.notifier.closed:
        try:
            while await reap_expired_leases(db) >= BATCH:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not unreachable(exc):
                log.exception("lease reaper failed; retrying in %.1f s", interval)
            else:  # an outage is expected: no traceback
                log.warning(
                    "lease reaper: the database is unreachable (%s); it resumes %.0f s after "
                    "the database answers again",
                    outage(exc),
                    grace,
                )
                await _database_back(db, interval)
                await asyncio.sleep(grace)
                continue
        await asyncio.sleep(interval)


async def _database_back(db: Database, interval: float) -> None:
    """Return once the database answers (looking every ``interval`` seconds)."""
    while not db.notifier.closed:
        try:
            await db.ping(timeout=interval)
            return
        except Exception as exc:
            if not unreachable(exc):
                log.exception("lease reaper: checking the database failed")
                return
        await asyncio.sleep(interval)
