"""``Task.submit`` and ``Task.map``: task runs handed to the flow run's task runner.

Inside a flow run, the runner is a copy of the flow's ``task_runner`` (a
:class:`~dockyard.sdk.runtime.task_runners.ThreadPoolTaskRunner` by default), started at the first
submit and waited for when the run ends. Outside any flow, tasks go to a thread pool of the
process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from dockyard.sdk.runtime.context import FLOW_RUN
from dockyard.sdk.runtime.task_runners import TaskRunner, ThreadPoolTaskRunner

if TYPE_CHECKING:
    from dockyard.sdk.runtime.futures import FutureList, TaskFuture
    from dockyard.sdk.tasks import Task

__all__ = ["map_task", "submit_task"]

# the runner of tasks submitted outside any flow run (never shut down)
_fallback: TaskRunner | None = None
_fallback_lock = threading.Lock()


def _runner() -> TaskRunner:
    global _fallback
    flow_run = FLOW_RUN.get()
    if flow_run is not None:
        return flow_run.task_runner(ThreadPoolTaskRunner)
    with _fallback_lock:
        if _fallback is None:
            _fallback = ThreadPoolTaskRunner().__enter__()
        return _fallback


def submit_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> TaskFuture[Any]:
    """Hand one run of ``task`` to the task runner; return its future."""
    return _runner().submit(task, args, kwargs, wait_for=wait_for)


def map_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> FutureList[Any]:
    """Hand one run of ``task`` per element of its iterable arguments to the task runner."""
    return _runner().map(task, args, kwargs, wait_for=wait_for)
