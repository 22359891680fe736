"""Waiting for a flow run to be final, for ``run_deployment`` and ``deployment run --watch``.

A run is final when it is COMPLETED, FAILED, CANCELLED, or CRASHED with no crash retry
left. The server schedules a crash retry in the same transaction that records the crash,
so a run read as CRASHED has none left; a retried run is read SCHEDULED again (with its
``attempt`` one higher), and waiting goes on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from dockyard._states import FINAL_STATES

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import FlowRun, Log, State

__all__ = ["FINAL_STATES", "is_final", "wait_for_run"]

POLL_SECONDS = 0.25
LOG_PAGE = 1000


def is_final(run: FlowRun) -> bool:
    """Whether ``run`` has ended for good (see the module's docstring)."""
    return str(run.state) in FINAL_STATES


def wait_for_run(
    client: Client,
    run_id: uuid.UUID,
    *,
    timeout: float | None = None,
    follow: Callable[[list[State | Log]], None] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> FlowRun:
    """Return the run once it is final, or as it is when ``timeout`` seconds have passed.

    Args:
        timeout: seconds to wait at most; None waits until the run is final.
        follow: called at each look at the run with the states it went through and the
            log lines it wrote since the last look, in time order (the first call has all
            of them so far).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    states_seen = 0
    last_log: int | None = None
    while True:
        # Read the run before its states and logs: what it wrote before it became final is
        # passed on before returning.
        run = client.read_flow_run(run_id)
        if follow is not None:
            states = client.read_flow_run_states(run_id)
            new_logs, last_log = _new_logs(client, run_id, last_log)
            events: list[State | Log] = [*states[states_seen:], *new_logs]
            states_seen = max(states_seen, len(states))
            if events:
                follow(sorted(events, key=lambda event: event.timestamp))
        if is_final(run):
            return run
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return run
            time.sleep(min(poll_seconds, left))
        else:
            time.sleep(poll_seconds)


def _new_logs(client: Client, run_id: uuid.UUID, after: int | None) -> tuple[list[Log], int | None]:
    found: list[Log] = []
    while True:
        batch = client.read_logs(flow_run_id=run_id, after_id=after, limit=LOG_PAGE)
        found += batch
        if batch:
            after = batch[-1].id
        if len(batch) < LOG_PAGE:
            return found, after
