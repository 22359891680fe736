"""Futures of submitted task runs, and :class:`unmapped` for ``Task.map``."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

__all__ = ["FutureList", "TaskFuture", "resolve_futures", "unmapped"]

T = TypeVar("T")


class TaskFuture(Generic[T]):
    """The result to come of a submitted task run.

    ``future.result()`` waits for it (and raises the task's exception if it failed); inside
    ``async`` code, ``await future`` waits without blocking the event loop.

    Attributes:
        task_run_id: the id of the task run.
    """

    __slots__ = ("_future", "_id")

    def __init__(self, future: Future[T], task_run_id: int) -> None:
        self._future = future
        self._id = task_run_id

    @property
    def task_run_id(self) -> uuid.UUID:
        """The id of the task run."""
        return uuid.UUID(int=self._id)

    def result(self, timeout: float | None = None) -> T:
        """Wait for the task run and return its value, or raise what it raised.

        Raises:
            TimeoutError: it did not finish within ``timeout`` seconds.
        """
        return self._future.result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the task run and return what it raised (None if it completed)."""
        return self._future.exception(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the task run to finish; return whether it did within ``timeout``."""
        try:
            self._future.exception(timeout)
        except TimeoutError:
            return False
        return True

    def done(self) -> bool:
        """Return whether the task run has finished."""
        return self._future.done()

    def __await__(self) -> Generator[Any, None, T]:
        import asyncio

        return asyncio.wrap_future(self._future).__await__()

    def __repr__(self) -> str:
        status = "done" if self._future.done() else "pending"
        return f"TaskFuture(task_run_id={self.task_run_id}, {status})"


class FutureList(list[TaskFuture[T]]):
    """The futures returned by ``Task.map``, in the order of the mapped elements."""

    def result(self, timeout: float | None = None) -> list[T]:
        """Wait for every run and return their values in order (the first failure raises)."""
        return [future.result(timeout) for future in self]

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every run to finish, failed or not."""
        for future in self:
            future.wait(timeout)


class unmapped(Generic[T]):
    """Pass an iterable whole to every run of ``Task.map`` instead of mapping over it."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


def _resolve(value: Any) -> Any:
    return value.result() if isinstance(value, TaskFuture) else value


def resolve_futures(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Return the arguments with every future among them replaced by its result.

    Futures directly in the arguments, or directly inside a list, tuple or dict argument, are
    waited for.
    """
    return tuple(_deep(a) for a in args), {k: _deep(v) for k, v in kwargs.items()}


def _deep(value: Any) -> Any:
    if isinstance(value, TaskFuture):
        return value.result()
    if isinstance(value, list) and any(isinstance(v, TaskFuture) for v in value):
        return [_resolve(v) for v in value]
    if isinstance(value, tuple) and any(isinstance(v, TaskFuture) for v in value):
        return tuple(_resolve(v) for v in value)
    if isinstance(value, dict) and any(isinstance(v, TaskFuture) for v in value.values()):
        return {k: _resolve(v) for k, v in value.items()}
    return value


def has_futures(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Return whether any argument is (or directly holds) a future."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, TaskFuture):
            return True
        if isinstance(value, (list, tuple)) and any(isinstance(v, TaskFuture) for v in value):
            return True
        if isinstance(value, dict) and any(isinstance(v, TaskFuture) for v in value.values()):
            return True
    return False
