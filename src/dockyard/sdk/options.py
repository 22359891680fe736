"""Checks and helpers shared by ``@flow`` and ``@task``.

Everything here runs when a decorator is applied, at import time of the user's module, so it
does no I/O and imports nothing heavy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from dockyard._names import NAME_RULE, name_problem

if TYPE_CHECKING:
    from dockyard.sdk.parameters import Signature

__all__ = [
    "Definition",
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
    if not isinstance(name, str):
        raise ValueError(f"{kind} name {name!r} is not valid: a name is text ({NAME_RULE})")
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"{kind} name {name!r} {problem}")
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


class Definition:
    """What a flow and a task share: the function, the options both decorators take
    (checked when the decorator is applied), and a description and signature built at
    first need. :class:`~dockyard.sdk.flows.Flow` and :class:`~dockyard.sdk.tasks.Task`
    add their own options.
    """

    kind: ClassVar[str]  # "flow" or "task": the word error messages use

    def _define(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        description: str | None,
        version: str | None,
        retries: int,
        retry_delay_seconds: float | Iterable[float],
        timeout_seconds: float | None,
        log_prints: bool | None,
        tags: Iterable[str],
    ) -> None:
        kind = self.kind
        if not callable(fn):
            raise TypeError(f"@{kind} decorates a function, not {fn!r}")
        self.isasync = is_async(fn)
        self.name = check_name(name if name is not None else default_name(fn), kind)
        self._description = description
        self.version = version
        self.retries = check_retries(retries, kind)
        self.retry_delay_seconds = retry_delays(retry_delay_seconds, kind)
        self.timeout_seconds = check_timeout(timeout_seconds, kind)
        self.log_prints = log_prints
        self.tags = check_tags(tags, kind)
        self._signature: Signature | None = None
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", None) or "__main__"
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    @property
    def description(self) -> str | None:
        """The description given to the decorator, else the function's docstring."""
        if self._description is not None:
            return self._description
        from dockyard.sdk.docstrings import clean_docstring

        return clean_docstring(self.__wrapped__)

    @property
    def signature(self) -> Signature:
        """The function's parameters: binding, validation and JSON schema (built once)."""
        if self._signature is None:
            from dockyard.sdk.parameters import Signature

            self._signature = Signature(self.__wrapped__, owner=f"{self.kind} {self.name!r}")
        return self._signature

    def _options(self) -> dict[str, Any]:
        """The decorator's keywords, as given (``with_options`` starts from these)."""
        return {
            "name": self.name,
            "description": self._description,
            "version": self.version,
            "retries": self.retries,
            "retry_delay_seconds": self.retry_delay_seconds,
            "timeout_seconds": self.timeout_seconds,
            "log_prints": self.log_prints,
            "tags": self.tags,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, fn={self.__qualname__})"
