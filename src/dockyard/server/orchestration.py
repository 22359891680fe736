"""The state rules of flow runs: which transitions are allowed, leases and fencing.

Every change of a run's state goes through :func:`transition`, which stores it in the run's
history with its time. The table below is the whole rule book (see docs/states.md):

- a claim moves SCHEDULED → PENDING and hands out a lease token;
- the engine moves PENDING → RUNNING → COMPLETED / FAILED (or AWAITING_RETRY → RUNNING),
  presenting the lease token it was given; a stale token is refused (fencing);
- CRASHED comes from an expired lease or infrastructure that died, and is followed at once by
  a new SCHEDULED attempt while the deployment's ``crash_retries`` last;
- cancelling: SCHEDULED → CANCELLED at once, live runs → CANCELLING → CANCELLED.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import StateTransition
from dockyard.schemas import StateType as S
from dockyard.server.errors import Conflict
from dockyard.server.tables import DeploymentRow, FlowRunRow, FlowRunStateRow, utcnow

ALLOWED: dict[S, frozenset[S]] = {
    S.SCHEDULED: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.RUNNING, S.SCHEDULED, S.CRASHED, S.CANCELLING}),
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.AWAITING_RETRY, S.CRASHED, S.CANCELLING}),
    S.AWAITING_RETRY: frozenset({S.RUNNING, S.CRASHED, S.CANCELLING}),
    S.CANCELLING: frozenset({S.CANCELLED, S.CRASHED}),
    S.CRASHED: frozenset({S.SCHEDULED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
# States whose process is alive: they hold a lease and count against concurrency limits.
ACTIVE = frozenset({S.PENDING, S.RUNNING, S.CANCELLING, S.AWAITING_RETRY})
FINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.CRASHED})
# Transitions that need the caller to hold the run's current lease.
FENCED_FROM = frozenset({S.PENDING, S.RUNNING, S.AWAITING_RETRY})
FENCED_TO = frozenset({S.RUNNING, S.COMPLETED, S.FAILED, S.AWAITING_RETRY, S.SCHEDULED})


def refuse(run: FlowRunRow, detail: str) -> Conflict:
    return Conflict(detail, current_state=run.state, field="state")


def record(
    session: AsyncSession,
    run: FlowRunRow,
    state: S,
    message: str | None = None,
    idempotency_key: str | None = None,
) -> None:
    """Set the run's state and store the transition in its history."""
    now = utcnow()
    session.info["wake"] = True  # a run may have become due, or freed a slot
    run.state = state
    run.state_message = message
    if state == S.RUNNING and run.start_time is None:
        run.start_time = now
    if state in FINAL:
        run.end_time = now
    if state not in ACTIVE:
        run.lease_token = None
        run.lease_expires = None
    session.add(
        FlowRunStateRow(
            flow_run_id=run.id,
            type=state,
            message=message,
            timestamp=now,
            idempotency_key=idempotency_key,
        )
    )


def grant_lease(run: FlowRunRow, lease_seconds: float) -> uuid.UUID:
    run.lease_token = uuid.uuid4()
    run.lease_expires = utcnow() + timedelta(seconds=lease_seconds)
    return run.lease_token


async def transition(
    session: AsyncSession,
    run: FlowRunRow,
    request: StateTransition,
    *,
    lease_seconds: float,
) -> uuid.UUID | None:
    """Apply a requested transition, or raise ``Conflict`` with the current state.

    Returns the lease token the caller now holds when the transition granted one.
    """
    current, target = S(run.state), request.state
    if target not in ALLOWED[current]:
        raise refuse(run, f"flow run {run.id} cannot go from {current} to {target}")
    if target == S.SCHEDULED and current == S.CRASHED:
        raise refuse(run, "only the server reschedules a crashed run (crash_retries)")
    fenced = current in FENCED_FROM and target in FENCED_TO and run.lease_token is not None
    if fenced and request.lease_token != run.lease_token:
        raise refuse(
            run,
            f"flow run {run.id} is leased to another process (stale or missing lease "
            "token); this process must stop reporting on it",
        )
    granted = None
    if target == S.PENDING:
        granted = grant_lease(run, lease_seconds)
    elif target in ACTIVE and run.lease_token is not None:
        run.lease_expires = utcnow() + timedelta(seconds=lease_seconds)
    if target == S.SCHEDULED:  # a worker handing back a run it never launched
        run.worker_id = None
    if target == S.COMPLETED:
        run.result = request.result
    record(session, run, target, request.message, request.idempotency_key)
    if target == S.CRASHED:
        await retry_crashed(session, run)
    return granted


async def retry_crashed(session: AsyncSession, run: FlowRunRow) -> bool:
    """Schedule a new attempt of a crashed run while its deployment's crash_retries last."""
    if run.deployment_id is None:
        return False
    deployment = await session.get(DeploymentRow, run.deployment_id)
    if deployment is None or run.attempt > deployment.crash_retries:
        return False
    run.attempt += 1
    run.worker_id = None
    run.infrastructure_id = None
    run.scheduled_start = utcnow()
    run.end_time = None
    record(session, run, S.SCHEDULED, f"crash retry: attempt {run.attempt}")
    return True


def cancel(session: AsyncSession, run: FlowRunRow, message: str | None = None) -> None:
    """Cancel a run: at once if nothing runs it, else ask its process to stop."""
    current = S(run.state)
    if current == S.SCHEDULED:
        record(session, run, S.CANCELLED, message or "cancelled before it started")
    elif current in {S.PENDING, S.RUNNING, S.AWAITING_RETRY}:
        record(session, run, S.CANCELLING, message or "cancel requested")
    elif current == S.CANCELLING:
        return
    else:
        raise refuse(run, f"flow run {run.id} is already {current}; nothing to cancel")
