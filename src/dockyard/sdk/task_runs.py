"""Running a task: one call is one task run, recorded once, when it is final.

The path of a plain task call is kept short on purpose (it is paid by every task): an id, two
clock readings, a context variable, and a tuple appended to the tracker's queue. Caching,
retries, timeouts and failures take the slower paths.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import FlowRunAborted
from dockyard.sdk import logs
from dockyard.sdk.cache import MISS, ResultCache
from dockyard.sdk.context import FLOW_RUN, TASK_RUN, FlowRunContext, TaskRunContext, new_id
from dockyard.sdk.futures import has_futures, resolve_futures
from dockyard.sdk.options import retry_delay
from dockyard.sdk.results import describe_failure
from dockyard.sdk.timeouts import await_with_timeout, call_with_timeout

if TYPE_CHECKING:
    from dockyard.sdk.tasks import Task

__all__ = ["call_task", "run_task_async", "run_task_sync"]

_now = time.time


def call_task(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``task`` for one call (what ``Task.__call__`` does); a coroutine if it is async."""
    flow_run = FLOW_RUN.get()
    if task.isasync:
        return run_task_async(task, flow_run, args, kwargs)
    return run_task_sync(task, flow_run, args, kwargs)


def run_task_sync(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int | None = None,
) -> Any:
    """Run a plain-function task to its end and record it; return its value or raise."""
    context, args, kwargs = _begin(task, flow_run, args, kwargs, run_id)
    start = _now()
    cache_key = None
    if task.cache_key_fn is not None:
        cache_key, value = _cached(context, start, args, kwargs)
        if value is not MISS:
            return value
    token = TASK_RUN.set(context)
    attempt = 1
    try:
        while True:
            try:
                if task.timeout_seconds is None:
                    value = task.fn(*args, **kwargs)
                else:
                    value = call_with_timeout(
                        task.fn, args, kwargs, seconds=task.timeout_seconds, label=_label(context)
                    )
                break
            except Exception as exc:
                delay = _retry(context, attempt, exc)
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1
        if cache_key is not None:
            _store(context, cache_key, value)
    except BaseException as exc:
        _failed(context, start, attempt, exc, cache_key)
        raise
    finally:
        TASK_RUN.reset(token)
    _record(context, start, "COMPLETED", attempt, cache_key=cache_key)
    return value


async def run_task_async(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int | None = None,
) -> Any:
    """Run an ``async def`` task to its end and record it; return its value or raise."""
    import asyncio

    context, args, kwargs = _begin(task, flow_run, args, kwargs, run_id)
    start = _now()
    cache_key = None
    if task.cache_key_fn is not None:
        cache_key, value = _cached(context, start, args, kwargs)
        if value is not MISS:
            return value
    token = TASK_RUN.set(context)
    attempt = 1
    try:
        while True:
            try:
                if task.timeout_seconds is None:
                    value = await task.fn(*args, **kwargs)
                else:
                    value = await await_with_timeout(
                        task.fn(*args, **kwargs),
                        seconds=task.timeout_seconds,
                        label=_label(context),
                    )
                break
            except Exception as exc:
                delay = _retry(context, attempt, exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1
        if cache_key is not None:
            _store(context, cache_key, value)
    except BaseException as exc:
        _failed(context, start, attempt, exc, cache_key)
        raise
    finally:
        TASK_RUN.reset(token)
    _record(context, start, "COMPLETED", attempt, cache_key=cache_key)
    return value


def _begin(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int | None,
) -> tuple[TaskRunContext, tuple[Any, ...], dict[str, Any]]:
    """What every task run does first: stop if its flow run was aborted, wait for the
    futures among its arguments, and make its context."""
    if flow_run is not None and flow_run.handle.aborted is not None:
        flow_run.handle.check()
    if has_futures(args, kwargs):
        args, kwargs = resolve_futures(args, kwargs)
    return _context(task, flow_run, run_id), args, kwargs


def _context(
    task: Task[..., Any], flow_run: FlowRunContext | None, run_id: int | None
) -> TaskRunContext:
    log_prints = task.log_prints
    if log_prints is None:
        current = TASK_RUN.get() or flow_run
        log_prints = current.log_prints if current is not None else False
    elif log_prints:
        logs.capture_prints()
    name = flow_run.next_task_run_name(task) if flow_run is not None else task.name
    return TaskRunContext(task, run_id or new_id(), name, flow_run, log_prints)


def _label(context: TaskRunContext) -> str:
    return f"task run {context.task_run_name!r}"


def _record(
    context: TaskRunContext,
    start: float,
    state: str,
    attempts: int,
    *,
    cache_key: str | None = None,
    cached: bool = False,
    error: str | None = None,
) -> None:
    flow_run = context.flow_run
    if flow_run is None:
        return
    task = context.task
    flow_run.tracker.add_task_run(
        (
            context.id,
            flow_run.handle.id_text,
            context.task_run_name,
            task.task_key,
            state,
            start,
            _now(),
            cache_key,
            cached,
            attempts,
            error,
            task.tags,
        )
    )


def _retry(context: TaskRunContext, attempt: int, exc: Exception) -> float | None:
    """Return the delay before the next attempt, or None when the run has failed for good."""
    task = context.task
    if attempt > task.retries or isinstance(exc, FlowRunAborted):
        return None
    delay = retry_delay(task.retry_delay_seconds, attempt)
    logs.get_logger().warning(
        "attempt %d of %d failed with %s: %s; retrying in %g s",
        attempt,
        task.retries + 1,
        type(exc).__name__,
        exc,
        delay,
    )
    return delay


def _failed(
    context: TaskRunContext,
    start: float,
    attempts: int,
    exc: BaseException,
    cache_key: str | None,
) -> None:
    error = describe_failure(exc)
    state = "FAILED" if isinstance(exc, Exception) else "CRASHED"
    if not isinstance(exc, FlowRunAborted):
        logs.get_logger().error("finished in state %s: %s", state, error)
    _record(context, start, state, attempts, cache_key=cache_key, error=error)


# ---------------------------------------------------------------- caching


def _cache(context: TaskRunContext) -> ResultCache:
    flow_run = context.flow_run
    if flow_run is not None:
        return ResultCache(flow_run.settings.home)
    from dockyard import settings

    return ResultCache(settings.load().home)


def _cached(
    context: TaskRunContext, start: float, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str | None, Any]:
    """Return the run's cache key and its cached value (or MISS); a hit is recorded as the
    run, COMPLETED from the cache."""
    task = context.task
    assert task.cache_key_fn is not None
    parameters = task.signature.with_defaults(task.signature.bind(args, kwargs))
    key = task.cache_key_fn(context, parameters)
    if key is None:
        return None, MISS
    value = _cache(context).read(key)
    if value is not MISS:
        _record(context, start, "COMPLETED", 1, cache_key=key, cached=True)
    return key, value


def _store(context: TaskRunContext, key: str, value: Any) -> None:
    task = context.task
    try:
        _cache(context).write(key, task.task_key, value, task.cache_expiration)
    except Exception as exc:
        logs.get_logger().warning(
            "the result of %s was not cached: %s: %s", _label(context), type(exc).__name__, exc
        )
