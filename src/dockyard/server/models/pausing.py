"""Paused and suspended runs: the server's side of ``pause_flow_run``, ``suspend_flow_run``
and ``resume_flow_run``.

The rules:

- a pause has a **key**. A key that was resumed before (the run's ``run_inputs``) is
  answered at once, resumed, with the input it was given, and nothing changes: this is how
  a run started again from the top (after a suspend, or a crash retry) goes past the pauses
  it went through already;
- only a RUNNING run pauses. **Paused**, its engine waits, keeping its lease and its
  slots. **Suspended** (runs of a deployment only: something must start it again), it gives
  back its lease and its slots and its process exits. Its engine suspends it with its lease
  token; another process may suspend it without one, and the engine, fenced off at its next
  lease renewal, stops;
- **resume** is for a PAUSED run only (409 with its state otherwise). Its input is checked
  against the JSON schema the pause gave (422 naming the field; the run stays PAUSED). A
  paused run goes back to RUNNING, its lease still held by the process waiting on it; a
  suspended run goes to SCHEDULED, and a worker claims it and starts it again;
- **timeout**: the waiting engine fails a paused run past its timeout; the reaper fails a
  suspended run past it (:func:`fail_expired`), as nobody waits on it. A paused run whose
  process died is CRASHED when its lease expires, like any live run.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._states import pause_timed_out
from dockyard.schemas import StateType as S
from dockyard.server import orchestration
from dockyard.server.errors import Invalid
from dockyard.server.notify import wake
from dockyard.server.tables import FlowRunRow, FlowRunStateRow, utcnow

BATCH = 100


def view(run: FlowRunRow, key: str | None = None) -> schemas.FlowRunPause:
    """The run's pause, and whether the pause ``key`` (default: its own) was resumed."""
    asked = run.pause_key if key is None else key
    inputs = run.run_inputs or {}
    return schemas.FlowRunPause(
        flow_run_id=run.id,
        state=S(run.state),
        key=run.pause_key,
        suspended=bool(run.suspended),
        expires=run.pause_expires,
        input_schema=run.pause_input_schema,
        resumed=asked is not None and asked in inputs,
        run_input=inputs.get(asked) if asked is not None else None,
    )


def schema_problem(schema: dict[str, Any] | None) -> Invalid | None:
    """Why ``schema`` cannot check an input (a pause's ``input_schema``), or None.

    Costs in proportion to the schema: call it off the event loop.
    """
    if schema is None:
        return None
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return Invalid(f"not a valid JSON schema: {exc.message}", field="input_schema")
    return None


def input_problem(
    schema: dict[str, Any] | None, run_input: dict[str, Any] | None
) -> Invalid | None:
    """Why ``run_input`` does not fit the pause's ``schema`` (naming the field), or None.

    Costs in proportion to the schema and the input: call it off the event loop.
    """
    if schema is None:
        return None
    from jsonschema import Draft202012Validator

    value = run_input if run_input is not None else {}
    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    if error is None:
        return None
    path = [str(p) for p in error.absolute_path]
    if not path and error.validator == "required":
        missing = [k for k in error.validator_value if k not in value]
        path = missing[:1]
        message = "a value is required"
    else:
        message = error.message
    field = ".".join(["run_input", *path])
    return Invalid(
        f"{field}: {message}; the run stays PAUSED: resume it with input that fits its "
        "pause's input schema (shown by GET /api/flow-runs/<run id>/pause)",
        field=field,
    )


async def pause(
    session: AsyncSession, run: FlowRunRow, body: schemas.PauseRequest, *, lease_seconds: float
) -> schemas.FlowRunPause:
    """Pause (or suspend) a RUNNING run; a key resumed before changes nothing."""
    if body.key in (run.run_inputs or {}):
        return view(run, body.key)
    if run.state != S.RUNNING:
        raise orchestration.refuse(
            run, f"flow run {run.id} is {run.state}; only a RUNNING run can pause"
        )
    if body.lease_token is None and not body.suspend:
        raise orchestration.refuse(
            run,
            f"flow run {run.id} pauses from its own process only (pause_flow_run inside "
            "the flow, with its lease token); another process can suspend it instead",
        )
    if body.lease_token is not None and body.lease_token != run.lease_token:
        raise orchestration.refuse(
            run,
            f"flow run {run.id} is leased to another process (stale lease token); only the "
            "process holding its lease pauses it",
        )
    if body.suspend and run.deployment_id is None:
        raise orchestration.refuse(
            run,
            f"flow run {run.id} has no deployment, so nothing could start it again after a "
            "suspend; pause it instead (pause_flow_run keeps its process waiting)",
        )
    now = utcnow()
    run.pause_key = body.key
    run.pause_expires = now + timedelta(seconds=body.timeout)
    run.pause_input_schema = body.input_schema
    if body.suspend:
        run.suspended = True
        message = f"suspended: resume it within {body.timeout} s and it runs again from the top"
    else:
        run.lease_expires = now + timedelta(seconds=lease_seconds)
        message = f"paused: waiting up to {body.timeout} s to be resumed"
    orchestration.record(session, run, S.PAUSED, message)
    if body.suspend:  # its process exits: its lease and its slots are free
        run.lease_token = None
        run.lease_expires = None
        wake(session)
    return view(run, body.key)


def resume(
    session: AsyncSession, run: FlowRunRow, body: schemas.ResumeRequest, *, lease_seconds: float
) -> None:
    """Resume a PAUSED run whose input was checked (:func:`input_problem`)."""
    if run.state != S.PAUSED:
        raise orchestration.refuse(
            run, f"flow run {run.id} is {run.state}, not PAUSED; only a paused run resumes"
        )
    key = run.pause_key or ""
    run.run_inputs = {**(run.run_inputs or {}), key: body.run_input}
    run.pause_expires = None
    # the waiting engine (or the claim loop, for a suspended run) learns of it at once
    wake(session)
    if run.suspended:
        run.worker_id = None
        run.infrastructure_id = None
        run.scheduled_start = utcnow()
        run.end_time = None
        orchestration.record(session, run, S.SCHEDULED, "resumed: it runs again from the top")
    else:
        run.lease_expires = utcnow() + timedelta(seconds=lease_seconds)
        orchestration.record(session, run, S.RUNNING, "resumed")


async def fail_expired(session: AsyncSession) -> int:
    """Fail the suspended runs past their pause's timeout; return how many."""
    expired = list(
        await session.scalars(
            select(FlowRunRow)
            .where(
                FlowRunRow.state == S.PAUSED,
                FlowRunRow.suspended.is_(True),
                FlowRunRow.pause_expires < utcnow(),
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
    )
    for run in expired:
        paused_at = await session.scalar(
            select(func.max(FlowRunStateRow.timestamp)).where(
                FlowRunStateRow.flow_run_id == run.id, FlowRunStateRow.type == S.PAUSED
            )
        )
        assert run.pause_expires is not None
        seconds = round((run.pause_expires - (paused_at or run.pause_expires)).total_seconds())
        orchestration.record(session, run, S.FAILED, pause_timed_out(run.id, seconds))
    return len(expired)


async def read_pause(
    session: AsyncSession, run_id: uuid.UUID, key: str | None
) -> schemas.FlowRunPause:
    """The run's pause (see :func:`view`)."""
    from dockyard.server.models.runs import read_run

    return view(await read_run(session, run_id), key)
