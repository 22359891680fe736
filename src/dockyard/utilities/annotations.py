"""Wrappers that say how a task argument is treated: :class:`unmapped`,
:class:`allow_failure` and :class:`quote`.

::

    from dockyard.utilities.annotations import allow_failure, quote, unmapped

    add.map([1, 2, 3], unmapped([10, 20]))       # the list goes whole to each run
    report(allow_failure(load.submit()))         # runs even if load failed, with its exception
    store(quote(huge_dict))                      # passed as is, never searched for futures

A wrapper is taken off before the task's function is called: it receives the value inside.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BaseAnnotation", "allow_failure", "quote", "unmapped"]

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A value wrapped to change how a task call treats it; ``value`` is the value."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        """Return the wrapped value."""
        return self.value

    def rewrap(self, value: T) -> BaseAnnotation[T]:
        """Return ``value`` wrapped the same way."""
        return type(self)(value)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(self.value == other.value)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """Pass an iterable whole to every run of ``Task.map`` instead of mapping over it."""

    __slots__ = ()


class allow_failure(BaseAnnotation[T]):
    """Let a task run even though the upstream run behind this argument did not complete.

    Wrap a future (or a State), as an argument or in ``wait_for``. An upstream run that
    failed, crashed or was cancelled does not stop the task: an argument receives the
    exception the upstream run ended with (its value if it completed).
    """

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """Pass a value as is: futures and states inside it are not waited for or replaced.

    It also spares a large collection from being searched for futures at each call.
    """

    __slots__ = ()

    def unquote(self) -> T:
        """Return the wrapped value."""
        return self.value
