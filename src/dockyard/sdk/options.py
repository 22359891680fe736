"""Checks and helpers shared by ``@flow`` and ``@task``.

Most of this runs when a decorator is applied, at import time of the user's module, so it
does no I/O and imports nothing heavy. The few rules applied at each run (the delay before a
retry, a run's name) live here too, beside the options they read.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dockyard._names import NAME_RULE, name_problem

if TYPE_CHECKING:
    from dockyard.sdk.parameters import Signature

__all__ = [
    "Definition",
    "check_hooks",
    "check_jitter",
    "check_name",
    "check_retries",
    "check_retry_condition",
    "check_run_name",
    "check_tags",
    "check_timeout",
    "default_name",
    "exponential_backoff",
    "given",
    "is_async",
    "jittered",
    "render_run_name",
    "retry_delay",
    "retry_delays",
]

_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200

RetryDelays = float | tuple[float, ...]
RetryDelaySeconds = float | Iterable[float] | Callable[[int], Iterable[float]]
"""``retry_delay_seconds``: a number, a list (one per retry), or ``fn(retries) -> list``."""
StateHook = Callable[..., Any]
"""``hook(flow, flow_run, state)`` or ``hook(task, task_run, state)``; may be ``async``."""
RunName = str | Callable[..., str]
"""``flow_run_name`` / ``task_run_name``: a ``str.format`` template over the run's
parameters, or a function returning the name (taking ``parameters`` if it names it)."""

H = TypeVar("H", bound=Callable[..., Any])

# The options that hold hooks, and the attribute each list lives in.
HOOK_OPTIONS = {
    "on_completion": "on_completion_hooks",
    "on_failure": "on_failure_hooks",
    "on_cancellation": "on_cancellation_hooks",
    "on_crashed": "on_crashed_hooks",
    "on_running": "on_running_hooks",
}
# What a constructor's or decorator's locals() holds besides its options.
_NOT_OPTIONS = frozenset({"self", "fn", "__class__"})


def given(arguments: dict[str, Any]) -> dict[str, Any]:
    """Return the options of a constructor or decorator call from its ``locals()``.

    Taken as the call's first statement, ``locals()`` is exactly its arguments: every
    keyword the signature declares is recorded, so ``with_options`` accepts each one and
    the list of options is written once, in the signature.
    """
    return {name: value for name, value in arguments.items() if name not in _NOT_OPTIONS}


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


def default_name(fn: Callable[..., Any], kind: str = "flow") -> str:
    """Return the name a flow or task gets by default: its function's name; for a flow,
    with ``_`` turned into ``-`` (``get_repo_info`` → ``get-repo-info``)."""
    name = str(getattr(fn, "__name__", type(fn).__name__))
    return name.replace("_", "-") if kind == "flow" else name


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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def retry_delays(value: RetryDelaySeconds, kind: str, retries: int = 0) -> RetryDelays:
    """Return the checked ``retry_delay_seconds``: one number, or a tuple of numbers.

    A callable is called with the number of retries and gives the list
    (:func:`exponential_backoff` makes one).
    """
    if callable(value):
        value = value(retries)
    delays: RetryDelays
    if _number(value):
        delays = float(value)  # type: ignore[arg-type]
        numbers: tuple[float, ...] = (delays,)
    else:
        try:
            numbers = tuple(float(v) for v in value)  # type: ignore[union-attr]
            delays = numbers
        except (TypeError, ValueError):
            raise ValueError(
                f"{kind} retry_delay_seconds must be a number, a list of numbers or a "
                f"function of the number of retries that returns one, not {value!r}"
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


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Return a ``retry_delay_seconds`` that doubles the wait at each retry.

    ``@task(retries=3, retry_delay_seconds=exponential_backoff(10))`` waits 10, 20, then 40
    seconds: retry n waits ``backoff_factor * 2 ** (n - 1)``.

    Raises:
        ValueError: ``backoff_factor`` is not a number >= 0.
    """
    if not _number(backoff_factor) or backoff_factor < 0:
        raise ValueError(f"backoff_factor must be a number >= 0, not {backoff_factor!r}")
    factor = float(backoff_factor)

    def delays(retries: int) -> list[float]:
        return [factor * 2**n for n in range(retries)]

    delays.__qualname__ = f"exponential_backoff({backoff_factor!r})"
    return delays


def check_jitter(value: float | None, kind: str) -> float | None:
    """Return the checked ``retry_jitter_factor``: None (no jitter) or a number >= 0."""
    if value is None:
        return None
    if not _number(value) or value < 0:
        raise ValueError(f"{kind} retry_jitter_factor must be a number >= 0, not {value!r}")
    return float(value)


def jittered(delay: float, factor: float) -> float:
    """Return ``delay`` moved at random by up to ``factor`` times itself, either way (never
    below 0), so that runs failing together do not all retry at the same moment."""
    import random

    return random.uniform(max(0.0, delay * (1.0 - factor)), delay * (1.0 + factor))


def check_retry_condition(value: Callable[..., bool] | None, kind: str) -> Any:
    """Return ``retry_condition_fn`` if it is None or callable, else raise ValueError."""
    if value is not None and not callable(value):
        raise ValueError(f"{kind} retry_condition_fn must be callable, not {value!r}")
    return value


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


def check_hooks(hooks: Iterable[StateHook] | StateHook | None, kind: str, option: str) -> list[Any]:
    """Return ``hooks`` (one callable or a list of them) as a new list, or raise ValueError."""
    if hooks is None:
        return []
    found = [hooks] if callable(hooks) else list(hooks)
    for hook in found:
        if not callable(hook):
            raise ValueError(f"{kind} {option} hooks must be callables, not {hook!r}")
    return found


def check_run_name(value: RunName | None, kind: str) -> RunName | None:
    """Return the checked ``flow_run_name``/``task_run_name``: None, a template or a callable."""
    if value is None or callable(value):
        return value
    if not isinstance(value, str) or not value:
        raise ValueError(
            f"{kind}_run_name must be a template string or a function returning the name, "
            f"not {value!r}"
        )
    return value


def _takes_parameters(fn: Callable[..., Any]) -> bool:
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    named = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return "parameters" in named


def render_run_name(name: RunName, parameters: Mapping[str, Any], kind: str, owner: str) -> str:
    """Return a run's name from its ``flow_run_name``/``task_run_name`` option.

    A string is a ``str.format`` template over the run's parameters
    (``"{name}-on-{date:%A}"``); a function is called with no arguments (or with
    ``parameters=`` if it has a parameter of that name) inside the run's context.

    Raises:
        ValueError: the template names something that is not a parameter, or does not fit
            its value; the function did not return a non-empty string.
    """
    option = f"{kind}_run_name"
    if callable(name):
        rendered = name(parameters=dict(parameters)) if _takes_parameters(name) else name()
        if not isinstance(rendered, str) or not rendered:
            raise ValueError(
                f"{option} of {owner} must return a non-empty string, not {rendered!r}"
            )
        return rendered
    try:
        rendered = name.format(**parameters)
    except (KeyError, IndexError, AttributeError) as exc:
        known = ", ".join(parameters) or "none"
        raise ValueError(
            f"{option} {name!r} of {owner} names {exc}, which is not one of its parameters "
            f"({known})"
        ) from None
    except ValueError as exc:
        raise ValueError(f"{option} {name!r} of {owner} cannot be rendered: {exc}") from None
    if not rendered:
        raise ValueError(f"{option} {name!r} of {owner} renders an empty name")
    return rendered


class Definition:
    """What a flow and a task share: the function, the options both decorators take
    (checked when the decorator is applied), the state hooks, and a description and
    signature built at first need. :class:`~dockyard.sdk.flows.Flow` and
    :class:`~dockyard.sdk.tasks.Task` add their own options.
    """

    kind: ClassVar[str]  # "flow" or "task": the word error messages use
    # every keyword of the constructor, as given (see `given`); with_options starts from it
    _given: dict[str, Any]
    on_completion_hooks: list[StateHook]
    on_failure_hooks: list[StateHook]
    on_running_hooks: list[StateHook]

    def _define(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None,
        description: str | None,
        version: str | None,
        retries: int,
        retry_delay_seconds: RetryDelaySeconds,
        timeout_seconds: float | None,
        log_prints: bool | None,
        tags: Iterable[str],
    ) -> None:
        kind = self.kind
        if not callable(fn):
            raise TypeError(f"@{kind} decorates a function, not {fn!r}")
        self.isasync = is_async(fn)
        self.name = check_name(name if name is not None else default_name(fn, kind), kind)
        self._description = description
        self.version = version
        self.retries = check_retries(retries, kind)
        self.retry_delay_seconds = retry_delays(retry_delay_seconds, kind, self.retries)
        self.timeout_seconds = check_timeout(timeout_seconds, kind)
        self.log_prints = log_prints
        self.tags = check_tags(tags, kind)
        self._signature: Signature | None = None
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", None) or "__main__"
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    def _define_hooks(self, **hooks: Iterable[StateHook] | StateHook | None) -> None:
        """Record the state hooks given as ``on_completion=[...]`` and so on."""
        for option, value in hooks.items():
            setattr(self, HOOK_OPTIONS[option], check_hooks(value, self.kind, option))

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

    # ------------------------------------------------------------ state hooks

    def on_completion(self, fn: H) -> H:
        """Decorator: also call ``fn(self, run, state)`` when a run ends COMPLETED."""
        self.on_completion_hooks.append(check_hooks(fn, self.kind, "on_completion")[0])
        return fn

    def on_failure(self, fn: H) -> H:
        """Decorator: also call ``fn(self, run, state)`` when a run ends FAILED (after its
        last retry)."""
        self.on_failure_hooks.append(check_hooks(fn, self.kind, "on_failure")[0])
        return fn

    def on_running(self, fn: H) -> H:
        """Decorator: also call ``fn(self, run, state)`` when a run starts each attempt."""
        self.on_running_hooks.append(check_hooks(fn, self.kind, "on_running")[0])
        return fn

    # ------------------------------------------------------------ copies

    def _options(self) -> dict[str, Any]:
        """The constructor's keywords as given, with the hooks added since by decorator."""
        options = dict(self._given)
        for option, attribute in HOOK_OPTIONS.items():
            if option in options:
                options[option] = list(getattr(self, attribute))
        return options

    def _changed(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The keywords of a copy with ``changes`` (``with_options``).

        Raises:
            TypeError: a change names no option of this kind of definition.
        """
        unknown = sorted(set(changes) - set(self._given))
        if unknown:
            raise TypeError(
                f"with_options() got unknown {self.kind} option(s) {', '.join(unknown)}; "
                f"a {self.kind} takes {', '.join(sorted(self._given))}"
            )
        return {**self._options(), **changes}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, fn={self.__qualname__})"
