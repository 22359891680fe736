"""Running a task: one call is one task run, recorded once, when it is final.

The path of a plain task call is kept short on purpose (it is paid by every task): an id, two
clock readings, a context variable, and a tuple appended to the tracker's queue. Caching,
retries, timeouts and failures take the slower paths.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import FlowRunAborted, UnfinishedRun
from dockyard.sdk.options import jittered, render_run_name, retry_delay
from dockyard.sdk.runtime import cache, logs
from dockyard.sdk.runtime.cache import MISS, TaskPlan
from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN, FlowRunContext, TaskRunContext, new_id
from dockyard.sdk.runtime.futures import (
    NOT_READY,
    UpstreamNotReady,
    check_upstream,
    failed_state,
    has_futures,
    resolve_futures,
    result_of,
    returned_state,
)
from dockyard.sdk.runtime.results import describe_failure
from dockyard.sdk.runtime.states import State, StateType, to_server
from dockyard.sdk.runtime.tags import current_tags, merge_tags
from dockyard.sdk.runtime.timeouts import await_with_timeout, call_with_timeout

if TYPE_CHECKING:
    from dockyard.sdk.tasks import Task

__all__ = ["call_task", "call_task_with", "run_task_async", "run_task_sync"]

_now = time.time


def call_task(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run ``task`` for one call (what ``Task.__call__`` does); a coroutine if it is async."""
    flow_run = FLOW_RUN.get()
    if task.isasync:
        return run_task_async(task, flow_run, args, kwargs)
    return run_task_sync(task, flow_run, args, kwargs)


def call_task_with(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool,
    wait_for: Any,
) -> Any:
    """:func:`call_task` for a call given ``return_state=True`` or ``wait_for=[...]``."""
    flow_run = FLOW_RUN.get()
    if task.isasync:
        return run_task_async(
            task, flow_run, args, kwargs, wait_for=wait_for, return_state=return_state
        )
    return run_task_sync(task, flow_run, args, kwargs, wait_for=wait_for, return_state=return_state)


def run_task_sync(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int | None = None,
    wait_for: Any = None,
    return_state: bool = False,
) -> Any:
    """Run a plain-function task to its end and record it; return its value or raise.

    ``wait_for``: runs to wait for first. ``return_state``: return the run's final State
    instead (an interrupt, or an aborted flow run, is still raised).
    """
    try:
        context, args, kwargs = _begin(task, flow_run, args, kwargs, run_id, wait_for)
    except UpstreamNotReady as exc:
        return _not_ready(task, flow_run, run_id, args, kwargs, exc, return_state)
    start = _now()
    cache_key = plan = None
    if task._results is not None or (flow_run is not None and flow_run.results is not None):
        plan, cache_key, value = _cached(context, start)
        if value is not MISS:
            return _cached_state(value) if return_state else value
    token = TASK_RUN.set(context)
    attempt = 1
    try:
        while True:
            if task.on_running_hooks:
                _hooks("on_running", context)
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
        if plan is not None:
            _store(plan, value)
    except BaseException as exc:
        if plan is not None:
            plan.release()
        _failed(context, start, attempt, exc, cache_key)
        if task.on_failure_hooks and _hooked(exc):
            _hooks("on_failure", context, exc)
        if return_state and (failed := failed_state(exc)) is not None:
            return failed
        raise
    finally:
        TASK_RUN.reset(token)
    if value.__class__ is State:
        state, hook = _returned(context, start, attempt, value, cache_key)
        if hook is not None:
            _hooks(hook[0], context, hook[1])
        return state if return_state else result_of(state)
    _record(context, start, "COMPLETED", attempt, cache_key=cache_key)
    if task.on_completion_hooks:
        _hooks("on_completion", context, value)
    return State(StateType.COMPLETED, data=value) if return_state else value


async def run_task_async(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int | None = None,
    wait_for: Any = None,
    return_state: bool = False,
) -> Any:
    """Run an ``async def`` task to its end and record it; return its value or raise
    (``wait_for``, ``return_state``: as for :func:`run_task_sync`)."""
    import asyncio

    try:
        context, args, kwargs = _begin(task, flow_run, args, kwargs, run_id, wait_for)
    except UpstreamNotReady as exc:
        return _not_ready(task, flow_run, run_id, args, kwargs, exc, return_state)
    start = _now()
    cache_key = plan = None
    if task._results is not None or (flow_run is not None and flow_run.results is not None):
        plan, cache_key, value = _cached(context, start)
        if value is not MISS:
            return _cached_state(value) if return_state else value
    token = TASK_RUN.set(context)
    attempt = 1
    try:
        while True:
            if task.on_running_hooks:
                await _hooks_async("on_running", context)
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
        if plan is not None:
            _store(plan, value)
    except BaseException as exc:
        if plan is not None:
            plan.release()
        _failed(context, start, attempt, exc, cache_key)
        if task.on_failure_hooks and _hooked(exc):
            await _hooks_async("on_failure", context, exc)
        if return_state and (failed := failed_state(exc)) is not None:
            return failed
        raise
    finally:
        TASK_RUN.reset(token)
    if value.__class__ is State:
        state, hook = _returned(context, start, attempt, value, cache_key)
        if hook is not None:
            await _hooks_async(hook[0], context, hook[1])
        return state if return_state else result_of(state)
    _record(context, start, "COMPLETED", attempt, cache_key=cache_key)
    if task.on_completion_hooks:
        await _hooks_async("on_completion", context, value)
    return State(StateType.COMPLETED, data=value) if return_state else value


def _begin(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int | None,
    wait_for: Any = None,
) -> tuple[TaskRunContext, tuple[Any, ...], dict[str, Any]]:
    """What every task run does first: stop if its flow run was aborted, wait for the runs
    in ``wait_for`` and the futures among its arguments, and make its context.

    Raises:
        UpstreamNotReady: one of those runs did not complete: the task does not run.
    """
    if flow_run is not None and flow_run.handle.aborted is not None:
        flow_run.handle.check()
    if wait_for is not None:
        check_upstream(wait_for)
    if has_futures(args, kwargs):
        args, kwargs = resolve_futures(args, kwargs)
    return _context(task, flow_run, run_id, args, kwargs), args, kwargs


def _context(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    run_id: int | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> TaskRunContext:
    log_prints = task.log_prints
    if log_prints is None:
        current = TASK_RUN.get() or flow_run
        log_prints = current.log_prints if current is not None else False
    elif log_prints:
        logs.capture_prints()
    if task.task_run_name is not None:
        name = task.name  # until the task_run_name is rendered, inside the run's context
    else:
        name = flow_run.next_task_run_name(task) if flow_run is not None else task.name
    context = TaskRunContext(task, run_id or new_id(), name, flow_run, log_prints, args, kwargs)
    enclosing = current_tags()
    if enclosing:
        context.tags = merge_tags(task.tags, enclosing)
    if task.task_run_name is not None:
        _name(context)
    return context


def _name(context: TaskRunContext) -> None:
    """Name the run after its task's ``task_run_name``, rendered inside its context.

    Raises:
        ValueError: the name cannot be rendered (the run does not start).
    """
    task = context.task
    assert task.task_run_name is not None
    token = TASK_RUN.set(context)
    try:
        owner = f"task {task.name!r}"
        name = render_run_name(task.task_run_name, context.parameters, "task", owner)
    finally:
        TASK_RUN.reset(token)
    context.task_run_name = name


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
            context.tags,
        )
    )


def _retry(context: TaskRunContext, attempt: int, exc: Exception) -> float | None:
    """Return the delay before the next attempt, or None when the run has failed for good."""
    task = context.task
    if attempt > task.retries or isinstance(exc, FlowRunAborted):
        return None
    if task.retry_condition_fn is not None and not _should_retry(context, attempt, exc):
        return None
    delay = retry_delay(task.retry_delay_seconds, attempt)
    if task.retry_jitter_factor is not None:
        delay = jittered(delay, task.retry_jitter_factor)
    logs.get_logger().warning(
        "attempt %d of %d failed with %s: %s; retrying in %g s",
        attempt,
        task.retries + 1,
        type(exc).__name__,
        exc,
        delay,
    )
    context.run_count = attempt + 1
    return delay


def _should_retry(context: TaskRunContext, attempt: int, exc: Exception) -> bool:
    """Ask the task's ``retry_condition_fn`` whether the failed attempt is tried again."""
    from dockyard.sdk.runtime.hooks import should_retry

    if should_retry(context, exc):
        return True
    logs.get_logger().info(
        "attempt %d failed with %s: %s; not retried (retry_condition_fn said no)",
        attempt,
        type(exc).__name__,
        exc,
    )
    return False


# ---------------------------------------------------------------- state hooks


def _hooked(exc: BaseException) -> bool:
    """Whether a run that raised ``exc`` ended FAILED for its task's hooks (an interrupt
    crashes it; a run of an aborted flow run calls nothing more)."""
    return isinstance(exc, Exception) and not isinstance(exc, FlowRunAborted)


def _hooks(option: str, context: TaskRunContext, outcome: Any = None) -> None:
    """Call the task's ``option`` hooks; ``outcome``: the value, or the exception."""
    from dockyard.sdk.runtime import hooks

    hooks.run_task_hooks(option, context, hooks.task_state(option, context, outcome))


async def _hooks_async(option: str, context: TaskRunContext, outcome: Any = None) -> None:
    """Like :func:`_hooks`, awaiting ``async def`` hooks on the running loop."""
    from dockyard.sdk.runtime import hooks

    await hooks.run_task_hooks_async(option, context, hooks.task_state(option, context, outcome))


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


# ---------------------------------------------------------------- states


def _returned(
    context: TaskRunContext, start: float, attempts: int, value: State, cache_key: str | None
) -> tuple[State, tuple[str, Any] | None]:
    """Record the end of a run whose function returned a State: it ends in that state.

    Returns:
        The final state, and the hooks to call for it (option and outcome), if the task
        has any.
    """
    state = returned_state(value, "task")
    task = context.task
    if state.type is StateType.COMPLETED:
        _record(context, start, "COMPLETED", attempts, cache_key=cache_key)
        outcome = result_of(state)
        return state, ("on_completion", outcome) if task.on_completion_hooks else None
    logs.get_logger().error("finished in state %s: %s", state.name, state.message)
    name = to_server(state)
    _record(context, start, name, attempts, cache_key=cache_key, error=state.message)
    if state.type is StateType.FAILED and task.on_failure_hooks:
        return state, ("on_failure", result_of(state, raise_on_failure=False))
    return state, None


def _not_ready(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    run_id: int | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exc: UpstreamNotReady,
    return_state: bool,
) -> State:
    """Record a run that does not run, as a run it waited for did not complete: it ends
    PENDING, named NotReady. Return that state, or (for a plain call) raise UnfinishedRun."""
    context = _context(task, flow_run, run_id, args, kwargs)
    state = State(StateType.PENDING, NOT_READY, str(exc))
    token = TASK_RUN.set(context)
    try:
        logs.get_logger().error("finished in state %s: %s", NOT_READY, exc)
    finally:
        TASK_RUN.reset(token)
    _record(context, _now(), "PENDING", 0, error=state.message)
    if return_state:
        return state
    raise UnfinishedRun(f"{_label(context)} did not run: {exc}") from None


def _cached_state(value: Any) -> State:
    return State(StateType.COMPLETED, "Cached", data=value)


# ---------------------------------------------------------------- caching


def _cached(context: TaskRunContext, start: float) -> tuple[TaskPlan | None, str | None, Any]:
    """The slow path of a run whose result may be persisted, cached or reused (see
    :mod:`dockyard.sdk.runtime.cache`): return its plan, its cache key and the value it need not run
    for (or MISS); a cache hit is recorded as the run, COMPLETED from the cache."""
    plan, value = cache.prepare(context)
    key = plan.cache_key if plan is not None else None
    if value is not MISS and key is not None:
        _record(context, start, "COMPLETED", 1, cache_key=key, cached=True)
    return plan, key, value


def _store(plan: TaskPlan, value: Any) -> None:
    cache.store(plan, value)
