"""Task runners: where the tasks a flow run submits (``Task.submit``, ``Task.map``) run.

::

    from dockyard import flow, task
    from dockyard.task_runners import ProcessPoolTaskRunner

    @task
    def count_words(text: str) -> int:
        return len(text.split())

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=4))
    def crunch(texts: list[str]) -> int:
        return sum(count_words.map(texts).result())

- :class:`ThreadPoolTaskRunner` (the default) runs them in threads of the flow's process.
- :class:`~dockyard.sdk.runtime.process_pool.ProcessPoolTaskRunner` runs each task's function in a
  worker process, for work that needs more than one CPU. The task run itself (its record,
  retries, timeout, cache, the futures it waits for) stays in the flow's process; task runs
  the function starts in the worker, and its logs, are sent back with its result and
  recorded with the flow run. The function, its arguments and its result must be
  picklable: define tasks at the top level of a module (a script's tasks need the
  ``if __name__ == "__main__":`` guard, as workers are started with ``spawn``). A flow
  called by such a function runs untracked.

Writing a runner: subclass :class:`TaskRunner` (see its docstring). One that runs the
functions elsewhere (a cluster) can subclass
:class:`~dockyard.sdk.runtime.process_pool.ProcessPoolTaskRunner` and override its
``make_executor()`` to return that cluster's :class:`concurrent.futures.Executor`, as
``dockyard_dask.DaskTaskRunner`` and ``dockyard_ray.RayTaskRunner`` do.
"""

from __future__ import annotations

import abc
import contextvars
import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, Self

from dockyard.sdk.runtime.context import FLOW_RUN, FlowRunContext, new_id
from dockyard.sdk.runtime.futures import FutureList, TaskFuture, result_of
from dockyard.sdk.runtime.states import State
from dockyard.utilities.annotations import allow_failure, quote, unmapped

if TYPE_CHECKING:
    from dockyard.sdk.tasks import Task

__all__ = [
    "TaskRunner",
    "ThreadPoolTaskRunner",
    "expand_map",
    "prepare_task_run",
]


class TaskRunner(abc.ABC):
    """Runs the tasks a flow run submits with ``Task.submit`` and ``Task.map``.

    A flow is given one as ``@flow(task_runner=...)``. Each flow run works with its own copy
    (:meth:`duplicate`), entered (``with``) at its first submitted task and left when the
    run ends, which waits for the task runs still going.

    A runner implements:

    - :meth:`duplicate`: a new runner with the same settings, not started;
    - ``__enter__``: start (make its pools, connect) and return the runner;
    - :meth:`shutdown`: stop, by default once the runs submitted have finished
      (``__exit__`` calls it);
    - :meth:`submit`: start one task run and return its
      :class:`~dockyard.sdk.runtime.futures.TaskFuture`. :func:`prepare_task_run` gives the callable
      that runs it, in whichever thread of this process calls it.

    :meth:`map` submits one run per element, with :meth:`submit`. A runner that needs an
    extra of the ``dockyard`` distribution names it in :attr:`extras`.
    """

    #: The extras of the ``dockyard`` distribution the runner needs (``dockyard[dask]``):
    #: the Dockerfile generated for a deployment of a flow using it installs them.
    extras: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def duplicate(self) -> Self:
        """Return a new runner with the same settings, not started."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    @abc.abstractmethod
    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop the runner.

        Args:
            wait: wait for the runs submitted to finish (False: return at once).
            cancel: drop the runs that have not started yet.
        """

    @abc.abstractmethod
    def submit(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        wait_for: Any = None,
    ) -> TaskFuture[Any]:
        """Start one run of ``task`` with these arguments; return its future.

        The run waits for the futures among its arguments and in ``wait_for`` first (see
        :mod:`dockyard.sdk.runtime.futures`).
        """

    def map(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        wait_for: Any = None,
    ) -> FutureList[Any]:
        """Submit one run of ``task`` per element of its iterable arguments (see
        :func:`expand_map`); return their futures in order."""
        futures: FutureList[Any] = FutureList()
        for call_args, call_kwargs in expand_map(task, args, kwargs):
            futures.append(self.submit(task, call_args, call_kwargs, wait_for=wait_for))
        return futures


def prepare_task_run(
    task: Task[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    wait_for: Any = None,
) -> tuple[Callable[[], State], int]:
    """Prepare one run of ``task`` for a runner.

    Returns:
        A callable that runs it to its end in the thread that calls it (with a copy of the
        caller's context: its flow run) and returns its final State; and the run's id (as
        an int, for :class:`~dockyard.sdk.runtime.futures.TaskFuture`).
    """
    run_id = new_id()
    context = contextvars.copy_context()
    call = functools.partial(
        context.run, _run_task, task, FLOW_RUN.get(), args, kwargs, run_id, wait_for
    )
    return call, run_id


def _run_task(
    task: Task[..., Any],
    flow_run: FlowRunContext | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    run_id: int,
    wait_for: Any,
) -> State:
    from dockyard.sdk.runtime.task_runs import run_task_async, run_task_sync

    if task.isasync:
        import asyncio

        coroutine = run_task_async(
            task, flow_run, args, kwargs, run_id, wait_for=wait_for, return_state=True
        )
        state: State = asyncio.run(coroutine)
        return state
    state = run_task_sync(
        task, flow_run, args, kwargs, run_id, wait_for=wait_for, return_state=True
    )
    return state


def _mapped(value: Any) -> bool:
    if isinstance(value, str | bytes | bytearray | Mapping | unmapped | TaskFuture | State):
        return False
    return hasattr(value, "__iter__")


def expand_map(
    task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Return the arguments of each run of ``task.map(*args, **kwargs)``.

    Every argument that is iterable (but not a string, bytes or a mapping) is mapped over,
    element by element; they must all have the same length. A future (or State) argument
    stands for its run's value: it is waited for first. Other arguments, and those
    wrapped in ``unmapped``, go whole to every run. An iterable wrapped in ``allow_failure``
    or ``quote`` is mapped over, each element wrapped the same way.

    Raises:
        ValueError: no argument to map over, or iterables of different lengths.
    """
    lists: dict[int | str, list[Any]] = {}
    wrappers: dict[int | str, type[allow_failure[Any] | quote[Any]]] = {}
    named: list[tuple[int | str, Any]] = [*enumerate(args), *kwargs.items()]
    for key, value in named:
        wrapper = type(value) if type(value) in (allow_failure, quote) else None
        inner = value.value if wrapper is not None else value
        if type(inner) is TaskFuture:  # what to map over may be the value of a run
            inner.wait()
            inner = inner.state
        if type(inner) is State:
            inner = result_of(inner, raise_on_failure=wrapper is not allow_failure)
        if _mapped(inner):
            lists[key] = list(inner)
            if wrapper is not None:
                wrappers[key] = wrapper
    if not lists:
        raise ValueError(
            f"task {task.name!r}: map needs at least one iterable argument to map over"
        )
    lengths = {len(v) for v in lists.values()}
    if len(lengths) > 1:
        found = ", ".join(f"{k!r}: {len(v)}" for k, v in lists.items())
        raise ValueError(
            f"task {task.name!r}: map needs iterables of one length, got lengths {found}"
        )

    def pick(key: int | str, value: Any, index: int) -> Any:
        if key in lists:
            item = lists[key][index]
            wrapper = wrappers.get(key)
            return item if wrapper is None else wrapper(item)
        return value.value if isinstance(value, unmapped) else value

    return [
        (
            tuple(pick(i, v, index) for i, v in enumerate(args)),
            {k: pick(k, v, index) for k, v in kwargs.items()},
        )
        for index in range(lengths.pop())
    ]


# ---------------------------------------------------------------- threads


class ThreadPoolTaskRunner(TaskRunner):
    """Runs submitted tasks in a pool of threads of the flow's process (the default).

    Args:
        max_workers: how many task runs go on at once at most (default:
            ``min(32, CPUs + 4)``); the others wait their turn.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(
                f"max_workers must be a positive whole number (or None), not {max_workers!r}"
            )
        self.max_workers = max_workers
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> Self:
        return type(self)(max_workers=self.max_workers)

    def __enter__(self) -> Self:
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(
                    self._thread_count(), thread_name_prefix="dockyard-task"
                )
        return self

    def _thread_count(self) -> int | None:
        return self.max_workers

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        with self._lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=wait, cancel_futures=cancel)

    def submit(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        wait_for: Any = None,
    ) -> TaskFuture[Any]:
        threads = self._threads
        if threads is None:
            raise RuntimeError(
                f"{self!r} is not started: use it in a `with` block (a flow run does that "
                "by itself)"
            )
        call, run_id = prepare_task_run(self._runnable(task), args, kwargs, wait_for=wait_for)
        return TaskFuture(threads.submit(call), run_id)

    def _runnable(self, task: Task[..., Any]) -> Task[..., Any]:
        """The task whose run a thread of the pool goes through."""
        return task

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_workers={self.max_workers!r})"
