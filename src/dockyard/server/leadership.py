"""One actor per job across server replicas on one PostgreSQL database.

Every server process runs every background loop; what keeps two replicas from acting on one
thing is, per job:

- a **transaction advisory lock** (:func:`try_lead`), where a pass must be done by one
  replica at a time as a whole: the scheduler's pass (expanding schedules into runs and the
  catch-up policy). A replica that does not get the lock skips the pass; the lock goes with
  the transaction, so a replica that dies mid-pass frees it at once;
- a blocking advisory lock where every replica's work must be serialized rather than
  skipped: schema migrations at start (:data:`Job.MIGRATE`) and the events' evaluator
  (``automations.evaluation``, :data:`Job.EVALUATE`), which hands out positions in order;
- row locks taken ``FOR UPDATE SKIP LOCKED`` where replicas share the work: the lease and
  pause reapers, the catch-up inside a claim, deliveries of automation actions, retention.
  Each row is taken by one transaction, and every state write is a compare-and-set on top.

The keys are defined here once. On SQLite there is one server process: it always leads.
"""

from __future__ import annotations

import enum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["Job", "lock", "try_lead"]


class Job(enum.IntEnum):
    """The advisory lock key of each job that takes one."""

    MIGRATE = 7244310501
    SCHEDULE = 7244310502
    EVALUATE = 7244310503  # automations.evaluation (its ADVISORY_KEY)


async def try_lead(session: AsyncSession | AsyncConnection, job: Job) -> bool:
    """Take ``job``'s lock for the current transaction if nobody holds it; return whether
    this replica got it (always True on SQLite). Never waits."""
    if _is_sqlite(session):
        return True
    got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": int(job)})
    return bool(got)


async def lock(session: AsyncSession | AsyncConnection, job: Job) -> None:
    """Wait for ``job``'s lock and hold it until the transaction ends (PostgreSQL only)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": int(job)})


def _is_sqlite(session: AsyncSession | AsyncConnection) -> bool:
    bind = session if isinstance(session, AsyncConnection) else session.get_bind()
    return bind.dialect.name == "sqlite"
