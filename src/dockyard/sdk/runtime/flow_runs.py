"""Running a flow: one call is one flow run, from RUNNING to a final state.

The steps, shared by plain and ``async def`` flows:

1. start: settings are read once per top-level run; the run is created RUNNING on the server
   (or adopted, when the engine runs an existing one). With no server reachable the run goes
   on untracked, after one line saying so.
2. the parameters are validated against the type hints (a bad value fails the run here,
   before the flow's code runs);
3. attempts, with retries (AWAITING_RETRY, then RUNNING again) and a timeout per attempt;
4. end: submitted tasks are waited for, task runs and logs flushed, then the final state is
   reported with the result (COMPLETED) or the failure (FAILED; CRASHED for an interrupt),
   once: both wait for a server that does not answer while the run's lease allows
   (:meth:`Tracker.end_run`); what could still not be reported stays on the run's handle
   for the engine to hand over.

A 409 from the server on any transition means the run is no longer this process's: the flow
stops with FlowRunAborted and reports nothing more. A run its flow suspended
(:mod:`.pausing`) reports nothing either: it waits, PAUSED, to start again, and its process
ends as if it completed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from dockyard import settings as settings_module
from dockyard._names import name_problem
from dockyard.exceptions import (
    ApiError,
    DockyardError,
    FlowPauseTimeout,
    FlowRunAborted,
    FlowRunSuspended,
    ServerUnreachable,
    UnfinishedRun,
)
from dockyard.sdk.options import render_run_name, retry_delay
from dockyard.sdk.runtime import logs
from dockyard.sdk.runtime.cache import run_results
from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN, FlowRunContext, RunRecord
from dockyard.sdk.runtime.futures import (
    NOT_READY,
    UpstreamNotReady,
    check_upstream,
    failed_state,
    flow_final_state,
    result_of,
)
from dockyard.sdk.runtime.results import describe_failure, json_safe, result_for_server
from dockyard.sdk.runtime.shipping import FLUSH_TIMEOUT
from dockyard.sdk.runtime.states import State, StateType, to_server
from dockyard.sdk.runtime.tags import current_tags, merge_tags
from dockyard.sdk.runtime.timeouts import await_with_timeout, call_with_timeout
from dockyard.sdk.runtime.tracking import LeaseRenewer, LocalTracker, RunHandle, Tracker, warn

if TYPE_CHECKING:
    from dockyard.sdk.flows import Flow
    from dockyard.settings import Settings

__all__ = ["FlowRunner", "call_flow", "run_flow_async", "run_flow_sync"]


def call_flow(
    flow: Flow[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    return_state: bool = False,
    wait_for: Any = None,
) -> Any:
    """Run ``flow`` for one call (what ``Flow.__call__`` does); a coroutine if it is async.

    Raises:
        TypeError: the arguments do not fit the function's signature (no run is made).
    """
    given = flow.signature.bind(args, kwargs)
    if flow.isasync:
        return run_flow_async(flow, given, return_state=return_state, wait_for=wait_for)
    return run_flow_sync(flow, given, return_state=return_state, wait_for=wait_for)


def _upstream(flow: Flow[..., Any], wait_for: Any, return_state: bool) -> State | None:
    """Wait for the runs in a call's ``wait_for``. If one did not complete, the flow does
    not run (no run is made): return a PENDING state named NotReady, or raise
    UnfinishedRun; None when the flow may run."""
    try:
        check_upstream(wait_for)
    except UpstreamNotReady as exc:
        if return_state:
            return State(StateType.PENDING, NOT_READY, str(exc))
        raise UnfinishedRun(f"flow {flow.name!r} did not run: {exc}") from None
    return None


class FlowRunner:
    """One flow run from start to end; see the module's docstring for the steps.

    Args:
        flow: the flow to run.
        given: the arguments of the call, by parameter name (defaults not applied).
        handle: an existing run to run (the engine's), instead of creating one.
        settings: the settings of a top-level run (read here when not given).
        record: what the server said of the existing run (the engine's), for its context.
    """

    def __init__(
        self,
        flow: Flow[..., Any],
        given: dict[str, Any],
        *,
        handle: RunHandle | None = None,
        settings: Settings | None = None,
        record: RunRecord | None = None,
    ) -> None:
        self.flow = flow
        self.given = given
        self.parameters = flow.signature.with_defaults(given)
        self.parent = FLOW_RUN.get()
        self._handle = handle
        self._settings = settings
        self._record = record
        self.owns_tracker = self.parent is None
        self.context: FlowRunContext | None = None
        self.logger = logging.getLogger(logs.FLOW_LOGGER)
        # The final state is reported once, even when an async flow's end races a signal
        # (the report goes on in its thread while the cancelled task reports its failure).
        self._ending = threading.Lock()
        self._reported: bool | None = None
        self.suspended = False  # the flow suspended its run: its process exits cleanly

    # ------------------------------------------------------------ start

    def start(self) -> FlowRunContext:
        """Create (or adopt) the run and return its context."""
        logs.install()
        parent = self.parent
        if parent is not None:
            settings, tracker = parent.settings, parent.tracker
        else:
            settings = self._settings or settings_module.load()
            tracker = self._open_tracker(settings)
        handle = self._handle
        tags = merge_tags(self.flow.tags, current_tags())
        if handle is None:
            tracker, handle = self._create_run(tracker, settings, tags)
        kept_name = None
        if self._handle is not None and self.flow.flow_run_name is not None:
            kept_name = self._rename(tracker, settings, tags, handle)
        log_prints = self.flow.log_prints
        if log_prints is None:
            log_prints = parent.log_prints if parent is not None else False
        if log_prints:
            logs.capture_prints()
        self.context = FlowRunContext(
            flow=self.flow,
            handle=handle,
            parameters=self.parameters,
            parent=parent,
            tracker=tracker,
            settings=settings,
            log_prints=log_prints,
            record=self._record,
        )
        if self._handle is None:
            self.context.tags = list(tags)
        # a run the engine runs may run again in a new process (a crash retry)
        self.context.results = run_results(
            self.flow, parent, settings, handle.id_text, engine_run=self._handle is not None
        )
        tracker.lease_keeper.start(handle)
        token = FLOW_RUN.set(self.context)
        try:
            self.logger.info("running flow %r", self.flow.name)
            if kept_name is not None:
                self.logger.warning("%s", kept_name)
        finally:
            FLOW_RUN.reset(token)
        if self.flow.on_running_hooks:
            self._hooks_running()
        return self.context

    def _rename(
        self, tracker: Tracker, settings: Settings, tags: tuple[str, ...], handle: RunHandle
    ) -> str | None:
        """Give a run the engine adopted (a deployment's) the name its flow gives it.

        The name is a label: when it cannot be made or recorded, the run goes on under the
        name it has; the line to log then is returned.
        """
        try:
            name = self._run_name(tracker, settings, tags)
            if name != handle.name and handle.lease_token is not None:
                tracker.api.rename_flow_run(handle.id, name, handle.lease_token)
                handle.name = name
        except Exception as exc:
            return f"the run keeps its name {handle.name!r}: {exc}"
        return None

    def _open_tracker(self, settings: Settings) -> Tracker:
        from dockyard.sdk.api import ServerApi

        api = ServerApi(settings.api_url, settings.api_key)
        renewer = LeaseRenewer(api, settings.heartbeat_seconds)
        return Tracker(api, renewer, lease_seconds=settings.lease_seconds)

    def _create_run(
        self, tracker: Tracker, settings: Settings, tags: tuple[str, ...]
    ) -> tuple[Tracker, RunHandle]:
        request: dict[str, Any] = {
            "flow_name": self.flow.name,
            "parameters": json_safe(self.parameters),
            "parent": self.parent.handle if self.parent is not None else None,
            "tags": list(tags),
        }
        if self.flow.flow_run_name is not None:
            try:
                request["name"] = self._run_name(tracker, settings, tags)
            except BaseException:
                if self.owns_tracker:
                    tracker.close()
                raise  # like arguments that do not fit: no run is made
        try:
            return tracker, tracker.start_run(**request)
        except ApiError:
            if self.owns_tracker:
                tracker.close()
            raise  # the server answered, and refused: that is for the caller to see
        except DockyardError as exc:
            if self.owns_tracker:
                tracker.close()
            warn(
                f"no server at {settings.api_url} ({_reason(exc)}); flow {self.flow.name!r} "
                "runs untracked"
            )
            local = LocalTracker()
            return local, local.start_run(**request)

    def _run_name(self, tracker: Tracker, settings: Settings, tags: tuple[str, ...]) -> str:
        """The name the flow's ``flow_run_name`` gives the run about to be created.

        A function runs in a provisional context of the run (its flow, parameters and
        tags; its id is not known before the server makes it).

        Raises:
            ValueError: the name cannot be rendered, or is not a valid name.
        """
        flow = self.flow
        assert flow.flow_run_name is not None
        parameters = self._naming_parameters()
        provisional = FlowRunContext(
            flow=flow,
            handle=RunHandle(uuid.UUID(int=0), flow.name),
            parameters=parameters,
            parent=self.parent,
            tracker=tracker,
            settings=settings,
            log_prints=False,
        )
        provisional.tags = list(tags)
        flow_token, task_token = FLOW_RUN.set(provisional), TASK_RUN.set(None)
        try:
            name = render_run_name(flow.flow_run_name, parameters, "flow", f"flow {flow.name!r}")
        finally:
            TASK_RUN.reset(task_token)
            FLOW_RUN.reset(flow_token)
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(f"flow_run_name of flow {flow.name!r} gives {name!r}, which {problem}")
        return name

    def _naming_parameters(self) -> dict[str, Any]:
        """The parameters a run name is made of: validated when they can be (a date passed
        as text is a date), else as given (their validation fails the run once made)."""
        if self.flow.validate_parameters:
            with contextlib.suppress(Exception):
                values: dict[str, Any] = self.flow.signature.validate(self.parameters, self.given)
                return values
        return self.parameters

    # ------------------------------------------------------------ during

    def validated_arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Return the arguments to call the function with, validated if the flow says so."""
        signature = self.flow.signature
        values = self.parameters
        if self.flow.validate_parameters:
            values = signature.validate(values, self.given)
            assert self.context is not None
            self.context.parameters = values
        return signature.call_args(values)

    def before_retry(self, attempt: int, exc: Exception) -> float | None:
        """Report a failed attempt; return the delay before the next, or None if none is left."""
        flow = self.flow
        if attempt > flow.retries or isinstance(exc, FlowRunAborted | FlowPauseTimeout):
            return None  # another attempt would be fenced off, or wait again
        delay = retry_delay(flow.retry_delay_seconds, attempt)
        self.logger.warning(
            "attempt %d of %d failed with %s: %s; retrying in %g s",
            attempt,
            flow.retries + 1,
            type(exc).__name__,
            exc,
            delay,
        )
        self._set_state("AWAITING_RETRY", message=describe_failure(exc))
        return delay

    def retrying(self) -> None:
        """Report the start of the next attempt."""
        context = self._context()
        context.run_count += 1
        if context.results is not None:
            context.results.new_attempt()
        self._set_state("RUNNING")
        if self.flow.on_running_hooks:
            self._hooks_running()

    # ------------------------------------------------------------ end

    def completed(self, value: Any) -> State:
        """Wait for submitted tasks, flush, and report COMPLETED with the result; return
        the final state.

        A function that returned a State, or futures or States of runs of which one did not
        complete, ends the run otherwise (:func:`~dockyard.sdk.runtime.futures.flow_final_state`).
        """
        context = self._context()
        context.wait_for_tasks()
        context.handle.check()
        state = flow_final_state(value)
        if state.type is not StateType.COMPLETED:
            self._returned(state)
            return state
        value = state.data
        self.logger.info("finished in state COMPLETED")
        results = context.results
        if results is not None:
            results.keep_flow_result(context.handle.id_text, value)
        self._end("COMPLETED", result=result_for_server(value))
        if results is not None and self._reported is not None:
            results.end("COMPLETED")
        self._hooks_final("COMPLETED", None, value)
        return state

    def _returned(self, state: State) -> None:
        """Report the final state the function returned (one that is not COMPLETED)."""
        context = self._context()
        name = to_server(state)
        self.logger.error("finished in state %s: %s", name, state.message)
        if name == "CANCELLED":  # a live run is cancelled by way of CANCELLING
            self._set_state("CANCELLING", message=state.message)
        self._end(name, message=state.message)
        if context.results is not None and self._reported is not None:
            context.results.end(name)
        self._hooks_final(name, state.message, result_of(state, raise_on_failure=False))

    def failed(self, exc: BaseException) -> None:
        """Wait for started tasks, flush, and report how the run ended.

        FAILED for an exception, CRASHED for an interrupt or a signal, CANCELLED when the
        run was asked to cancel; nothing when the server took the run from this process.
        A run stopped by a signal does not wait for its running tasks.
        """
        context = self._context()
        handle = context.handle
        if isinstance(exc, FlowRunSuspended):
            # PAUSED and suspended on the server: no state to report, no hooks to call, and
            # the results kept for the next start of the run stay
            self.suspended = True
            context.wait_for_tasks(cancel=True)
            return
        with self._ending:  # an end reported by another thread (see __init__) stands
            if self._reported is not None:
                return
        context.wait_for_tasks(cancel=True, wait=handle.terminated is None)
        if handle.fenced:
            warn(f"flow run {handle.id} stopped: {handle.aborted}")
            return
        state, message = self._final_state(exc)
        level = logging.WARNING if state == "CANCELLED" else logging.ERROR
        self.logger.log(level, "finished in state %s: %s", state, message)
        with contextlib.suppress(FlowRunAborted):  # the flow's own exception is raised
            self._end(state, message=message)
        if context.results is not None and self._reported is not None:
            context.results.end(state)
        self._hooks_final(state, message, exc)

    def _end(self, state: str, *, message: str | None = None, result: Any = None) -> None:
        """Flush and report the final state, unless it was reported already."""
        context = self._context()
        with self._ending:
            if self._reported is None:
                self._reported = context.tracker.end_run(
                    context.handle, state, message=message, result=result
                )

    # ------------------------------------------------------------ state hooks

    _hooked = False  # the final state's hooks were called (once, whichever thread ends)

    def _hooks_running(self) -> None:
        """Call the flow's on_running hooks for the attempt starting."""
        from dockyard.sdk.runtime import hooks

        context = self._context()
        hooks.run_flow_hooks(context, hooks.running_state(context.run_count))

    def _hooks_final(self, state: str, message: str | None, outcome: Any) -> None:
        """Call the flow's hooks for the final state just reported (``outcome``: the value,
        or the exception); none when the server refused it (the run is not ours)."""
        with self._ending:
            if self._reported is None or self._hooked:
                return
            self._hooked = True
        from dockyard.sdk.runtime import hooks

        if hooks.flow_hooks_for(self.flow, state):
            hooks.run_flow_hooks(self._context(), _final(state, message, outcome))

    def _final_state(self, exc: BaseException) -> tuple[str, str]:
        """The final state of a run that raised ``exc``, and its message."""
        context = self._context()
        handle = context.handle
        signal_name = handle.terminated
        if handle.cancel_requested or (signal_name and context.tracker.cancel_requested(handle)):
            how = f" (terminated by signal {signal_name})" if signal_name else ""
            return "CANCELLED", f"cancelled{how}"
        message = describe_failure(exc)
        if signal_name:
            trace = message.partition("\n\n")[2]
            return "CRASHED", f"terminated by signal {signal_name}" + (
                f"\n\n{trace}" if trace else ""
            )
        return ("FAILED" if isinstance(exc, Exception) else "CRASHED"), message

    def close(self) -> None:
        """Stop keeping the lease, and the tracker's thread if this run started it."""
        if self.context is None:
            return
        handle = self.context.handle
        self.context.tracker.lease_keeper.stop(handle)
        if self.owns_tracker:
            # A final state the server did not take says it is not answering: what is left
            # gets one try, and the worker ships the run's output from its side.
            self.context.tracker.close(0.0 if handle.unreported else FLUSH_TIMEOUT)

    def _set_state(self, state: str, **fields: Any) -> None:
        context = self._context()
        context.tracker.set_state(context.handle, state, **fields)

    def _context(self) -> FlowRunContext:
        assert self.context is not None, "the flow run has not started"
        return self.context

    @property
    def label(self) -> str:
        """How messages name the run: ``flow run 'name'``."""
        return f"flow run {self._context().handle.name!r}"


def _final(state: str, message: str | None, outcome: Any) -> State:
    from dockyard.sdk.runtime.states import from_server

    return from_server(state, message, data=outcome)


def _reason(exc: DockyardError) -> str:
    """Return why the server could not be reached, in a few words."""
    text = str(exc)
    start, end = text.find(" ("), text.find(");")
    if isinstance(exc, ServerUnreachable) and 0 <= start < end:
        return text[start + 2 : end]
    return text.splitlines()[0] if text else type(exc).__name__


def run_flow_sync(
    flow: Flow[..., Any],
    given: dict[str, Any],
    *,
    handle: RunHandle | None = None,
    settings: Settings | None = None,
    record: RunRecord | None = None,
    return_state: bool = False,
    wait_for: Any = None,
) -> Any:
    """Run a plain-function flow as one flow run; return its value or raise its exception.

    ``wait_for``: runs to wait for first. ``return_state``: return the run's final State
    instead (an interrupt, or a run the server took back, is still raised).
    """
    if wait_for is not None and (not_ready := _upstream(flow, wait_for, return_state)):
        return not_ready
    runner = FlowRunner(flow, given, handle=handle, settings=settings, record=record)
    context = runner.start()
    flow_token, task_token = FLOW_RUN.set(context), TASK_RUN.set(None)
    try:
        args, kwargs = runner.validated_arguments()
        attempt = 1
        while True:
            try:
                if flow.timeout_seconds is None:
                    value = flow.fn(*args, **kwargs)
                else:
                    value = call_with_timeout(
                        flow.fn, args, kwargs, seconds=flow.timeout_seconds, label=runner.label
                    )
                break
            except Exception as exc:
                delay = runner.before_retry(attempt, exc)
                if delay is None:
                    raise
                time.sleep(delay)
                runner.retrying()
                attempt += 1
        state = runner.completed(value)
    except BaseException as exc:
        runner.failed(exc)
        if runner.suspended:
            return None  # the run starts again from the top once resumed
        if return_state and (failed := failed_state(exc)) is not None:
            return failed
        raise
    finally:
        TASK_RUN.reset(task_token)
        FLOW_RUN.reset(flow_token)
        runner.close()
    return state if return_state else result_of(state)


async def run_flow_async(
    flow: Flow[..., Any],
    given: dict[str, Any],
    *,
    handle: RunHandle | None = None,
    settings: Settings | None = None,
    record: RunRecord | None = None,
    return_state: bool = False,
    wait_for: Any = None,
) -> Any:
    """Run an ``async def`` flow as one flow run; return its value or raise its exception
    (``return_state``, ``wait_for``: as for :func:`run_flow_sync`).

    Calls to the server run in a worker thread, so the event loop never waits on them.
    """
    import asyncio

    if wait_for is not None:
        not_ready = await asyncio.to_thread(_upstream, flow, wait_for, return_state)
        if not_ready is not None:
            return not_ready
    runner = FlowRunner(flow, given, handle=handle, settings=settings, record=record)
    context = await asyncio.to_thread(runner.start)
    flow_token, task_token = FLOW_RUN.set(context), TASK_RUN.set(None)
    try:
        args, kwargs = runner.validated_arguments()
        attempt = 1
        while True:
            try:
                if flow.timeout_seconds is None:
                    value = await flow.fn(*args, **kwargs)
                else:
                    value = await await_with_timeout(
                        flow.fn(*args, **kwargs), seconds=flow.timeout_seconds, label=runner.label
                    )
                break
            except Exception as exc:
                delay = await asyncio.to_thread(runner.before_retry, attempt, exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                await asyncio.to_thread(runner.retrying)
                attempt += 1
        state = await asyncio.to_thread(runner.completed, value)
    except BaseException as exc:
        await asyncio.to_thread(runner.failed, exc)
        if runner.suspended:
            return None  # the run starts again from the top once resumed
        if return_state and (failed := failed_state(exc)) is not None:
            return failed
        raise
    finally:
        TASK_RUN.reset(task_token)
        FLOW_RUN.reset(flow_token)
        await asyncio.to_thread(runner.close)
    return state if return_state else result_of(state)
