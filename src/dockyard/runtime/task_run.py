"""The task run in progress: ``dockyard.runtime.task_run.<attribute>``, read when asked.

Attributes (outside a task run: None, an empty dict or list, 0 for ``run_count``):

- ``id``: the task run's id, as text.
- ``name``: its name (``<task name>-<n>`` in a flow run).
- ``task_name``: the task's name.
- ``parameters``: the arguments of the call by parameter name, defaults included.
- ``tags``: the task's tags.
- ``run_count``: the attempt in progress, 1 on the first.
"""

from __future__ import annotations

from typing import Any

from dockyard.runtime._getters import attribute
from dockyard.sdk.runtime.context import TASK_RUN

__all__ = [
    "get_id",
    "get_name",
    "get_parameters",
    "get_run_count",
    "get_tags",
    "get_task_name",
]


def get_id() -> str | None:
    """The task run's id, as text."""
    run = TASK_RUN.get()
    return str(run.task_run_id) if run is not None else None


def get_name() -> str | None:
    """The task run's name."""
    run = TASK_RUN.get()
    return run.task_run_name if run is not None else None


def get_task_name() -> str | None:
    """The name of the task being run."""
    run = TASK_RUN.get()
    return run.task.name if run is not None else None


def get_parameters() -> dict[str, Any]:
    """The arguments of the call by parameter name, defaults included."""
    run = TASK_RUN.get()
    return run.parameters if run is not None else {}


def get_tags() -> list[str]:
    """The task's tags."""
    run = TASK_RUN.get()
    return run.task_run.tags if run is not None else []


def get_run_count() -> int:
    """The attempt in progress, 1 on the first; 0 outside a task run."""
    run = TASK_RUN.get()
    return run.run_count if run is not None else 0


_GETTERS = {
    "id": get_id,
    "name": get_name,
    "parameters": get_parameters,
    "run_count": get_run_count,
    "tags": get_tags,
    "task_name": get_task_name,
}


def __getattr__(name: str) -> Any:
    return attribute(__name__, _GETTERS, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_GETTERS))
