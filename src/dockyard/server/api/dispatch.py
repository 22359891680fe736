"""Workers' side of dispatch: heartbeats, long-poll claims, and the engine's lease renewal."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import APIRouter, Request

from dockyard import schemas
from dockyard.server import dispatch
from dockyard.server.api.deps import DB, Config
from dockyard.server.models import runs
from dockyard.server.tables import utcnow

router = APIRouter(tags=["dispatch"])


@router.post("/workers/heartbeat")
async def heartbeat(
    body: schemas.WorkerHeartbeat, db: DB, settings: Config
) -> schemas.HeartbeatAnswer:
    async with db.write() as session:
        return await dispatch.heartbeat(session, body, lease_seconds=settings.lease_seconds)


@router.post("/workers/claim")
async def claim(
    body: schemas.ClaimRequest, db: DB, settings: Config, request: Request
) -> list[schemas.ClaimedRun]:
    """Answer at once with due runs, otherwise wait (up to ``wait`` seconds) for some."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(body.wait, settings.long_poll_seconds)
    while True:
        if await request.is_disconnected():
            # the worker stopped or died while waiting: runs claimed now would reach no one
            return []
        async with db.write() as session:
            claimed = await dispatch.claim(session, body, lease_seconds=settings.lease_seconds)
            due = None if claimed else await dispatch.next_due(session, body)
        remaining = deadline - loop.time()
        if claimed or remaining <= 0 or db.notifier.closed:
            return claimed
        if due is not None:
            remaining = min(remaining, max(0.0, (due - utcnow()).total_seconds()) + 0.005)
        await db.notifier.wait(remaining)


@router.post("/flow-runs/{run_id}/lease")
async def renew_lease(
    run_id: uuid.UUID, body: schemas.LeaseRenewal, db: DB, settings: Config
) -> schemas.FlowRun:
    """The engine keeps its run's lease alive; 409 when the run is no longer its own.

    The answer is the run, so the engine also learns when it was asked to cancel.
    """
    async with db.write() as session:
        run = await runs.read_run(session, run_id, lock=True)
        await dispatch.renew_lease(
            session, run, body.lease_token, lease_seconds=settings.lease_seconds
        )
        await session.flush()
        return await runs.run_schema(session, run_id)
