"""Flow runs and their states."""

import asyncio
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import dispatch, orchestration
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Config, Limit, Offset
from dockyard.server.models import flows, pausing, runs
from dockyard.server.openapi import answers

router = APIRouter(
    prefix="/flow-runs", tags=["flow runs"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)


@router.post("", status_code=201)
async def create_flow_run(
    body: schemas.FlowRunCreate, db: DB, settings: Config
) -> schemas.FlowRunStarted:

    async def work(session: AsyncSession) -> schemas.FlowRunStarted:
        flow = await flows.ensure_flow(session, body.flow_name)
        run, token = await runs.create_run(
            session, flow, body, lease_seconds=settings.lease_seconds
        )
        if token is None:  # maybe an existing run (same idempotency key): read it as it is
            base = await runs.run_schema(session, run.id)
        else:  # a run just made, of no deployment: its flow is all it joins
            base = runs.to_schema(run, flow_name=flow.name)
        return schemas.FlowRunStarted(**base.model_dump(), lease_token=token)

    return await db.write_retrying(work)


@router.get("")
async def list_flow_runs(
    db: DB,
    flow_name: str | None = None,
    deployment_name: str | None = None,
    deployment_id: uuid.UUID | None = None,
    work_pool_name: str | None = None,
    parent_flow_run_id: uuid.UUID | None = None,
    state: Annotated[list[schemas.StateType] | None, Query()] = None,
    late: bool | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[schemas.FlowRun]:
    async with db.read() as session:
        return await runs.list_runs(
            session,
            flow_name=flow_name,
            deployment_name=deployment_name,
            deployment_id=deployment_id,
            work_pool_name=work_pool_name,
            parent_flow_run_id=parent_flow_run_id,
            states=state or (),
            late=late,
            limit=limit,
            offset=offset,
        )


@router.get("/{run_id}")
async def read_flow_run(run_id: uuid.UUID, db: DB) -> schemas.FlowRun:
    async with db.read() as session:
        return await runs.run_schema(session, run_id)


@router.patch("/{run_id}", responses=answers(409))
async def update_flow_run(
    run_id: uuid.UUID, body: schemas.FlowRunUpdate, db: DB
) -> schemas.FlowRun:
    """Record what the process holding the run's lease knows: its infrastructure id, the
    name its flow gives it."""

    async def work(session: AsyncSession) -> schemas.FlowRun:
        run = await runs.read_run(session, run_id, lock=True)
        if run.lease_token is None or body.lease_token != run.lease_token:
            raise orchestration.refuse(
                run,
                f"flow run {run_id} is not leased to this process (stale or missing "
                "lease token); only the process holding its lease records on it",
            )
        if "infrastructure_id" in body.model_fields_set:
            run.infrastructure_id = body.infrastructure_id
        if body.name is not None:
            run.name = body.name
        await session.flush()
        return await runs.run_schema(session, run_id)

    return await db.write_retrying(work)


@router.delete("/{run_id}", status_code=204, responses=answers(409))
async def delete_flow_run(run_id: uuid.UUID, db: DB) -> Response:

    async def work(session: AsyncSession) -> None:
        await session.delete(await runs.read_run(session, run_id, lock=True))

    await db.write_retrying(work)
    return Response(status_code=204)


@router.post("/{run_id}/state", responses=answers(409))
async def set_flow_run_state(
    run_id: uuid.UUID, body: schemas.StateTransition, db: DB, settings: Config
) -> schemas.FlowRunStarted:
    """Move a run to a new state; 409 with ``current_state`` when the rules refuse it.

    SCHEDULED → PENDING is a claim of this one run (``dispatch.admit``): the answer carries
    the lease token. Every other transition follows ``orchestration``.
    """

    async def work(session: AsyncSession) -> schemas.FlowRunStarted:
        token = None
        run = await runs.read_run(session, run_id, lock=True)
        if await runs.already_applied(session, run_id, body.idempotency_key):
            pass  # a retry of a transition made: answer the run as it is now
        elif run.state == S.SCHEDULED and body.state == S.PENDING:
            orchestration.check(run, body)
            token = await dispatch.admit(session, run, lease_seconds=settings.lease_seconds)
        else:
            await orchestration.transition(session, run, body, lease_seconds=settings.lease_seconds)
        await session.flush()
        base = await runs.run_schema(session, run_id)
        return schemas.FlowRunStarted(**base.model_dump(), lease_token=token)

    return await db.write_retrying(work)


@router.get("/{run_id}/states")
async def read_flow_run_states(run_id: uuid.UUID, db: DB) -> list[schemas.State]:
    async with db.read() as session:
        return await runs.states_of(session, run_id)


@router.post("/{run_id}/cancel", responses=answers(409))
async def cancel_flow_run(run_id: uuid.UUID, db: DB) -> schemas.FlowRun:

    async def work(session: AsyncSession) -> schemas.FlowRun:
        run = await runs.read_run(session, run_id, lock=True)
        orchestration.cancel(session, run)
        await session.flush()
        return await runs.run_schema(session, run_id)

    return await db.write_retrying(work)


# ---------------------------------------------------------------- pause and resume


@router.post("/{run_id}/pause", responses=answers(409))
async def pause_flow_run(
    run_id: uuid.UUID, body: schemas.PauseRequest, db: DB, settings: Config
) -> schemas.FlowRunPause:
    """Pause a RUNNING run (its engine, with its lease token), or suspend it.

    A key resumed before is answered at once, ``resumed``, with its input; 409 with
    ``current_state`` when the run cannot pause (not RUNNING, another lease, or a suspend
    of a run with no deployment).
    """
    problem = await asyncio.to_thread(pausing.schema_problem, body.input_schema)
    if problem is not None:
        raise problem

    async def work(session: AsyncSession) -> schemas.FlowRunPause:
        run = await runs.read_run(session, run_id, lock=True)
        answer = await pausing.pause(session, run, body, lease_seconds=settings.lease_seconds)
        await session.flush()
        return answer

    return await db.write_retrying(work)


@router.get("/{run_id}/pause")
async def read_flow_run_pause(
    run_id: uuid.UUID,
    db: DB,
    settings: Config,
    request: Request,
    key: str | None = None,
    wait: Annotated[float, Query(ge=0, le=60)] = 0,
) -> schemas.FlowRunPause:
    """The run's pause (the one in progress, else the last) and its input schema;
    ``resumed`` and ``run_input`` tell about the pause ``key`` (default: the run's own).

    ``wait``: while the run is PAUSED under ``key``, wait up to that many seconds for it to
    change (resumed, cancelled, failed): the engine of a paused run waits this way.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, settings.long_poll_seconds)
    while True:
        armed = db.notifier.arm()
        async with db.read() as session:
            answer = await pausing.read_pause(session, run_id, key)
        remaining = deadline - loop.time()
        waiting_on = key is None or answer.key == key
        if answer.state != S.PAUSED or not waiting_on or remaining <= 0 or db.notifier.closed:
            return answer
        if await request.is_disconnected():
            return answer
        await db.notifier.wait(remaining, armed)


@router.post("/{run_id}/resume", responses=answers(409, 422))
async def resume_flow_run(
    run_id: uuid.UUID, body: schemas.ResumeRequest, db: DB, settings: Config
) -> schemas.FlowRun:
    """Resume a PAUSED run with ``run_input`` (checked against its pause's input schema:
    422 naming the field, the run stays PAUSED); 409 with ``current_state`` when the run is
    not PAUSED. A paused run goes back to RUNNING, a suspended one to SCHEDULED."""
    async with db.read() as session:
        seen = pausing.view(await runs.read_run(session, run_id))
    problem = await asyncio.to_thread(pausing.input_problem, seen.input_schema, body.run_input)

    async def work(session: AsyncSession) -> schemas.FlowRun:
        run = await runs.read_run(session, run_id, lock=True)
        if run.state == S.PAUSED and run.pause_key != seen.key:
            raise orchestration.refuse(
                run, f"flow run {run_id} paused again meanwhile; read its pause and resume it"
            )
        if problem is not None and run.state == S.PAUSED:
            raise problem
        pausing.resume(session, run, body, lease_seconds=settings.lease_seconds)
        await session.flush()
        return await runs.run_schema(session, run_id)

    return await db.write_retrying(work)
