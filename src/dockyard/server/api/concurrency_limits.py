"""Global concurrency limits (``/api/concurrency-limits``): the limits, and the slots that
flows and tasks take of them (acquire, renew, release).

An acquire is a long-poll: it answers at once when the slots are free, else waits on the
server (up to its ``wait``, bounded by ``DOCKYARD_LONG_POLL_SECONDS``) and answers as soon
as they are: a release, a limit raised, enabled or deleted wakes it (through the same
notifier as the workers' claims, so across replicas on PostgreSQL too), and it wakes by
itself when a lease would expire or rate-limit slots decay.
"""

import asyncio
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import _names
from dockyard.schemas import concurrency as cs
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config, Limit, Offset
from dockyard.server.models import concurrency_limits as limits
from dockyard.server.openapi import answers
from dockyard.server.tables import utcnow

router = APIRouter(
    prefix="/concurrency-limits",
    tags=["concurrency limits"],
    dependencies=[PARAMETERS],
    responses=PARAMETERS_REFUSED,
)

LimitName = Annotated[str, Path(max_length=_names.MAX_NAME)]
# A wait that would end at a lease's expiry or a decay starts this much later, so that the
# look after it finds the slots free rather than a hair short of free.
AFTER_DUE = 0.005


@router.post("", status_code=201, responses=answers(409))
async def create_limit(body: cs.ConcurrencyLimitCreate, db: DB) -> cs.ConcurrencyLimit:
    """Create a limit; 409 when one has its name."""
    return await db.write_retrying(lambda session: limits.create_limit(session, body))


@router.get("")
async def list_limits(db: DB, limit: Limit = 200, offset: Offset = 0) -> list[cs.ConcurrencyLimit]:
    """Limits ordered by name, with the slots in use now."""
    async with db.read() as session:
        return await limits.list_limits(session, limit=limit, offset=offset)


@router.get("/name/{name}")
async def read_limit(name: LimitName, db: DB) -> cs.ConcurrencyLimitDetail:
    """A limit with its live leases (who holds how many slots, until when)."""
    async with db.read() as session:
        return await limits.read_detail(session, name)


@router.patch("/name/{name}")
async def update_limit(
    name: LimitName, body: cs.ConcurrencyLimitUpdate, db: DB
) -> cs.ConcurrencyLimit:
    """Change the limit, whether it is enforced, its slot decay, or reset its slots in use
    (``active_slots``): only the fields sent."""
    return await db.write_retrying(lambda session: limits.update_limit(session, name, body))


@router.delete("/name/{name}", status_code=204)
async def delete_limit(name: LimitName, db: DB) -> Response:
    await db.write_retrying(lambda session: limits.delete_limit(session, name))
    return Response(status_code=204)


@router.post("/acquire", responses=answers(404))
async def acquire(
    body: cs.ConcurrencyAcquire, db: DB, settings: Config, request: Request
) -> cs.ConcurrencyAcquired:
    """Take ``occupy`` slots of every named limit (all or none), waiting up to ``wait``
    seconds for them. ``acquired`` false: they were not free in time (``full`` names the
    limits without room); call again to wait longer.

    404 (with ``strict``) when a name has no limit; 422 when no wait could ever give the
    slots: more than a limit has, or a rate limit of a limit without slot decay.
    """

    async def work(session: AsyncSession) -> tuple[cs.ConcurrencyAcquired, datetime | None]:
        return await limits.acquire(session, body)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(body.wait, settings.long_poll_seconds)
    while True:
        if await request.is_disconnected():
            # the caller gave up or died: slots taken now would be held by no one
            return cs.ConcurrencyAcquired(acquired=False)
        armed = db.notifier.arm()
        answer, room_at = await db.write_retrying(work)
        remaining = deadline - loop.time()
        if answer.acquired or remaining <= 0 or db.notifier.closed:
            return answer
        if room_at is not None:
            remaining = min(remaining, (room_at - utcnow()).total_seconds() + AFTER_DUE)
        await db.notifier.wait(remaining, armed)


@router.post("/leases/{lease_id}/renew")
async def renew_lease(
    lease_id: uuid.UUID, body: cs.ConcurrencyLeaseRenewal, db: DB
) -> cs.ConcurrencyLeaseRenewed:
    """Keep a lease's slots for ``lease_seconds`` more; 404 when it has expired or was
    released: its slots are no longer held, and may be someone else's."""
    expires = await db.write_retrying(
        lambda session: limits.renew(session, lease_id, body.lease_seconds)
    )
    return cs.ConcurrencyLeaseRenewed(lease_id=lease_id, lease_expires=expires)


@router.post("/leases/{lease_id}/release", status_code=204)
async def release_lease(lease_id: uuid.UUID, db: DB) -> Response:
    """Give a lease's slots back. Releasing twice, or a lease that expired, does nothing."""
    await db.write_retrying(lambda session: limits.release(session, lease_id))
    return Response(status_code=204)
