"""Checks and helpers shared by ``@flow`` and ``@task``.

Everything here runs when a decorator is applied, at import time of the user's module, so it
does no I/O and imports nothing heavy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "check_name",
    "check_retries",
    "check_tags",
    "check_timeout",
    "default_name",
    "is_async",
    "retry_delay",
    "retry_delays",
]

_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200
MAX_NAME = 200

RetryDelays = float | tuple[float, ...]


def _code_flags(fn: Callable[..., Any]) -> int:
    while isinstance(fn, functools.partial):
        fn = fn.func
    code = getattr(fn, "__code__", None)
    return int(code.co_flags) if code is not None else 0


def is_async(fn: Callable[..., Any]) -> bool:
    """Return whether calling ``fn`` makes a coroutine (it is an ``async def``).

    Raises:
        TypeError: ``fn`` is an async generator, which cannot be a flow or a task.
    """
    flags = _code_flags(fn)
    if flags & _CO_ASYNC_GENERATOR:
        raise TypeError(
            f"{getattr(fn, '__qualname__', fn)!s} is an async generator; a flow or task must "
            "be a plain function or an `async def` coroutine function"
        )
    return bool(flags & _CO_COROUTINE)


def default_name(fn: Callable[..., Any]) -> str:
    """Return the name a flow or task gets by default: its function's, ``_`` turned to ``-``."""
    return str(getattr(fn, "__name__", type(fn).__name__)).replace("_", "-")


def check_name(name: str, kind: str) -> str:
    """Return ``name`` if it can name a ``kind`` ("flow" or "task"), else raise ValueError."""
    if not isinstance(name, str) or not name.strip() or "/" in name or len(name) > MAX_NAME:
        raise ValueError(
            f"{kind} name {name!r} is not valid: use 1 to {MAX_NAME} characters without '/'"
        )
    return name


def check_retries(retries: int, kind: str) -> int:
    """Return ``retries`` if it is a count of retries, else raise ValueError."""
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"{kind} retries must be a whole number >= 0, not {retries!r}")
    return retries


def retry_delays(value: float | Iterable[float], kind: str) -> RetryDelays:
    """Return the checked ``retry_delay_seconds``: one number, or a tuple of numbers."""
    delays: RetryDelays
    if isinstance(value, int | float) and not isinstance(value, bool):
        delays = float(value)
        numbers: tuple[float, ...] = (delays,)
    else:
        try:
            numbers = tuple(float(v) for v in value)  # type: ignore[union-attr]
            delays = numbers
        except (TypeError, ValueError):
            raise ValueError(
                f"{kind} retry_delay_seconds must be a number or a list of numbers, not {value!r}"
            ) from None
    if any(n < 0 for n in numbers):
        raise ValueError(f"{kind} retry_delay_seconds must not be negative, not {value!r}")
    return delays


def retry_delay(delays: RetryDelays, retry: int) -> float:
    """Return the seconds to wait before retry number ``retry`` (1 for the first retry).

    With a list, retry n waits the n-th delay; retries past its end wait the last one.
    """
    if isinstance(delays, tuple):
        return delays[min(retry, len(delays)) - 1] if delays else 0.0
    return delays


def check_timeout(value: float | None, kind: str) -> float | None:
    """Return the checked ``timeout_seconds``: None (no timeout) or a positive number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{kind} timeout_seconds must be a positive number, not {value!r}")
    return float(value)


def check_tags(tags: Iterable[str], kind: str) -> tuple[str, ...]:
    """Return ``tags`` as a tuple of strings, or raise ValueError."""
    if isinstance(tags, str):
        raise ValueError(f"{kind} tags must be a list of strings, not the string {tags!r}")
    result = tuple(tags)
    if not all(isinstance(t, str) for t in result):
        raise ValueError(f"{kind} tags must be strings, not {result!r}")
    return result
