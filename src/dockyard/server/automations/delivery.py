"""Delivery: the action rows that evaluation wrote are claimed, done and recorded.

A claim is a short transaction that takes due PENDING rows (PostgreSQL ``FOR UPDATE SKIP
LOCKED``: replicas claim different rows), counts the attempt and moves ``next_attempt`` one
lease ahead: a server that dies while doing an action leaves it due again once the lease
runs out, and another one does it. The actions are then done outside any transaction, and
their outcomes recorded in one more: SUCCEEDED, FAILED for good, or PENDING again after a
delay that doubles with each attempt (``automation_retry_seconds`` up to
``automation_retry_max_seconds``) until ``automation_attempts`` were made. The last error
stays on the row meanwhile, for the API, the CLI and the UI to show.

So every firing's action is done at least once; a server that dies between doing an action
and recording it does it again (a run-deployment action then finds the run it made).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.server.automations.evaluation import FAILED, PENDING, SUCCEEDED
from dockyard.server.automations.performing import Job, Outcome, Webhooks, perform
from dockyard.server.db import Database
from dockyard.server.tables import AutomationActionRow, utcnow
from dockyard.settings import Settings

BATCH = 20


@dataclass(frozen=True)
class Retries:
    first: float
    cap: float
    attempts: int

    @classmethod
    def of(cls, settings: Settings) -> Retries:
        return cls(
            settings.automation_retry_seconds,
            settings.automation_retry_max_seconds,
            settings.automation_attempts,
        )

    def delay(self, attempts: int) -> float:
        return float(min(self.first * 2 ** (attempts - 1), self.cap))


def lease_seconds(settings: Settings) -> float:
    """How long a claimed action is left to its server: longer than a webhook with its
    redirects can take."""
    return max(30.0, 7 * settings.webhook_timeout_seconds)


async def claim(db: Database, lease: float) -> list[Job]:
    async def work(session: AsyncSession) -> list[Job]:
        now = utcnow()
        rows = list(
            await session.scalars(
                select(AutomationActionRow)
                .where(
                    AutomationActionRow.status == PENDING, AutomationActionRow.next_attempt <= now
                )
                .order_by(AutomationActionRow.next_attempt)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        )
        for row in rows:
            row.attempts += 1
            row.next_attempt = now + timedelta(seconds=lease)
        return [Job(row.id, row.action, row.context, row.attempts) for row in rows]

    return await db.write_retrying(work)


async def record(db: Database, done: list[tuple[Job, Outcome]], retries: Retries) -> None:
    async def work(session: AsyncSession) -> None:
        now = utcnow()
        for job, outcome in done:
            row = await session.get(AutomationActionRow, job.id, with_for_update=True)
            if row is None or row.attempts != job.attempts or row.status != PENDING:
                continue  # its automation went, or another server took it over
            if outcome.ok:
                row.status, row.last_error = SUCCEEDED, None
            elif outcome.retry and row.attempts < retries.attempts:
                row.last_error = f"attempt {row.attempts} of {retries.attempts}: {outcome.error}"
                row.next_attempt = now + timedelta(seconds=retries.delay(row.attempts))
            else:
                row.status = FAILED
                row.last_error = f"attempt {row.attempts} of {retries.attempts}: {outcome.error}"

    await db.write_retrying(work)


async def deliver_due(db: Database, webhooks: Webhooks, settings: Settings, ui_url: str) -> int:
    """Do the due actions (one batch); return how many."""
    jobs = await claim(db, lease_seconds(settings))
    if not jobs:
        return 0
    outcomes = await asyncio.gather(*(perform(db, webhooks, job, ui_url) for job in jobs))
    await record(db, list(zip(jobs, outcomes, strict=True)), Retries.of(settings))
    return len(jobs)


async def next_due(db: Database) -> datetime | None:
    async with db.read() as session:
        due: datetime | None = await session.scalar(
            select(func.min(AutomationActionRow.next_attempt)).where(
                AutomationActionRow.status == PENDING
            )
        )
        return due
