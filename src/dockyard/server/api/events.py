"""Events: emit one, list past ones, or follow new ones (a long-poll).

``GET /events`` without ``after`` answers the latest events, newest first (``before`` pages
back). With ``after`` (a cursor: the ``cursor`` of an earlier answer), it answers the events
that came after it, oldest first, waiting up to ``wait`` seconds for the first; the answer's
``cursor`` is where the next call starts, past the events a filter left out too.
"""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import NonNegativeInt64
from dockyard.schemas import events as schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config, Limit
from dockyard.server.models import events
from dockyard.server.notify import Notifier

router = APIRouter(tags=["events"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED)

Cursor = Annotated[NonNegativeInt64 | None, Query(strict=False)]
Prefix = Annotated[
    str | None, Query(max_length=256, description="Only events whose name starts with this.")
]
ResourceId = Annotated[
    str | None, Query(max_length=512, description="Only events about this resource.")
]
Wait = Annotated[
    float, Query(ge=0, le=3600, description="Seconds to wait for an event after `after`.")
]


@router.post("/events", status_code=201)
async def emit_event(body: schemas.EventCreate, db: DB) -> schemas.Event:
    """Emit an event. Its name must not start with ``dockyard.`` (the server's own); its
    resource needs ``dockyard.resource.id``. An ``id`` already stored answers that event."""

    async def work(session: AsyncSession) -> schemas.Event:
        return events.event_schema(await events.emit(session, body))

    return await db.write_retrying(work)


@router.get("/events")
async def read_events(
    db: DB,
    settings: Config,
    request: Request,
    after: Cursor = None,
    before: Cursor = None,
    event: Prefix = None,
    resource_id: ResourceId = None,
    wait: Wait = 0.0,
    limit: Limit = 100,
) -> schemas.EventPage:
    """Past events newest first, or (``after``) the next events oldest first, waiting up to
    ``wait`` seconds (at most the server's long-poll time) for one."""
    if after is None:
        async with db.read() as session:
            top = await events.last_position(session)
            rows = await events.list_events(
                session, before=before, upto=top, prefix=event, resource_id=resource_id, limit=limit
            )
        return schemas.EventPage(events=[events.event_schema(r) for r in rows], cursor=top)
    bell = events.bells_for(db.write_engine.sync_engine).positioned
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, settings.long_poll_seconds)
    while True:
        rung = bell.rung
        async with db.read() as session:
            # the top first: an event positioned between the two reads is left for the next
            top = await events.last_position(session)
            rows = await events.list_events(
                session, after=after, upto=top, prefix=event, resource_id=resource_id, limit=limit
            )
        if rows:
            cursor = rows[-1].position if len(rows) == limit else top
            return schemas.EventPage(events=[events.event_schema(r) for r in rows], cursor=cursor)
        remaining = deadline - loop.time()
        if remaining <= 0 or db.notifier.closed or await request.is_disconnected():
            return schemas.EventPage(events=[], cursor=max(top, after))
        if bell.rung == rung:
            await _either(bell, db.notifier, remaining)


async def _either(first: Notifier, second: Notifier, timeout: float) -> None:
    """Wait for either notifier (the server's wakes every long-poll when it stops)."""
    waits = [asyncio.create_task(n.wait(timeout)) for n in (first, second)]
    _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
