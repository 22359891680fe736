"""State hooks: the functions a flow or task calls when one of its runs changes state.

``hook(flow, flow_run, state)`` / ``hook(task, task_run, state)``: ``flow_run`` and
``task_run`` are the run as its context shows it
(:class:`~dockyard.sdk.runtime.context.FlowRunInfo`,
:class:`~dockyard.sdk.runtime.context.TaskRunInfo`: ``id``, ``name``, ``parameters``,
``tags``, ``run_count``...), ``state`` a :class:`~dockyard.sdk.runtime.states.State`.

A flow calls ``on_running`` at the start of each attempt, then one of ``on_completion``,
``on_failure``, ``on_crashed`` or ``on_cancellation`` once its final state is reported; a
task calls ``on_running`` at each attempt and ``on_completion`` or ``on_failure`` when it
ends (after its last retry).

Hooks run in the run's process and context, one after the other, so what they log goes to
the run's logs. A hook that raises is logged there with its traceback, and the next one
runs: a hook never changes the run's state. ``async def`` hooks are awaited.

Also here: ``retry_condition_fn(task, task_run, state)``, which decides whether a failed
task run is retried. Imported only when a run has hooks or a retry condition to call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from dockyard.sdk.runtime import logs
from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN, FlowRunContext, TaskRunContext
from dockyard.sdk.runtime.results import describe_failure
from dockyard.sdk.runtime.states import Completed, Failed, Retrying, Running, State, StateType

if TYPE_CHECKING:
    from dockyard.sdk.flows import Flow

__all__ = [
    "failed_state",
    "flow_hooks_for",
    "run_flow_hooks",
    "run_task_hooks",
    "run_task_hooks_async",
    "running_state",
    "should_retry",
    "task_state",
]

# The hook list a flow calls for each final state (and RUNNING).
_FLOW_HOOKS = {
    StateType.RUNNING: "on_running_hooks",
    StateType.COMPLETED: "on_completion_hooks",
    StateType.FAILED: "on_failure_hooks",
    StateType.CRASHED: "on_crashed_hooks",
    StateType.CANCELLED: "on_cancellation_hooks",
}
_OPTION = {attribute: attribute.removesuffix("_hooks") for attribute in _FLOW_HOOKS.values()}


def running_state(run_count: int) -> State:
    """The RUNNING state of attempt ``run_count``: ``Running``, then ``Retrying``."""
    state: State = Running() if run_count <= 1 else Retrying()
    return state


def failed_state(exc: BaseException) -> State:
    """The FAILED state of a run that raised ``exc`` (``state.result()`` raises it)."""
    state: State = Failed(message=describe_failure(exc), data=exc)
    return state


def task_state(option: str, context: TaskRunContext, outcome: Any) -> State:
    """The state a task run's ``option`` hooks are called with; ``outcome`` is the run's
    value (on_completion) or exception (on_failure)."""
    if option == "on_running":
        return running_state(context.run_count)
    if option == "on_failure":
        return failed_state(outcome)
    state: State = Completed(data=outcome)
    return state


def flow_hooks_for(flow: Flow[..., Any], state: StateType | str) -> list[Callable[..., Any]]:
    """The hooks ``flow`` calls when a run enters ``state`` (none for other states)."""
    attribute = _FLOW_HOOKS.get(StateType(state))
    return list(getattr(flow, attribute, ())) if attribute else []


def run_flow_hooks(context: FlowRunContext, state: State) -> None:
    """Call the hooks of ``context``'s flow for ``state``, in the run's context."""
    attribute = _FLOW_HOOKS.get(state.type)
    hooks = getattr(context.flow, attribute, None) if attribute else None
    if not hooks or attribute is None:
        return
    flow_token, task_token = FLOW_RUN.set(context), TASK_RUN.set(None)
    try:
        view = context.flow_run
        for hook in list(hooks):
            _call(hook, (context.flow, view, state), _OPTION[attribute], state)
    finally:
        TASK_RUN.reset(task_token)
        FLOW_RUN.reset(flow_token)


def run_task_hooks(option: str, context: TaskRunContext, state: State) -> None:
    """Call the task's ``option`` hooks (``"on_failure"``...) in the task run's context.

    An ``async def`` hook runs to its end on an event loop of its own.
    """
    hooks = list(getattr(context.task, f"{option}_hooks"))
    token = TASK_RUN.set(context)
    try:
        view = context.task_run
        for hook in hooks:
            _call(hook, (context.task, view, state), option, state)
    finally:
        TASK_RUN.reset(token)


async def run_task_hooks_async(option: str, context: TaskRunContext, state: State) -> None:
    """Like :func:`run_task_hooks`, for an ``async def`` task: its async hooks are awaited
    on the running event loop."""
    hooks = list(getattr(context.task, f"{option}_hooks"))
    token = TASK_RUN.set(context)
    try:
        view = context.task_run
        for hook in hooks:
            try:
                _started(hook, option)
                result = hook(context.task, view, state)
                if hasattr(result, "__await__"):
                    await result
            except Exception as exc:
                _hook_failed(hook, option, state, exc)
    finally:
        TASK_RUN.reset(token)


def should_retry(context: TaskRunContext, exc: BaseException) -> bool:
    """Ask the task's ``retry_condition_fn`` whether to retry after ``exc``.

    A condition that raises is logged, and the run is not retried.
    """
    task = context.task
    condition = task.retry_condition_fn
    assert condition is not None
    state = failed_state(exc)
    try:
        answer = condition(task, context.task_run, state)
        if hasattr(answer, "__await__"):
            answer = _wait(answer)
        return bool(answer)
    except Exception:
        logs.get_logger().exception(
            "retry_condition_fn %s raised; the task run is not retried", _name(condition)
        )
        return False


def _name(hook: Callable[..., Any]) -> str:
    return repr(getattr(hook, "__name__", None) or repr(hook))


def _started(hook: Callable[..., Any], option: str) -> None:
    logs.get_logger().info("running %s hook %s", option, _name(hook))


def _hook_failed(hook: Callable[..., Any], option: str, state: State, exc: Exception) -> None:
    logs.get_logger().error(
        "%s hook %s failed; the run stays %s",
        option,
        _name(hook),
        state.name,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def _call(hook: Callable[..., Any], args: tuple[Any, ...], option: str, state: State) -> None:
    try:
        _started(hook, option)
        result = hook(*args)
        if hasattr(result, "__await__"):
            _wait(result)
    except Exception as exc:
        _hook_failed(hook, option, state, exc)


def _wait(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` to its end from synchronous code, on an event loop of its own."""
    import asyncio

    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    # This thread runs a loop already (a sync task called from async code): wait in another.
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    context = contextvars.copy_context()
    with ThreadPoolExecutor(1, thread_name_prefix="dockyard-hook") as pool:
        return pool.submit(context.run, asyncio.run, wait()).result()
