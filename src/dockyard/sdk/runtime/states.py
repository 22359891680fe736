"""States as the SDK hands them out: what a flow or task run ended in, with its result.

A :class:`State` has a ``type`` (:class:`StateType`), a ``name`` (``"Completed"``,
``"AwaitingRetry"``), a ``message``, a ``timestamp`` and ``data``: the run's return value,
or the exception it failed with. ``state.result()`` gives the value back, or raises what the
run failed with.

A flow or task that *returns* a State ends in it: ``return Failed(message="no rows")`` fails
the run without raising. The constructors (:func:`Completed`, :func:`Failed`, ...) make one.

The server names run states in upper case (``"AWAITING_RETRY"``); :func:`from_server`
turns one into a State. ``AWAITING_RETRY`` is a ``SCHEDULED`` state named
``"AwaitingRetry"``, as a run waiting for its next attempt is scheduled again.

Plain Python only: no pydantic, nothing imported at ``import dockyard``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from dockyard.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    MissingResult,
    UnfinishedRun,
)

__all__ = [
    "AwaitingRetry",
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Late",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateType",
    "from_server",
    "to_server",
]


class StateType(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"
    CANCELLING = "CANCELLING"


_FINAL = frozenset({StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED})
_NO_RESULT = object()


class State:
    """A run's state: its type, its name, a message, when it began, and its data."""

    __slots__ = ("data", "message", "name", "timestamp", "type")

    def __init__(
        self,
        type: StateType | str,
        name: str | None = None,
        message: str | None = None,
        timestamp: datetime | None = None,
        data: Any = _NO_RESULT,
    ) -> None:
        self.type = StateType(type)
        self.name = name or self.type.value.title()
        self.message = message
        self.timestamp = timestamp or datetime.now(UTC)
        self.data = data

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in _FINAL

    def result(self, raise_on_failure: bool = True) -> Any:
        """Return the run's value; for a failed, crashed or cancelled run, raise what it
        failed with (or, with ``raise_on_failure=False``, return that exception).

        Raises:
            UnfinishedRun: the state is not final, so there is no result yet.
            MissingResult: a COMPLETED state that holds no value (one the server reported,
                whose value was not kept).
        """
        if self.type in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
            exc = self._exception()
            if raise_on_failure:
                raise exc
            return exc
        if not self.is_final():
            raise UnfinishedRun(
                f"the run is {self.name}, not finished: wait for it before asking its result"
            )
        if self.data is _NO_RESULT:
            raise MissingResult(
                "this state holds no result: the run's value was not kept where this process "
                "can read it (persist it with persist_result=True)"
            )
        return self.data

    def _exception(self) -> BaseException:
        if isinstance(self.data, BaseException):
            return self.data
        message = self.message or f"the run ended {self.name}"
        kind = {StateType.CRASHED: CrashedRun, StateType.CANCELLED: CancelledRun}
        return kind.get(self.type, FailedRun)(message)

    def copy(self, **changes: Any) -> State:
        """A copy of this state with ``changes`` (``name``, ``message``, ``data``...)."""
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return State(**fields)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.type, self.name, self.message, self.timestamp) == (
            other.type,
            other.name,
            other.message,
            other.timestamp,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = f"{self.name}({self.message!r})" if self.message else f"{self.name}()"
        if self.name.upper() != self.type.value:
            shown += f" of type {self.type.value}"
        return shown


def _maker(type_: StateType, default_name: str) -> Any:
    def make(
        message: str | None = None,
        data: Any = _NO_RESULT,
        name: str | None = None,
        timestamp: datetime | None = None,
        **_: Any,
    ) -> State:
        return State(type_, name or default_name, message, timestamp, data)

    make.__name__ = make.__qualname__ = default_name
    make.__doc__ = f"A {type_.value} state (named {default_name!r} unless ``name`` says)."
    return make


Completed = _maker(StateType.COMPLETED, "Completed")
Failed = _maker(StateType.FAILED, "Failed")
Crashed = _maker(StateType.CRASHED, "Crashed")
Cancelled = _maker(StateType.CANCELLED, "Cancelled")
Cancelling = _maker(StateType.CANCELLING, "Cancelling")
Running = _maker(StateType.RUNNING, "Running")
Retrying = _maker(StateType.RUNNING, "Retrying")
Pending = _maker(StateType.PENDING, "Pending")
Paused = _maker(StateType.PAUSED, "Paused")
AwaitingRetry = _maker(StateType.SCHEDULED, "AwaitingRetry")
Late = _maker(StateType.SCHEDULED, "Late")


def Scheduled(
    scheduled_time: datetime | None = None,
    message: str | None = None,
    name: str | None = None,
    **kwargs: Any,
) -> State:
    """A SCHEDULED state; ``scheduled_time`` is when the run is due (default: now)."""
    return State(StateType.SCHEDULED, name or "Scheduled", message, scheduled_time, **kwargs)


# the server's names of states that are not a StateType of their own
_SERVER_NAMES = {"AWAITING_RETRY": (StateType.SCHEDULED, "AwaitingRetry")}


def from_server(
    name: str, message: str | None = None, timestamp: datetime | None = None, data: Any = _NO_RESULT
) -> State:
    """The State of a run the server reports in state ``name`` (``"COMPLETED"``)."""
    type_, shown = _SERVER_NAMES.get(name, (StateType(name), name.title()))
    return State(type_, shown, message, timestamp, data)


def to_server(state: State) -> str:
    """The server's name for ``state`` (a SCHEDULED state named AwaitingRetry is
    ``AWAITING_RETRY``)."""
    if state.type is StateType.SCHEDULED and state.name == "AwaitingRetry":
        return "AWAITING_RETRY"
    return state.type.value
