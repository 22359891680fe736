"""The names of flow-run states and their two sets, defined once for the whole package.

Plain strings, with no imports: the CLI and the SDK check states before they import
pydantic. ``dockyard.schemas.StateType`` names the same states (a test keeps them in step);
its members are ``str`` and compare equal to these names.
"""

from __future__ import annotations

__all__ = ["ACTIVE_STATES", "FINAL_STATES", "STATE_NAMES", "pause_timed_out"]

STATE_NAMES = (
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLING",
    "CANCELLED",
    "CRASHED",
    "AWAITING_RETRY",
    "PAUSED",
)
# The states a run ends in. A CRASHED run with a crash retry left is SCHEDULED again in the
# same transaction, so a run seen CRASHED is final too.
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
# The states of a run whose process is alive: it holds a lease and a concurrency slot. One
# exception: a PAUSED run that was *suspended* gave back its lease and its slots, and its
# process exited (the server keeps a ``suspended`` flag; ``orchestration.live`` selects
# the runs that really hold a slot).
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "CANCELLING", "AWAITING_RETRY", "PAUSED"})


def pause_timed_out(run_id: object, seconds: float) -> str:
    """The message of a run that FAILED because nobody resumed its pause in time (said by
    the waiting engine, or by the server for a suspended run)."""
    return (
        f"paused for more than {seconds:g} s without being resumed; resume a paused run "
        f"within its timeout (`dockyard flow-run resume {run_id}`), or give pause_flow_run "
        "(or suspend_flow_run) a longer timeout"
    )
