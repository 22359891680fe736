"""``@task`` and :class:`Task`: a unit of work inside a flow, recorded as a task run.

Like ``@flow``, the decorator only records a definition. A task called inside a flow run is
recorded as one task run; called outside any flow it is a plain call (with its retries,
timeout and cache, but untracked).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from dockyard.sdk import options as opt

if TYPE_CHECKING:
    from dockyard.sdk.context import TaskRunContext
    from dockyard.sdk.futures import FutureList, TaskFuture

__all__ = ["CacheKeyFn", "Task", "task"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

CacheKeyFn = Callable[["TaskRunContext", dict[str, Any]], "str | None"]
"""``cache_key_fn(context, parameters)``: the key of a task run's result, or None to not cache."""


class Task(opt.Definition, Generic[P, R]):
    """A function whose calls inside a flow are task runs. Made by :func:`task`.

    Calling it runs the function at once and returns its value; :meth:`submit` runs it in
    the flow's thread pool and returns a :class:`~dockyard.sdk.futures.TaskFuture`;
    :meth:`map` submits one run per element of its iterable arguments.
    """

    kind = "task"

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: float | Iterable[float] = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] = (),
        cache_key_fn: CacheKeyFn | None = None,
        cache_expiration: timedelta | float | None = None,
    ) -> None:
        self._define(
            fn,
            name=name,
            description=description,
            version=version,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            timeout_seconds=timeout_seconds,
            log_prints=log_prints,
            tags=tags,
        )
        self.fn = fn
        if cache_key_fn is not None and not callable(cache_key_fn):
            raise ValueError(f"task cache_key_fn must be callable, not {cache_key_fn!r}")
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = _seconds(cache_expiration)
        self.task_key = f"{self.__module__}.{self.__qualname__}"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = (_call_task or _load_call_task())(self, args, kwargs)
        return result

    @overload
    def submit(
        self: Task[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> TaskFuture[T]: ...

    @overload
    def submit(self: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]: ...

    def submit(self, *args: Any, **kwargs: Any) -> TaskFuture[Any]:
        """Run the task in the flow's thread pool; return a future of its result.

        Arguments that are futures are waited for and replaced by their results. A flow
        waits for the tasks it submitted before it finishes.
        """
        from dockyard.sdk.submit import submit_task

        return submit_task(self, args, kwargs)

    @overload
    def map(
        self: Task[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
    ) -> FutureList[T]: ...

    @overload
    def map(self: Task[..., T], *args: Any, **kwargs: Any) -> FutureList[T]: ...

    def map(self, *args: Any, **kwargs: Any) -> FutureList[Any]:
        """Submit one run per element of the iterable arguments; return their futures.

        Every argument that is iterable (but not a string, bytes or a mapping) is mapped
        over, element by element; they must all have the same length. Other arguments, and
        arguments wrapped in :class:`~dockyard.sdk.futures.unmapped`, are passed whole to
        every run.
        """
        from dockyard.sdk.submit import map_task

        return map_task(self, args, kwargs)

    def with_options(self, **changes: Any) -> Task[P, R]:
        """Return a copy of this task with some options changed (same keywords as ``@task``)."""
        return Task(self.fn, **{**self._options(), **changes})

    def _options(self) -> dict[str, Any]:
        options = super()._options()
        return {
            **options,
            "cache_key_fn": self.cache_key_fn,
            "cache_expiration": self.cache_expiration,
        }


_call_task: Callable[[Task[..., Any], tuple[Any, ...], dict[str, Any]], Any] | None = None


def _load_call_task() -> Callable[[Task[..., Any], tuple[Any, ...], dict[str, Any]], Any]:
    """Import the task-run machinery at the first task call (it is not needed at import)."""
    global _call_task
    from dockyard.sdk.task_runs import call_task

    _call_task = call_task
    return call_task


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
        raise ValueError(f"task cache_expiration must be a positive duration, not {value!r}")
    return float(seconds)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float | Iterable[float] = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] = (),
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: timedelta | float | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: float | Iterable[float] = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] = (),
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: timedelta | float | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a task: ``@task`` or ``@task(retries=2, ...)``.

    Args:
        name: the task's name (default: the function's, with ``_`` turned into ``-``).
        description: shown with the task (default: the docstring).
        version: a version label.
        retries: how many times a failed run is tried again.
        retry_delay_seconds: seconds to wait before each retry, or a list with one delay
            per retry (the last one repeats).
        timeout_seconds: fail an attempt that takes longer (raises ``TimeoutError``).
        log_prints: send ``print`` output to the run's logs; None inherits from the flow.
        tags: labels recorded with each task run.
        cache_key_fn: ``fn(context, parameters) -> str | None``; runs with the same key
            reuse the stored result instead of running (see
            :func:`~dockyard.sdk.cache.task_input_hash`).
        cache_expiration: how long a cached result stays valid (seconds or a timedelta;
            None: forever).
    """
    options: dict[str, Any] = {
        "name": name,
        "description": description,
        "version": version,
        "retries": retries,
        "retry_delay_seconds": retry_delay_seconds,
        "timeout_seconds": timeout_seconds,
        "log_prints": log_prints,
        "tags": tags,
        "cache_key_fn": cache_key_fn,
        "cache_expiration": cache_expiration,
    }
    if fn is None:

        def decorate(fn: Callable[P, R]) -> Task[P, R]:
            return Task(fn, **options)

        return decorate
    return Task(fn, **options)
