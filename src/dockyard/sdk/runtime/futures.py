"""Futures of submitted task runs, and how values and states pass from one run to the next.

A :class:`TaskFuture` is the run to come of a ``Task.submit``; ``Task.map`` returns a
:class:`FutureList`. :func:`wait` and :func:`as_completed` wait for several.

What a task receives (:func:`resolve_futures`): a future or a State among its arguments
(directly, or directly inside a list, tuple, set or dict) is replaced by the value of its
run once that run is over. If that run did not complete, the task does not run: it ends in
a PENDING state named ``NotReady`` (:class:`UpstreamNotReady` says why), unless the argument
is wrapped in :class:`~dockyard.utilities.annotations.allow_failure`, which passes the
exception instead. ``wait_for=[...]`` applies the same rule to runs whose values are not
needed (:func:`check_upstream`).

How a run ends (:func:`failed_state`, :func:`returned_state`, :func:`flow_final_state`): a
function that raises ends FAILED; one that returns a State ends in it; a flow that returns
futures or states (directly, or a list, tuple or set of them) ends FAILED if one of those runs
did not complete.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterable, Iterator
from concurrent import futures as cf
from typing import Any, Generic, NamedTuple, TypeVar

from dockyard.exceptions import FlowRunAborted, MissingResult, UnfinishedRun
from dockyard.sdk.runtime.states import State, StateType
from dockyard.utilities.annotations import allow_failure, quote, unmapped

__all__ = [
    "DoneAndNotDoneFutures",
    "FutureList",
    "TaskFuture",
    "UpstreamNotReady",
    "as_completed",
    "check_upstream",
    "failed_state",
    "flow_final_state",
    "has_futures",
    "resolve_futures",
    "resolve_futures_to_states",
    "result_of",
    "returned_state",
    "unmapped",
    "wait",
]

T = TypeVar("T")

NOT_READY = "NotReady"
"""The name of the PENDING state of a task run that did not run: an upstream run failed."""


class TaskFuture(Generic[T]):
    """The run to come of a submitted task.

    ``future.result()`` waits for it and returns its value (or raises what it failed with);
    ``future.state`` tells where it is without waiting; inside ``async`` code,
    ``await future`` waits without blocking the event loop.

    A task runner makes one from a :class:`concurrent.futures.Future` whose result is the
    run's final :class:`~dockyard.sdk.runtime.states.State`.
    """

    __slots__ = ("_future", "_id")

    def __init__(self, future: cf.Future[State], task_run_id: int) -> None:
        self._future = future
        self._id = task_run_id

    @property
    def task_run_id(self) -> uuid.UUID:
        """The id of the task run."""
        return uuid.UUID(int=self._id)

    @property
    def state(self) -> State:
        """The run's state now: Pending, Running, then its final state (never waits)."""
        future = self._future
        if future.done():
            return _state_of(future)
        return State(StateType.RUNNING) if future.running() else State(StateType.PENDING)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the run to finish; return whether it did within ``timeout`` seconds."""
        done, _ = cf.wait([self._future], timeout)
        return bool(done)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> T:
        """Wait for the run and return its value; if it failed, raise what it failed with
        (or, with ``raise_on_failure=False``, return that exception).

        Raises:
            TimeoutError: it did not finish within ``timeout`` seconds.
            UnfinishedRun: it did not run, as an upstream run did not complete.
        """
        if not self.wait(timeout):
            raise TimeoutError(f"task run {self.task_run_id} did not finish within {timeout:g} s")
        value: T = result_of(self.state, raise_on_failure)
        return value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the run and return what it failed with (None if it completed)."""
        if not self.wait(timeout):
            raise TimeoutError(f"task run {self.task_run_id} did not finish within {timeout:g} s")
        state = self.state
        if state.type is StateType.COMPLETED:
            return None
        outcome = result_of(state, raise_on_failure=False)
        return outcome if isinstance(outcome, BaseException) else None

    def done(self) -> bool:
        """Return whether the run has finished."""
        return self._future.done()

    def add_done_callback(self, fn: Any) -> None:
        """Call ``fn(future)`` once the run has finished (at once if it has)."""
        self._future.add_done_callback(lambda _: fn(self))

    def __await__(self) -> Generator[Any, None, T]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> T:
        import asyncio

        await asyncio.wait([asyncio.wrap_future(self._future)])
        return self.result()

    def __repr__(self) -> str:
        return f"TaskFuture(task_run_id={self.task_run_id}, state={self.state!r})"


def _state_of(future: cf.Future[State]) -> State:
    """The final State of a finished runner future."""
    if future.cancelled():
        return State(StateType.CANCELLED, message="cancelled before it started: its flow run ended")
    exc = future.exception()
    if exc is not None:
        return State(StateType.CRASHED, message=_describe(exc), data=exc)
    return future.result()


class FutureList(list[TaskFuture[T]]):
    """The futures returned by ``Task.map``, in the order of the mapped elements."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every run to finish, failed or not (at most ``timeout`` seconds in all)."""
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[T]:
        """Wait for every run and return their values in order; the first failure raises
        (with ``raise_on_failure=False`` its exception takes the value's place).

        Raises:
            TimeoutError: they did not all finish within ``timeout`` seconds in all.
        """
        _, not_done = wait(self, timeout)
        if not_done:
            raise TimeoutError(
                f"{len(not_done)} of {len(self)} task runs did not finish within {timeout:g} s"
            )
        return [future.result(raise_on_failure=raise_on_failure) for future in self]


class DoneAndNotDoneFutures(NamedTuple, Generic[T]):
    """What :func:`wait` returns: the futures that finished, and those that did not."""

    done: set[TaskFuture[T]]
    not_done: set[TaskFuture[T]]


def wait(
    futures: Iterable[TaskFuture[T]], timeout: float | None = None
) -> DoneAndNotDoneFutures[T]:
    """Wait until every run has finished, or ``timeout`` seconds have passed.

    Returns:
        ``(done, not_done)``: two sets of futures.
    """
    by_inner = {future._future: future for future in futures}
    done, not_done = cf.wait(by_inner, timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[TaskFuture[T]], timeout: float | None = None
) -> Iterator[TaskFuture[T]]:
    """Yield the futures as their runs finish (failed or not).

    Raises:
        TimeoutError: some runs did not finish within ``timeout`` seconds.
    """
    by_inner = {future._future: future for future in futures}
    for inner in cf.as_completed(by_inner, timeout):
        yield by_inner[inner]


# ---------------------------------------------------------------- what a task receives


class UpstreamNotReady(Exception):
    """Raised while a task run prepares when a run it depends on did not complete; the
    task run then ends NotReady instead of running (it never reaches the caller)."""


# What a task call looks inside its arguments for; exact types, as checking them is paid by
# every task call.
_RESOLVED = frozenset({TaskFuture, State, allow_failure, quote, unmapped})
_CONTAINERS = frozenset({list, tuple, set, dict, FutureList})


def has_futures(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Return whether any argument is (or directly holds) a future, a State or a wrapper."""
    for value in (*args, *kwargs.values()):
        kind = type(value)
        if kind in _RESOLVED:
            return True
        if kind in _CONTAINERS:
            items = value.values() if kind is dict else value
            if any(type(item) in _RESOLVED for item in items):
                return True
    return False


def resolve_futures(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return the arguments with every future and State replaced by its run's value, and
    wrappers taken off (see the module's docstring).

    Raises:
        UpstreamNotReady: one of those runs did not complete (and is not allowed to fail).
    """
    return (
        tuple(_resolve(a, False, True) for a in args),
        {k: _resolve(v, False, True) for k, v in kwargs.items()},
    )


def _resolve(value: Any, allowed: bool, top: bool) -> Any:
    kind = type(value)
    if kind is TaskFuture:
        value.wait()
        return _value(value.state, allowed, value)
    if kind is State:
        return _value(value, allowed, None)
    if kind is quote:
        return value.value
    if kind is allow_failure:
        return _resolve(value.value, True, top)
    if kind is unmapped:
        return _resolve(value.value, allowed, top)
    if top and kind in _CONTAINERS:
        if kind is dict:
            if any(type(v) in _RESOLVED for v in value.values()):
                return {k: _resolve(v, allowed, False) for k, v in value.items()}
        elif any(type(v) in _RESOLVED for v in value):
            rebuilt = (_resolve(v, allowed, False) for v in value)
            return list(rebuilt) if kind is FutureList else kind(rebuilt)
    return value


def _value(state: State, allowed: bool, future: TaskFuture[Any] | None) -> Any:
    """The value a downstream task receives for an upstream run that ended in ``state``."""
    if state.type is StateType.COMPLETED:
        return _data(state)
    if allowed:
        return result_of(state, raise_on_failure=False)
    who = f"upstream task run {future.task_run_id}" if future is not None else "an upstream run"
    raise UpstreamNotReady(f"{who} did not complete: it ended {state!r}")


def check_upstream(wait_for: Any, allowed: bool = False) -> None:
    """Wait for the runs in ``wait_for``: futures or States, or lists of them.

    Raises:
        UpstreamNotReady: one of them did not complete (and is not wrapped in allow_failure).
    """
    kind = type(wait_for)
    if kind is allow_failure or kind is quote or kind is unmapped:
        check_upstream(wait_for.value, allowed or kind is allow_failure)
    elif kind in _CONTAINERS:
        for item in wait_for.values() if kind is dict else wait_for:
            check_upstream(item, allowed)
    elif kind is TaskFuture or kind is State:
        _resolve(wait_for, allowed, False)


# ---------------------------------------------------------------- how a run ends


def result_of(state: State, raise_on_failure: bool = True) -> Any:
    """``state.result()``, saying why for a run that did not run (NotReady)."""
    if not state.is_final():
        exc = UnfinishedRun(f"the task run did not run ({state.name}): {state.message}")
        if raise_on_failure:
            raise exc
        return exc
    if state.type is StateType.COMPLETED:
        return _data(state)
    return state.result(raise_on_failure)


def _data(state: State) -> Any:
    """The value of a COMPLETED state; None for one made without a value (``Completed()``)."""
    try:
        return state.result()
    except MissingResult:
        return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def failed_state(exc: BaseException) -> State | None:
    """The Failed state of a run that raised ``exc``, with the exception as its data.

    None for an interrupt (not an ``Exception``) or a run the server took back
    (FlowRunAborted): those are raised even to a caller who asked for the state.
    """
    if not isinstance(exc, Exception) or isinstance(exc, FlowRunAborted):
        return None
    return State(StateType.FAILED, message=_describe(exc), data=exc)


def returned_state(state: State, kind: str) -> State:
    """The final state of a ``kind`` ("task" or "flow") run whose function returned ``state``.

    A state that is not final fails the run (a run cannot end Pending or Running); a
    COMPLETED state made without a value holds None.
    """
    if not state.is_final():
        return State(
            StateType.FAILED,
            message=f"the {kind} returned a {state.name} state, and a run can only end in a "
            "final one: return Completed(...), Failed(...), Cancelled(...) or Crashed(...)",
        )
    if state.type is StateType.COMPLETED:
        return state.copy(data=_data(state))
    return state


def resolve_futures_to_states(value: Any) -> Any:
    """Return ``value`` with each future in it (directly, or directly inside a list, tuple,
    set or dict) replaced by its run's final State, waiting for the run if need be."""
    kind = type(value)
    if kind is TaskFuture:
        value.wait()
        return value.state
    if kind is dict:
        if any(type(v) is TaskFuture for v in value.values()):
            return {k: resolve_futures_to_states(v) for k, v in value.items()}
    elif kind in _CONTAINERS and any(type(v) is TaskFuture for v in value):
        states = (resolve_futures_to_states(v) if type(v) is TaskFuture else v for v in value)
        return list(states) if kind is FutureList else kind(states)
    return value


def flow_final_state(value: Any) -> State:
    """The final state of a flow run whose function returned ``value``.

    Futures in it become their runs' States. A State ends the run in it. A list, tuple or
    set of States ends it FAILED if one of them is not COMPLETED (with the exception of the
    first such run as its data), else COMPLETED. Anything else: COMPLETED with the value.
    """
    value = resolve_futures_to_states(value)
    kind = type(value)
    if kind is State:
        return returned_state(value, "flow")
    if kind in (list, tuple, set) and value and all(type(v) is State for v in value):
        bad = [state for state in value if state.type is not StateType.COMPLETED]
        if bad:
            return State(
                StateType.FAILED,
                message=f"{len(bad)}/{len(value)} states did not complete",
                data=result_of(bad[0], raise_on_failure=False),
            )
    return State(StateType.COMPLETED, data=value)
