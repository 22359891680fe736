"""Evaluation: events get their position, and the automations they fire their actions.

One transaction takes the events without a position in the order they were written (up to
:data:`BATCH`), fills in the names of their related resources, gives them the next
positions, counts them against every enabled automation's trigger and writes one action row
per action of each firing. Either all of it commits or none: each event is evaluated once.

On PostgreSQL the transaction first takes an advisory lock, so that the evaluators of
several server processes take turns: positions are handed out by one transaction at a time,
in commit order, so a reader that saw position ``n`` has seen every position before it (an
event whose row commits late simply gets a later position). The enabled automations' rows
are locked too (``FOR UPDATE``) while their windows are counted, so that an automation
changed meanwhile waits for the count. The unique (automation, event, action index) of
action rows stands behind all this: a firing can never be written twice.

Counting: a trigger whose ``within`` is 0 fires on every matching event. Otherwise the first
matching event opens a window of ``within`` seconds (one per value of its ``for_each``
labels); the event that brings the window's count to ``threshold`` fires it, and later
events of the same window do not. The first matching event after the window re-arms it: a
new window opens with that event counted.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas.events import RESOURCE_ROLE
from dockyard.server.db import Database
from dockyard.server.models.events import event_schema, fill_names, last_position
from dockyard.server.tables import (
    AutomationActionRow,
    AutomationBucketRow,
    AutomationRow,
    EventRow,
    utcnow,
)

ADVISORY_KEY = 7244310503
CHANNEL = "dockyard_events"
BATCH = 500
PENDING, SUCCEEDED, FAILED = "PENDING", "SUCCEEDED", "FAILED"


def pattern_matches(pattern: str, value: str) -> bool:
    """``value`` equals ``pattern``, or starts with it less a final ``*``."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def labels_match(labels: dict[str, str], wanted: dict[str, Any]) -> bool:
    """Every wanted label is present, with one of its values."""
    for key, values in wanted.items():
        value = labels.get(key)
        if value is None:
            return False
        options = values if isinstance(values, list) else [values]
        if not any(pattern_matches(option, value) for option in options):
            return False
    return True


def trigger_matches(trigger: dict[str, Any], event: EventRow) -> bool:
    expect = trigger.get("expect") or []
    if expect and not any(pattern_matches(p, event.event) for p in expect):
        return False
    if not labels_match(event.resource, trigger.get("match") or {}):
        return False
    return all(
        any(labels_match(related, wanted) for related in event.related)
        for wanted in trigger.get("match_related") or []
    )


def label_value(event: EventRow, label: str) -> str | None:
    """A resource label, or ``related:ROLE:LABEL``: the label of the related resource of
    that role."""
    if label.startswith("related:"):
        _, role, name = [*label.split(":", 2), "", ""][:3]
        for related in event.related:
            if related.get(RESOURCE_ROLE) == role:
                return related.get(name)
        return None
    return event.resource.get(label)


def bucket_key(trigger: dict[str, Any], event: EventRow) -> str:
    values = [label_value(event, label) for label in trigger.get("for_each") or []]
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()


class Counter:
    """The windows of one batch's automations, read once each and kept for the batch."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.buckets: dict[tuple[uuid.UUID, str], AutomationBucketRow] = {}

    async def fires(self, automation: AutomationRow, event: EventRow) -> bool:
        trigger = automation.trigger
        within = float(trigger.get("within") or 0)
        if within <= 0:
            return True
        key = (automation.id, bucket_key(trigger, event))
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = await self.session.scalar(
                select(AutomationBucketRow).where(
                    AutomationBucketRow.automation_id == key[0], AutomationBucketRow.key == key[1]
                )
            )
        if bucket is None:
            bucket = AutomationBucketRow(
                id=uuid.uuid4(), automation_id=key[0], key=key[1], start=event.occurred
            )
            bucket.count, bucket.fired = 0, False
            self.session.add(bucket)
        elif (event.occurred - bucket.start).total_seconds() > within:
            bucket.start, bucket.count, bucket.fired = event.occurred, 0, False
        self.buckets[key] = bucket
        bucket.count += 1
        if bucket.count >= int(trigger.get("threshold") or 1) and not bucket.fired:
            bucket.fired = True
            return True
        return False


async def evaluate(session: AsyncSession, events: list[EventRow]) -> int:
    """Count ``events`` (in order) against the enabled automations; add the action rows of
    each firing. Returns how many firings there were."""
    automations = list(
        await session.scalars(
            select(AutomationRow)
            .where(AutomationRow.enabled.is_(True))
            .order_by(AutomationRow.created, AutomationRow.id)
            .with_for_update()
        )
    )
    if not automations:
        return 0
    counter = Counter(session)
    fired = 0
    now = utcnow()
    for event in events:
        for automation in automations:
            if trigger_matches(automation.trigger, event) and await counter.fires(
                automation, event
            ):
                fired += 1
                _fire(session, automation, event, now)
    return fired


def _fire(session: AsyncSession, automation: AutomationRow, event: EventRow, now: Any) -> None:
    context = {
        "automation": {"id": str(automation.id), "name": automation.name},
        "event": event_schema(event).model_dump(mode="json"),
    }
    for index, action in enumerate(automation.actions):
        session.add(
            AutomationActionRow(
                id=uuid.uuid4(),
                automation_id=automation.id,
                event_id=event.id,
                action_index=index,
                action=action,
                context=context,
                status=PENDING,
                attempts=0,
                next_attempt=now,
            )
        )


async def evaluate_pending(db: Database) -> tuple[int, int]:
    """Position and evaluate the next batch of events; return (events, firings)."""
    async with db.read() as session:
        waiting = await session.scalar(
            select(EventRow.seq).where(EventRow.position.is_(None)).limit(1)
        )
    if waiting is None:
        return 0, 0

    async def work(session: AsyncSession) -> tuple[int, int]:
        if not db.is_sqlite:
            await session.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_KEY})"))
        rows = list(
            await session.scalars(
                select(EventRow)
                .where(EventRow.position.is_(None))
                .order_by(EventRow.seq)
                .limit(BATCH)
            )
        )
        if not rows:
            return 0, 0
        await fill_names(session, rows)
        start = await last_position(session)
        for offset, row in enumerate(rows, start=1):
            row.position = start + offset
        fired = await evaluate(session, rows)
        if not db.is_sqlite:
            await session.execute(text(f"NOTIFY {CHANNEL}"))
        return len(rows), fired

    return await db.write_retrying(work)
