"""Timeouts of flow and task attempts.

An ``async def`` attempt is awaited with :func:`asyncio.wait_for`, which cancels it. A plain
function cannot be stopped from outside, so it runs in a helper thread (with a copy of the
caller's context): the caller gets ``TimeoutError`` when the time is up, and the helper
thread is sent a ``TimeoutError`` too, which stops it at its next Python instruction (a call
blocked in C, such as ``time.sleep``, ends first).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["await_with_timeout", "call_with_timeout", "timeout_error"]

T = TypeVar("T")


def timeout_error(label: str, seconds: float) -> TimeoutError:
    """Return the error of an attempt of ``label`` (e.g. "task 'x'") that ran out of time."""
    return TimeoutError(f"{label} timed out after {seconds:g} s")


class _Outcome:
    __slots__ = ("error", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None


def call_with_timeout(
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    seconds: float,
    label: str,
) -> T:
    """Return ``fn(*args, **kwargs)``, or raise TimeoutError if it takes over ``seconds``."""
    outcome = _Outcome()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome.value = context.run(fn, *args, **kwargs)
        except BaseException as exc:
            outcome.error = exc

    thread = threading.Thread(target=target, name=f"dockyard-timeout {label}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        _interrupt(thread)
        raise timeout_error(label, seconds)
    if outcome.error is not None:
        raise outcome.error
    result: T = outcome.value
    return result


def _interrupt(thread: threading.Thread) -> None:
    """Ask ``thread`` to raise TimeoutError at its next Python instruction."""
    import ctypes

    if thread.ident is None:
        return
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread.ident), ctypes.py_object(TimeoutError)
    )


async def await_with_timeout(awaitable: Awaitable[T], *, seconds: float, label: str) -> T:
    """Await ``awaitable``, cancelling it and raising TimeoutError after ``seconds``."""
    import asyncio

    scope = asyncio.timeout(seconds)
    try:
        async with scope:
            return await awaitable
    except TimeoutError:
        if scope.expired():
            raise timeout_error(label, seconds) from None
        raise
