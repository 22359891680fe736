"""``Task.submit`` and ``Task.map``: task runs in the flow run's thread pool."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from dockyard.sdk.context import FLOW_RUN, FlowRunContext, new_id
from dockyard.sdk.futures import FutureList, TaskFuture, unmapped
from dockyard.sdk.task_runs import run_task_async, run_task_sync

if TYPE_CHECKING:
    from dockyard.sdk.tasks import Task

__all__ = ["map_task", "submit_task"]

# the pool of tasks submitted outside any flow run
_fallback: ThreadPoolExecutor | None = None
_fallback_lock = threading.Lock()


def _executor(flow_run: FlowRunContext | None) -> ThreadPoolExecutor:
    global _fallback
    if flow_run is not None:
        return flow_run.executor()
    with _fallback_lock:
        if _fallback is None:
            _fallback = ThreadPoolExecutor(thread_name_prefix="dockyard-task")
        return _fallback


def _run_in_thread(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int,
) -> Any:
    if task.isasync:
        import asyncio

        return asyncio.run(run_task_async(task, flow_run, args, kwargs, run_id))
    return run_task_sync(task, flow_run, args, kwargs, run_id)


def submit_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> TaskFuture[Any]:
    """Run ``task`` in the flow's thread pool; return the future of its result."""
    flow_run = FLOW_RUN.get()
    run_id = new_id()
    context = contextvars.copy_context()
    future = _executor(flow_run).submit(
        context.run, _run_in_thread, task, flow_run, args, kwargs, run_id
    )
    return TaskFuture(future, run_id)


def _mapped(value: Any) -> bool:
    if isinstance(value, str | bytes | bytearray | Mapping | unmapped | TaskFuture):
        return False
    return hasattr(value, "__iter__")


def map_task(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> FutureList[Any]:
    """Submit one run of ``task`` per element of its iterable arguments."""
    lists: dict[int | str, list[Any]] = {}
    named: list[tuple[int | str, Any]] = [*enumerate(args), *kwargs.items()]
    for key, value in named:
        if _mapped(value):
            lists[key] = list(value)
    if not lists:
        raise ValueError(
            f"task {task.name!r}: map needs at least one iterable argument to map over"
        )
    lengths = {len(v) for v in lists.values()}
    if len(lengths) > 1:
        found = ", ".join(f"{k!r}: {len(v)}" for k, v in lists.items())
        raise ValueError(
            f"task {task.name!r}: map needs iterables of one length, got lengths {found}"
        )

    def pick(key: int | str, value: Any, index: int) -> Any:
        if key in lists:
            return lists[key][index]
        return value.value if isinstance(value, unmapped) else value

    futures: FutureList[Any] = FutureList()
    for index in range(lengths.pop()):
        call_args = tuple(pick(i, v, index) for i, v in enumerate(args))
        call_kwargs = {k: pick(k, v, index) for k, v in kwargs.items()}
        futures.append(submit_task(task, call_args, call_kwargs))
    return futures
