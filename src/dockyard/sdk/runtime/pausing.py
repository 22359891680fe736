"""Pausing a flow run until someone resumes it, with typed input (``dockyard.flow_runs``).

**Pause** (:func:`pause`): the run moves RUNNING → PAUSED on the server and its process waits
in a long-poll (``GET /flow-runs/{id}/pause?wait=``, woken by the resume itself), keeping
its lease alive as it does while RUNNING: a paused run whose process dies is CRASHED by
lease expiry. A resume moves it back to RUNNING and the call returns the input. Past its
timeout, measured here, the call raises :class:`FlowPauseTimeout` and the run ends FAILED
("paused for more than 3600 s without being resumed; ...") without flow retries: another
attempt would only wait again.

**Suspend** (:func:`suspend`): only a deployment's run (something must start it again).
The run moves to PAUSED marked suspended, gives back its lease and its slots, and its
process exits cleanly (:class:`FlowRunSuspended` unwinds the flow; its runner reports no
state). A resume schedules it again and a worker starts it from the top: the task calls
that completed before are not run again (the engine keeps their results for another attempt
of the same flow run, see :mod:`.cache`), and the same ``suspend_flow_run`` call returns the
input.

**Keys.** Each pause or suspend of a run has a key: the one given, else ``pause-1``,
``pause-2``, ... in the order of the calls in the run's process. The server answers a key
that was resumed before at once, with its input, and the call goes on: that is how a run
started again from the top goes past the pauses it went through already.

**Input.** ``wait_for_input`` is a pydantic model (a :class:`dockyard.input.RunInput` or
any ``BaseModel``), whose JSON schema the server checks the resume's input against, or a
simple type (``int``, ``str``, ``list[int]``, ...) wrapped in a model with one field
``value``, whose value the call returns. pydantic is imported only when input is awaited.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import TYPE_CHECKING, Any

from dockyard._states import pause_timed_out
from dockyard.exceptions import (
    Conflict,
    DockyardError,
    FlowPauseTimeout,
    FlowRunAborted,
    FlowRunSuspended,
    MissingContextError,
)
from dockyard.sdk.runtime import logs
from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN, FlowRunContext
from dockyard.sdk.runtime.shipping import warn

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = [
    "FlowPauseTimeout",
    "FlowRunSuspended",
    "current_run_id",
    "pause",
    "suspend",
    "suspend_other",
]

# one long-poll's wait: the server answers at once when the pause ends
WAIT_SECONDS = 20.0
# how long to wait before asking again when the server could not be reached
RETRY_SECONDS = 2.0
MAX_KEY = 200
_COUNTER = "\0pause"  # the run context's counter of pause calls (no task key looks like it)


def pause(wait_for_input: Any = None, timeout: int = 3600, key: str | None = None) -> Any:
    """Pause the current flow run until it is resumed; see the module's docstring.

    Returns:
        The input it was resumed with (an instance of the model, or the value of a simple
        type), or None when it waits for none.

    Raises:
        MissingContextError: called outside a flow run, or inside a task run.
        FlowPauseTimeout: nobody resumed it within ``timeout`` seconds.
        FlowRunAborted: it was cancelled (or taken from this process) while paused.
    """
    context = _current("pause_flow_run")
    model, wrapped = _model(wait_for_input)
    handle, api = context.handle, context.tracker.api
    key = _key(context, key)
    answer = _ask(context, key, timeout, model, suspend=False)
    if answer.get("resumed"):
        logs.get_logger().info("pause %r was resumed before: going on", key)
        return _value(context, model, wrapped, answer)
    logs.get_logger().info(
        "paused: waiting up to %d s to be resumed (`dockyard flow-run resume %s`, or its page "
        "in the UI)",
        timeout,
        handle.id,
    )
    deadline = time.monotonic() + timeout
    warned = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FlowPauseTimeout(f"flow run {handle.id} {pause_timed_out(handle.id, timeout)}")
        handle.check()  # the lease keeper found the run cancelled or taken
        try:
            answer = api.wait_for_resume(handle.id, key, min(remaining, WAIT_SECONDS))
        except DockyardError as exc:
            if not warned:
                warned = True
                warn(f"could not ask whether flow run {handle.id} was resumed: {exc}")
            time.sleep(min(RETRY_SECONDS, max(0.0, deadline - time.monotonic())))
            continue
        state = answer.get("state")
        if state == "PAUSED" and answer.get("key") == key:
            continue
        if state == "RUNNING" and answer.get("resumed"):
            logs.get_logger().info("resumed")
            return _value(context, model, wrapped, answer)
        cancelled = state == "CANCELLING"
        why = "was cancelled" if cancelled else f"is {state}"
        handle.abort(f"flow run {handle.id} {why} while paused", cancelled=cancelled)
        raise FlowRunAborted(str(handle.aborted))


def suspend(wait_for_input: Any = None, timeout: int = 3600, key: str | None = None) -> Any:
    """Suspend the current flow run (a deployment's); see the module's docstring.

    Returns:
        In the run started again after the resume: the input it was resumed with (or None).
        The first time, it does not return: it raises :class:`FlowRunSuspended`.

    Raises:
        MissingContextError: called outside a flow run, or inside a task run.
        DockyardError: the run is not a deployment's (nothing would start it again).
    """
    context = _current("suspend_flow_run")
    if context.record is None or context.record.deployment_id is None:
        raise DockyardError(
            f"flow run {context.handle.id} has no deployment, so nothing would start it again "
            "after a suspend; call pause_flow_run instead (its process waits), or run the "
            "flow from a deployment"
        )
    model, wrapped = _model(wait_for_input)
    key = _key(context, key)
    # the tasks it started finish first: their results are kept for the run's next start
    context.wait_for_tasks()
    answer = _ask(context, key, timeout, model, suspend=True)
    if answer.get("resumed"):
        logs.get_logger().info("suspend %r was resumed: going on", key)
        return _value(context, model, wrapped, answer)
    context.tracker.lease_keeper.stop(context.handle)  # the server took the lease back
    logs.get_logger().info(
        "suspended: this process exits; resume the run within %d s (`dockyard flow-run "
        "resume %s`) and a worker runs it again from the top",
        timeout,
        context.handle.id,
    )
    raise FlowRunSuspended(f"flow run {context.handle.id} was suspended")


def suspend_other(
    api: ServerApi,
    flow_run_id: uuid.UUID,
    wait_for_input: Any = None,
    timeout: int = 3600,
    key: str | None = None,
) -> None:
    """Suspend another RUNNING run of a deployment: its process is fenced off at its next
    lease renewal and stops; a resume schedules it again."""
    model, _ = _model(wait_for_input)
    api.pause_flow_run(
        flow_run_id,
        key=_checked_key(key) if key is not None else f"suspend-{uuid.uuid4().hex[:12]}",
        timeout=_checked_timeout(timeout),
        lease_token=None,
        input_schema=model.model_json_schema() if model is not None else None,
        suspend=True,
    )


# ---------------------------------------------------------------- helpers


def current_run_id() -> uuid.UUID | None:
    """The id of the flow run this code runs in, if any."""
    context = FLOW_RUN.get()
    return context.handle.id if context is not None else None


def _current(what: str) -> FlowRunContext:
    context = FLOW_RUN.get()
    if context is None:
        raise MissingContextError(
            f"{what} must be called inside a flow run (in the body of a @flow function); "
            "to resume a paused run from elsewhere, call resume_flow_run(flow_run_id)"
        )
    if TASK_RUN.get() is not None:
        raise MissingContextError(
            f"{what} cannot be called inside a task run: call it in the flow's body"
        )
    if not context.tracked:
        raise DockyardError(
            f"{what} needs a server to wait on, and flow run {context.handle.id} runs "
            "untracked; start one with `dockyard server start`"
        )
    return context


def _checked_key(key: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
        raise ValueError(f"a pause key is text of 1 to {MAX_KEY} characters, not {key!r}")
    return key


def _checked_timeout(timeout: int) -> int:
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(
            f"a pause timeout is a whole number of seconds (1 or more), not {timeout!r}"
        )
    return timeout


def _key(context: FlowRunContext, key: str | None) -> str:
    """The key of this pause call: the one given, else the next ``pause-N`` of the run."""
    if key is not None:
        return _checked_key(key)
    counter = context._counters.setdefault(_COUNTER, itertools.count(1))
    return f"pause-{next(counter)}"


def _ask(
    context: FlowRunContext, key: str, timeout: int, model: Any, *, suspend: bool
) -> dict[str, Any]:
    """Pause the run on the server; a refusal means the run is no longer this process's."""
    handle = context.handle
    handle.check()
    try:
        answer: dict[str, Any] = context.tracker.api.pause_flow_run(
            handle.id,
            key=key,
            timeout=_checked_timeout(timeout),
            lease_token=handle.lease_token,
            input_schema=model.model_json_schema() if model is not None else None,
            suspend=suspend,
        )
    except Conflict as exc:
        handle.abort(str(exc), cancelled=exc.current_state == "CANCELLING")
        raise FlowRunAborted(f"flow run {handle.id} could not pause: {exc}") from exc
    return answer


def _model(wait_for_input: Any) -> tuple[Any, bool]:
    """The pydantic model of the input awaited (None: none), and whether it wraps a simple
    type in a field ``value``."""
    if wait_for_input is None:
        return None, False
    from pydantic import BaseModel, create_model

    if isinstance(wait_for_input, type) and issubclass(wait_for_input, BaseModel):
        return wait_for_input, False
    try:
        model = create_model("Input", value=(wait_for_input, ...))
    except Exception as exc:
        raise TypeError(
            f"wait_for_input must be a pydantic model (e.g. a RunInput subclass) or a type "
            f"pydantic can check (int, str, list[int], ...), not {wait_for_input!r}: {exc}"
        ) from None
    return model, True


def _value(context: FlowRunContext, model: Any, wrapped: bool, answer: dict[str, Any]) -> Any:
    """The input a resume gave, as the model (or the wrapped value); None without a model."""
    if model is None:
        return None
    from pydantic import ValidationError

    try:
        value = model.model_validate(answer.get("run_input") or {})
    except ValidationError as exc:
        raise ValueError(
            f"flow run {context.handle.id} was resumed with input that does not fit "
            f"{model.__name__}: {exc}"
        ) from None
    return value.value if wrapped else value
