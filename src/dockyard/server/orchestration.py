"""The state rules of flow runs: which transitions are allowed, leases and fencing.

Every change of a run's state goes through :func:`record`, which stores it in the run's
history with its time. The table below is the whole rule book (see docs/states.md):

- a claim moves SCHEDULED → PENDING and hands out a lease token (:mod:`.dispatch`);
- the engine moves PENDING → RUNNING → COMPLETED / FAILED (or AWAITING_RETRY → RUNNING);
- CRASHED comes from an expired lease or infrastructure that died, and is followed at once by
  a new SCHEDULED attempt while the deployment's ``crash_retries`` last;
- cancelling: SCHEDULED → CANCELLED at once, live runs → CANCELLING → CANCELLED. Nothing
  leaves CANCELLING but CANCELLED: a cancel always wins;
- pausing (:mod:`.models.pausing`): the engine moves RUNNING → PAUSED and waits, keeping
  its lease and its slots; a resume moves it back to RUNNING (the lease stays with the
  waiting process). A *suspended* run is PAUSED with no lease, no slot and no process: a
  resume moves it to SCHEDULED and a worker starts it again from the top. A pause past its
  timeout ends FAILED (the waiting engine says so; the reaper for a suspended run). A
  cancel wins here too: a paused run goes CANCELLING (its process stops), a suspended one
  CANCELLED at once; a paused run whose process died is CRASHED when its lease expires.

Three guards keep racing writers (a claim, a cancel, the reaper, an engine, a worker) from
overwriting each other:

- **compare-and-set**: every write of a run is ``UPDATE … WHERE id = :id AND version =
  :seen`` (the ``version`` column of ``FlowRunRow``); a write decided from a state that
  changed since matches nothing and raises ``StaleDataError``: the writer's transaction
  rolls back, and it reads again and decides again (``Database.write_retrying``). Writers
  that act on many runs lock them as they read them (PostgreSQL ``FOR UPDATE SKIP LOCKED``),
  so that they rarely collide at all;
- **fencing**: every transition of a leased run (PENDING, RUNNING, AWAITING_RETRY,
  CANCELLING, PAUSED) needs its current lease token, except a request to cancel. A process
  whose run moved on (declared CRASHED, retried elsewhere, suspended) is refused and stops;
- **expected state**: a client that decided from a state it read can send it as
  ``expected_state``; the transition is refused (409) if the run is in another one by now.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard.schemas import ACTIVE_STATES, FINAL_STATES, StateTransition
from dockyard.schemas import StateType as S
from dockyard.server.errors import Conflict
from dockyard.server.models.events import flow_run_event
from dockyard.server.notify import wake
from dockyard.server.tables import DeploymentRow, FlowRunRow, FlowRunStateRow, utcnow

ALLOWED: dict[S, frozenset[S]] = {
    S.SCHEDULED: frozenset({S.PENDING, S.CANCELLED}),
    S.PENDING: frozenset({S.RUNNING, S.SCHEDULED, S.CRASHED, S.CANCELLING}),
    S.RUNNING: frozenset(
        {S.COMPLETED, S.FAILED, S.AWAITING_RETRY, S.CRASHED, S.CANCELLING, S.PAUSED}
    ),
    S.AWAITING_RETRY: frozenset({S.RUNNING, S.CRASHED, S.CANCELLING}),
    S.CANCELLING: frozenset({S.CANCELLED}),
    S.CRASHED: frozenset({S.SCHEDULED}),
    # RUNNING and SCHEDULED: resumed (paused, suspended); FAILED: past its timeout
    S.PAUSED: frozenset({S.RUNNING, S.SCHEDULED, S.FAILED, S.CANCELLING, S.CANCELLED, S.CRASHED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}
# States whose process is alive: they hold a lease and count against concurrency limits
# (all but a suspended PAUSED run: see :func:`live`).
ACTIVE = ACTIVE_STATES
FINAL = FINAL_STATES


def live() -> ColumnElement[bool]:
    """Runs that hold a slot: in an ACTIVE state, and not suspended (a suspended run's
    process exited; it gave back its lease and slots)."""
    return and_(FlowRunRow.state.in_([str(s) for s in ACTIVE]), FlowRunRow.suspended.is_(False))


def refuse(run: FlowRunRow, detail: str) -> Conflict:
    return Conflict(detail, current_state=run.state, field="state")


def record(
    session: AsyncSession,
    run: FlowRunRow,
    state: S,
    message: str | None = None,
    idempotency_key: str | None = None,
) -> None:
    """Set the run's state and store the transition in its history.

    Long-polls are woken (once the transaction commits) only by a change that can make a
    run claimable: a run becoming SCHEDULED, or a run leaving a live state (a freed slot);
    of the claims, only those waiting on the run's pool.
    """
    now = utcnow()
    flow_run_event(session, run, state, message, now)  # before run.state changes
    if state == S.SCHEDULED or (run.state in ACTIVE and state not in ACTIVE):
        wake(session, run.work_pool_id)
    run.state = state
    run.state_message = message
    if state == S.RUNNING and run.start_time is None:
        run.start_time = now
    if state in FINAL:
        run.end_time = now
    if state not in ACTIVE:
        run.lease_token = None
        run.lease_expires = None
    if state != S.PAUSED:
        run.suspended = False
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


def check(run: FlowRunRow, request: StateTransition) -> None:
    """Refuse (``Conflict``) a transition the rules do not allow from the run's state."""
    current, target = S(run.state), request.state
    if request.expected_state is not None and request.expected_state != current:
        raise refuse(
            run,
            f"flow run {run.id} is {current}, not {request.expected_state} as expected; "
            "read it again and decide again",
        )
    if target not in ALLOWED[current]:
        raise refuse(run, f"flow run {run.id} cannot go from {current} to {target}")
    if target == S.SCHEDULED and current == S.CRASHED:
        raise refuse(run, "only the server reschedules a crashed run (crash_retries)")
    if target == S.PAUSED:
        raise refuse(run, f"flow run {run.id} pauses through POST /flow-runs/{run.id}/pause")
    if current == S.PAUSED and target in (S.RUNNING, S.SCHEDULED):
        raise refuse(
            run,
            f"flow run {run.id} is paused; resume it with `dockyard flow-run resume {run.id}`",
        )
    if run.suspended and target not in (S.CANCELLING, S.CANCELLED):
        raise refuse(
            run,
            f"flow run {run.id} is suspended: no process runs it; resume it or cancel it",
        )
    leased = current in ACTIVE and not run.suspended
    if leased and target != S.CANCELLING and request.lease_token != run.lease_token:
        raise refuse(
            run,
            f"flow run {run.id} is leased to another process (stale or missing lease "
            "token); only the process holding its lease reports on it",
        )


async def transition(
    session: AsyncSession, run: FlowRunRow, request: StateTransition, *, lease_seconds: float
) -> None:
    """Apply a requested transition of a run that is not SCHEDULED (see :func:`check`).

    A SCHEDULED run reaches PENDING only through a claim (``dispatch``), CANCELLED only
    through :func:`cancel`.
    """
    check(run, request)
    target = request.state
    nothing_runs_it = run.state == S.SCHEDULED or run.suspended
    if target == S.CANCELLING or (nothing_runs_it and target == S.CANCELLED):
        cancel(session, run, request.message)
        return
    if target == S.PENDING:
        raise refuse(run, f"flow run {run.id} reaches PENDING only through a claim")
    if target in ACTIVE:
        run.lease_expires = utcnow() + timedelta(seconds=lease_seconds)
    if target == S.SCHEDULED:  # a worker handing back a run it never launched
        run.worker_id = None
    if target == S.COMPLETED:
        run.result = request.result
    record(session, run, target, request.message, request.idempotency_key)
    if target == S.CRASHED and request.crash_retry:
        await retry_crashed(session, run)


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
    elif current == S.PAUSED and run.suspended:
        record(session, run, S.CANCELLED, message or "cancelled while suspended")
    elif current in {S.PENDING, S.RUNNING, S.AWAITING_RETRY, S.PAUSED}:
        if current == S.PAUSED:
            wake(session)  # its engine waits in a long-poll: tell it now
        record(session, run, S.CANCELLING, message or "cancel requested")
    elif current == S.CANCELLING:
        return
    else:
        raise refuse(run, f"flow run {run.id} is already {current}; nothing to cancel")
