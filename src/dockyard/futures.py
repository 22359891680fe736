"""Futures of submitted task runs: ``from dockyard.futures import wait, as_completed``.

See :mod:`dockyard.sdk.runtime.futures`.
"""

from dockyard.sdk.runtime.futures import (
    DoneAndNotDoneFutures,
    FutureList,
    TaskFuture,
    as_completed,
    resolve_futures_to_states,
    wait,
)

__all__ = [
    "DoneAndNotDoneFutures",
    "FutureList",
    "TaskFuture",
    "as_completed",
    "resolve_futures_to_states",
    "wait",
]
