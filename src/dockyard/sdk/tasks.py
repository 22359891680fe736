"""``@task`` and :class:`Task`: a unit of work inside a flow, recorded as a task run.

Like ``@flow``, the decorator only records a definition. A task called inside a flow run is
recorded as one task run; called outside any flow it is a plain call (with its retries,
timeout and cache, but untracked).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from dockyard.sdk import options as opt

if TYPE_CHECKING:
    from dockyard.sdk.runtime.cache_policies import CachePolicy, TaskResults
    from dockyard.sdk.runtime.context import TaskRunContext
    from dockyard.sdk.runtime.futures import FutureList, TaskFuture
    from dockyard.sdk.runtime.persistence import ResultStorage
    from dockyard.sdk.runtime.serializers import ResultSerializer
    from dockyard.sdk.runtime.states import State

__all__ = ["CacheKeyFn", "RetryConditionFn", "Task", "task"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

CacheKeyFn = Callable[["TaskRunContext", dict[str, Any]], "str | None"]
"""``cache_key_fn(context, parameters)``: the key of a task run's result, or None to not cache."""
RetryConditionFn = Callable[..., bool]
"""``retry_condition_fn(task, task_run, state) -> bool``: whether a failed run is retried."""


class Task(opt.Definition, Generic[P, R]):
    """A function whose calls inside a flow are task runs. Made by :func:`task`.

    Calling it runs the function at once and returns its value; :meth:`submit` hands it to
    the flow's task runner and returns a :class:`~dockyard.sdk.runtime.futures.TaskFuture`;
    :meth:`map` submits one run per element of its iterable arguments.
    """

    kind = "task"
    retry_condition_fn: RetryConditionFn | None

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        retries: int = 0,
        retry_delay_seconds: opt.RetryDelaySeconds = 0.0,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        tags: Iterable[str] = (),
        cache_key_fn: CacheKeyFn | None = None,
        cache_expiration: timedelta | float | None = None,
        cache_policy: CachePolicy | None = None,
        refresh_cache: bool | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStorage | None = None,
        result_serializer: ResultSerializer | None = None,
        task_run_name: opt.RunName | None = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: RetryConditionFn | None = None,
        on_completion: Iterable[opt.StateHook] | None = None,
        on_failure: Iterable[opt.StateHook] | None = None,
        on_running: Iterable[opt.StateHook] | None = None,
    ) -> None:
        self._given = opt.given(locals())  # first: the keywords as given, for with_options
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
        self.cache_policy = cache_policy
        self.refresh_cache = refresh_cache
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        # checked once here: a task with none of these options takes the plain path
        self._results: TaskResults | None = None
        results = (cache_key_fn, cache_policy, persist_result, result_storage, result_serializer)
        if any(option is not None for option in results):
            from dockyard.sdk.runtime.cache_policies import task_results

            self._results = task_results(
                f"task {self.name!r}",
                cache_policy=cache_policy,
                cache_key_fn=cache_key_fn,
                persist_result=persist_result,
                result_storage=result_storage,
                result_serializer=result_serializer,
            )
        self.task_key = f"{self.__module__}.{self.__qualname__}"
        self.task_run_name = opt.check_run_name(task_run_name, "task")
        self.retry_jitter_factor = opt.check_jitter(retry_jitter_factor, "task")
        self.retry_condition_fn = opt.check_retry_condition(retry_condition_fn, "task")
        self._define_hooks(
            on_completion=on_completion, on_failure=on_failure, on_running=on_running
        )

    # The call's own keywords (``return_state``, ``wait_for``) cannot sit between
    # ``P.args`` and ``P.kwargs`` for type checkers: a plain call is typed by the first
    # overload, a call with them by the others.
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    @overload
    def __call__(
        self: Task[..., Coroutine[Any, Any, T]],
        *args: Any,
        return_state: Literal[True],
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> Coroutine[Any, Any, State]: ...

    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[True],
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> State: ...

    @overload
    def __call__(
        self,
        *args: Any,
        return_state: Literal[False] = False,
        wait_for: Iterable[Any],
        **kwargs: Any,
    ) -> R: ...

    def __call__(  # type: ignore[misc]
        self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any
    ) -> Any:
        """Run the task as one task run and return its value (or raise its exception).

        Args:
            return_state: return the run's final :class:`~dockyard.sdk.runtime.states.State`
                instead; a failure is then not raised (``state.result()`` raises it).
            wait_for: futures (or States) of runs to wait for first; if one of them did not
                complete, the task does not run (see :mod:`dockyard.sdk.runtime.futures`).
        """
        if return_state or wait_for is not None:
            from dockyard.sdk.runtime.task_runs import call_task_with

            return call_task_with(self, args, kwargs, return_state=return_state, wait_for=wait_for)
        return (_call_task or _load_call_task())(self, args, kwargs)

    @overload
    def submit(
        self: Task[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> TaskFuture[T]: ...

    @overload
    def submit(self: Task[P, T], *args: P.args, **kwargs: P.kwargs) -> TaskFuture[T]: ...

    @overload
    def submit(
        self: Task[..., Coroutine[Any, Any, T]],
        *args: Any,
        wait_for: Iterable[Any],
        **kwargs: Any,
    ) -> TaskFuture[T]: ...

    @overload
    def submit(
        self: Task[..., T], *args: Any, wait_for: Iterable[Any], **kwargs: Any
    ) -> TaskFuture[T]: ...

    def submit(self, *args: Any, wait_for: Any = None, **kwargs: Any) -> TaskFuture[Any]:
        """Hand the task to the flow's task runner; return a future of its run.

        Arguments that are futures are waited for and replaced by their results; so are
        the runs in ``wait_for``, whose values are not passed. A flow waits for the tasks
        it submitted before it finishes.
        """
        from dockyard.sdk.runtime.submit import submit_task

        return submit_task(self, args, kwargs, wait_for)

    @overload
    def map(
        self: Task[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
    ) -> FutureList[T]: ...

    @overload
    def map(self: Task[..., T], *args: Any, **kwargs: Any) -> FutureList[T]: ...

    def map(self, *args: Any, wait_for: Any = None, **kwargs: Any) -> FutureList[Any]:
        """Submit one run per element of the iterable arguments; return their futures.

        Every argument that is iterable (but not a string, bytes or a mapping) is mapped
        over, element by element; they must all have the same length. Other arguments, and
        arguments wrapped in :class:`~dockyard.utilities.annotations.unmapped`, are passed
        whole to every run. Each run waits for the runs in ``wait_for`` first.
        """
        from dockyard.sdk.runtime.submit import map_task

        return map_task(self, args, kwargs, wait_for)

    def with_options(self, **changes: Any) -> Task[P, R]:
        """Return a copy of this task with some options changed (same keywords as ``@task``).

        Raises:
            TypeError: a keyword is not an option of ``@task``.
        """
        return Task(self.fn, **self._changed(changes))


_call_task: Callable[[Task[..., Any], tuple[Any, ...], dict[str, Any]], Any] | None = None


def _load_call_task() -> Callable[[Task[..., Any], tuple[Any, ...], dict[str, Any]], Any]:
    """Import the task-run machinery at the first task call (it is not needed at import)."""
    global _call_task
    from dockyard.sdk.runtime.task_runs import call_task

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
    retry_delay_seconds: opt.RetryDelaySeconds = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] = (),
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: timedelta | float | None = None,
    cache_policy: CachePolicy | None = None,
    refresh_cache: bool | None = None,
    persist_result: bool | None = None,
    result_storage: ResultStorage | None = None,
    result_serializer: ResultSerializer | None = None,
    task_run_name: opt.RunName | None = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: RetryConditionFn | None = None,
    on_completion: Iterable[opt.StateHook] | None = None,
    on_failure: Iterable[opt.StateHook] | None = None,
    on_running: Iterable[opt.StateHook] | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    retries: int = 0,
    retry_delay_seconds: opt.RetryDelaySeconds = 0.0,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    tags: Iterable[str] = (),
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: timedelta | float | None = None,
    cache_policy: CachePolicy | None = None,
    refresh_cache: bool | None = None,
    persist_result: bool | None = None,
    result_storage: ResultStorage | None = None,
    result_serializer: ResultSerializer | None = None,
    task_run_name: opt.RunName | None = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: RetryConditionFn | None = None,
    on_completion: Iterable[opt.StateHook] | None = None,
    on_failure: Iterable[opt.StateHook] | None = None,
    on_running: Iterable[opt.StateHook] | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a task: ``@task`` or ``@task(retries=2, ...)``.

    Args:
        name: the task's name (default: the function's name).
        description: shown with the task (default: the docstring).
        version: a version label.
        retries: how many times a failed run is tried again.
        retry_delay_seconds: seconds to wait before each retry, or a list with one delay
            per retry (the last one repeats), or a function of the number of retries that
            returns that list (:func:`~dockyard.sdk.options.exponential_backoff`).
        timeout_seconds: fail an attempt that takes longer (raises ``TimeoutError``).
        log_prints: send ``print`` output to the run's logs; None inherits from the flow.
        tags: labels recorded with each task run (with those of enclosing ``tags(...)``
            blocks).
        cache_key_fn: ``fn(context, parameters) -> str | None``; runs with the same key
            reuse the stored result instead of running (see
            :func:`~dockyard.sdk.runtime.cache.task_input_hash`).
        cache_expiration: how long a cached result stays valid (seconds or a timedelta;
            None: forever).
        cache_policy: how the cache key is computed (:mod:`dockyard.cache_policies`;
            default ``DEFAULT``: the inputs, the task's code and the flow run). Caching
            needs persisted results: a policy other than ``NO_CACHE`` turns them on.
        refresh_cache: run even when the cache has a result, and replace it.
        persist_result: write each run's result to the result storage (None: as the flow
            says, else the setting ``DOCKYARD_RESULTS_PERSIST_BY_DEFAULT``); False also
            turns caching off.
        result_storage: where results are written: a folder path, an fsspec URL (with
            ``fsspec`` installed) or a storage object (default: the flow's, else
            ``$DOCKYARD_HOME/storage``). Turns persistence on.
        result_serializer: ``"pickle"`` (default), ``"json"``, ``"compressed/pickle"``,
            ``"compressed/json"`` or an object with ``dumps``/``loads``. Turns
            persistence on.
        task_run_name: each run's name: a template over the parameters (``"fetch-{url}"``),
            or a function returning it (default: the task's name and a counter).
        retry_jitter_factor: move each retry delay at random by up to this factor of
            itself, either way, so that runs failing together do not retry together.
        retry_condition_fn: ``fn(task, task_run, state) -> bool``, asked after a failed
            attempt whether to retry (``state.result()`` raises the failure); default: retry.
        on_completion, on_failure: lists of ``hook(task, task_run, state)`` called when a
            run ends in that state (a failure after its last retry).
        on_running: hooks called at the start of each attempt.
    """
    options = opt.given(locals())  # first: every keyword above, as given
    if fn is None:

        def decorate(fn: Callable[P, R]) -> Task[P, R]:
            return Task(fn, **options)

        return decorate
    return Task(fn, **options)
