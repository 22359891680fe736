"""Reporting how a run ended once its infrastructure exited (or never started).

The engine reports a run's final state itself. When the infrastructure exits and the run has
none, the worker gives it one at once: CANCELLED if it was being cancelled, otherwise CRASHED
with the exit code, after adding the last lines of the run's output to its logs (where a
crash trace shows). Every function answers the line the worker prints about the run.
"""

from __future__ import annotations

import uuid
from typing import Any

from dockyard.client import AsyncClient
from dockyard.exceptions import Conflict
from dockyard.schemas import FlowRun, LogCreate, StateTransition
from dockyard.schemas import StateType as S
from dockyard.workers._output import OutputFile
from dockyard.workers._runs import Launched, how_it_exited, label

TAIL_LINES = 100
LOGGER_NAME = "dockyard.worker"
ERROR = 40
FINAL = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED, S.CRASHED})


async def set_state(
    client: AsyncClient,
    run: FlowRun,
    token: uuid.UUID | None,
    state: S,
    message: str,
    *,
    crash_retry: bool = True,
) -> FlowRun:
    """Move ``run`` to ``state`` and return it; a refused move returns it as it is now.

    Raises:
        ServerUnreachable, ApiError: the server could not be asked (try again later).
    """
    # A retry of this very transition is answered, not refused; the lease token (new with
    # each claim) keeps a later claim's hand-back from passing for a retry of this one.
    claim = token or f"attempt-{run.attempt}"
    transition = StateTransition(
        state=state,
        message=message,
        lease_token=token,
        idempotency_key=f"worker:{run.id}:{claim}:{state}",
        crash_retry=crash_retry,
    )
    try:
        return await client.set_flow_run_state(run.id, transition)
    except Conflict:
        return await client.read_flow_run(run.id)


async def finish(client: AsyncClient, entry: Launched[Any], infrastructure: str) -> str:
    """Give ``entry``'s run a final state if its exited infrastructure left it without one.

    ``infrastructure`` names it in messages: ``its process (pid 42)``.
    """
    code = entry.exit_code
    assert code is not None, "finish() is for infrastructure that exited"
    run = await client.read_flow_run(entry.run.id)
    if run.attempt != entry.run.attempt or run.state == S.SCHEDULED:
        return f"{entry.label} moved on to attempt {run.attempt} ({run.state})"
    if run.state == S.CANCELLING:
        message = f"cancelled: {infrastructure} {how_it_exited(code)}"
        run = await set_state(client, run, entry.lease_token, S.CANCELLED, message)
    elif run.state not in FINAL:
        await ship_tail(client, run, entry.output)
        message = f"{infrastructure} {how_it_exited(code)} without reporting a final state"
        run = await set_state(client, run, entry.lease_token, S.CRASHED, message)
    return outcome(entry.run, run, code)


async def crash_unlaunched(
    client: AsyncClient,
    run: FlowRun,
    token: uuid.UUID,
    message: str,
    output: OutputFile,
    *,
    crash_retry: bool = True,
) -> str:
    """Make CRASHED a run whose infrastructure could not start; ``message`` says why.

    ``crash_retry=False``: starting it again would fail the same way; no retry is spent.
    """
    await ship_tail(client, run, output)
    now = await set_state(client, run, token, S.CRASHED, message, crash_retry=crash_retry)
    return outcome(run, now, None)


async def ship_tail(client: AsyncClient, run: FlowRun, output: OutputFile) -> None:
    """Add the last lines of the run's output to its logs, as one ERROR record."""
    lines = output.tail(TAIL_LINES)
    if not lines:
        return
    header = f"the last {len(lines)} lines its infrastructure wrote:"
    log = LogCreate(
        flow_run_id=run.id, level=ERROR, name=LOGGER_NAME, message="\n".join([header, *lines])
    )
    await client.create_logs([log])


def outcome(before: FlowRun, now: FlowRun, code: int | None) -> str:
    """``flow run 'x' (id) completed``, ``... crashed (code 3): why``, and so on."""
    exit_code = f" (code {code})" if code is not None else ""
    if now.attempt != before.attempt:
        what = f"crashed{exit_code}; scheduled again as attempt {now.attempt} (crash retries)"
    elif now.state == S.COMPLETED:
        what = "completed"
    elif now.state == S.FAILED:
        what = f"failed{exit_code}"
    elif now.state == S.CANCELLED:
        what = "cancelled"
    elif now.state == S.CRASHED:
        what = f"crashed{exit_code}: {now.state_message}"
    else:
        what = f"ended{exit_code} while {now.state}"
    return f"{label(before)} {what}"
