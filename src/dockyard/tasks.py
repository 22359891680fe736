"""Tasks: ``from dockyard.tasks import task, exponential_backoff, task_input_hash``.

See :mod:`dockyard.sdk.tasks`. Importing this module is as light as ``import dockyard``:
``task_input_hash`` is loaded at first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.sdk.options import exponential_backoff
from dockyard.sdk.tasks import Task, task

if TYPE_CHECKING:
    from dockyard.sdk.runtime.cache import task_input_hash

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]


def __getattr__(name: str) -> Any:
    if name != "task_input_hash":
        raise AttributeError(f"module 'dockyard.tasks' has no attribute {name!r}")
    from dockyard.sdk.runtime.cache import task_input_hash

    globals()[name] = task_input_hash
    return task_input_hash


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
