"""The names of flow-run states and their two sets, defined once for the whole package.

Plain strings, with no imports: the CLI and the SDK check states before they import
pydantic. ``dockyard.schemas.StateType`` names the same states (a test keeps them in step);
its members are ``str`` and compare equal to these names.
"""

from __future__ import annotations

__all__ = ["ACTIVE_STATES", "FINAL_STATES", "STATE_NAMES"]

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
)
# The states a run ends in. A CRASHED run with a crash retry left is SCHEDULED again in the
# same transaction, so a run seen CRASHED is final too.
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
# The states of a run whose process is alive: it holds a lease and a concurrency slot.
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "CANCELLING", "AWAITING_RETRY"})
