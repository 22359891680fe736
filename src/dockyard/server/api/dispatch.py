"""Workers' side of dispatch: heartbeats, long-poll claims, and the engine's lease renewal."""

import asyncio
import uuid

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server import dispatch, metrics, orchestration
from dockyard.server.access import with_runner_keys
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config
from dockyard.server.errors import NotFound
from dockyard.server.models import flows, runs
from dockyard.server.openapi import answers
from dockyard.server.tables import utcnow

router = APIRouter(tags=["dispatch"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED)


# A run due now but not taken was locked by another transaction (a cancel, the reaper):
# look again shortly rather than at once.
LOCKED_RUN_DELAY = 0.05


@router.post("/workers/heartbeat", responses=answers(404, 409))
async def heartbeat(
    body: schemas.WorkerHeartbeat, db: DB, settings: Config
) -> schemas.HeartbeatAnswer:

    async def work(session: AsyncSession) -> schemas.HeartbeatAnswer:
        return await dispatch.heartbeat(session, body, lease_seconds=settings.lease_seconds)

    return await db.write_retrying(work)


@router.post("/workers/claim", responses=answers(404, 409))
async def claim(
    body: schemas.ClaimRequest, db: DB, settings: Config, request: Request
) -> list[schemas.ClaimedRun]:
    """Answer at once with due runs, otherwise wait (up to ``wait`` seconds) for some.

    While it waits, a claim costs nothing: it looks again only when woken (a run created or
    rescheduled, a slot freed, a pool, queue or deployment resumed or its limit raised) or
    when the earliest run it could take becomes due.
    """

    async def work(session: AsyncSession) -> dispatch.Claim:
        return await dispatch.claim(session, body, lease_seconds=settings.lease_seconds)

    figures = metrics.of(db)
    figures.claim_calls.inc()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(body.wait, settings.long_poll_seconds)
    pool_id: uuid.UUID | None = None
    while True:
        if await request.is_disconnected():
            # the worker stopped or died while waiting: runs claimed now would reach no one
            return []
        armed = db.notifier.arm(pool_id)  # the first look: any change (its pool is unknown)
        began = loop.time()
        claimed, due, pool_id = await db.write_retrying(work)
        figures.claimed(loop.time() - began, len(claimed))
        remaining = deadline - loop.time()
        if claimed or remaining <= 0 or db.notifier.closed:
            return await with_runner_keys(request.app.state, claimed)
        if due is not None:
            until_due = (due - utcnow()).total_seconds()
            remaining = min(remaining, until_due + 0.005 if until_due > 0 else LOCKED_RUN_DELAY)
        with figures.long_polls.track_inprogress():
            await db.notifier.wait(remaining, armed)


@router.post("/flow-runs/{run_id}/lease", responses=answers(409))
async def renew_lease(
    run_id: uuid.UUID, body: schemas.LeaseRenewal, db: DB, settings: Config
) -> schemas.FlowRun:
    """The engine keeps its run's lease alive; 409 when the run is no longer its own.

    The answer is the run, so the engine also learns when it was asked to cancel.
    """

    async def work(session: AsyncSession) -> schemas.FlowRun:
        run = await runs.read_run(session, run_id, lock=True)
        await dispatch.renew_lease(
            session, run, body.lease_token, lease_seconds=settings.lease_seconds
        )
        await session.flush()
        return await runs.run_schema(session, run_id)

    return await db.write_retrying(work)


@router.post("/flow-runs/{run_id}/deployment", responses=answers(409))
async def read_run_deployment(
    run_id: uuid.UUID, body: schemas.LeaseRenewal, db: DB, settings: Config
) -> schemas.Deployment:
    """The run's deployment in clear (pull steps' credentials, secret job variables), for
    the engine holding the run's lease only; everyone else reads it masked."""
    async with db.read() as session:
        run = await runs.read_run(session, run_id)
        if run.lease_token is None or run.lease_token != body.lease_token:
            raise orchestration.refuse(
                run,
                f"flow run {run_id} is not leased to this process; read the deployment"
                " masked through GET /api/deployments/{id}",
            )
        if run.deployment_id is None:
            raise NotFound(f"flow run {run_id} has no deployment")
        deployment = await flows.read_deployment(session, run.deployment_id)
        return await flows.deployment_schema(
            session, deployment, settings.worker_offline_seconds, reveal=True
        )
