"""``ProcessPoolTaskRunner``: the functions of submitted tasks run in worker processes.

The task run itself (its record, retries, timeout, cache, the futures it waits for) stays
in the flow's process, in a thread of the runner, as with
:class:`~dockyard.sdk.runtime.task_runners.ThreadPoolTaskRunner`: only the call of the task's
function is sent to a worker (:func:`run_body`). The worker runs it inside a stand-in of
the flow run that collects the task runs it makes and the lines it logs; they travel back
with what the function returned or raised, and the flow's tracker records them.

A worker finds the function by its module and qualified name (or the module's file), so
tasks are defined at the top level of a module; their arguments and results must be
picklable. A runner whose executor pickles with cloudpickle (:attr:`pickles_by_value`)
sends the task itself instead when a worker could not find it so: one defined in the
script being run (``__main__``) or inside a function.
"""

from __future__ import annotations

import copy
import importlib
import itertools
import os
import pickle
import sys
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self

from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN, FlowRunContext, TaskRunContext
from dockyard.sdk.runtime.task_runners import ThreadPoolTaskRunner
from dockyard.sdk.runtime.tracking import LocalTracker

if TYPE_CHECKING:
    from dockyard.sdk.tasks import Task
    from dockyard.settings import Settings

__all__ = ["ProcessPoolTaskRunner", "call_name", "calls_in_flight", "run_body"]


class ProcessPoolTaskRunner(ThreadPoolTaskRunner):
    """Runs the function of each submitted task in a worker process (see the module's
    docstring for what stays in the flow's process, and what must be picklable).

    Args:
        max_workers: how many worker processes, and task runs at once (default: one per
            CPU).
    """

    # Whether the executor of make_executor() pickles with cloudpickle, which can send a
    # function's code: then a task a worker cannot import by name is sent by value.
    pickles_by_value: ClassVar[bool] = False

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self._executor: Executor | None = None
        self._stand_ins: dict[int, tuple[Task[..., Any], Task[..., Any]]] = {}

    def make_executor(self) -> Executor:
        """Return the executor the functions run in: ``max_workers`` processes started
        with ``spawn``. Override it to run them elsewhere: any
        :class:`concurrent.futures.Executor` that pickles the calls it is given will do."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            self.max_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
        )

    def __enter__(self) -> Self:
        with self._lock:
            if self._executor is None:
                self._executor = self.make_executor()
        return super().__enter__()

    def _thread_count(self) -> int | None:
        # a thread per task run in progress: it waits for the run's inputs, then its worker
        return self.max_workers or os.cpu_count() or 1

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        super().shutdown(wait=wait, cancel=cancel)
        with self._lock:
            executor, self._executor = self._executor, None
            self._stand_ins.clear()
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=cancel)

    def _runnable(self, task: Task[..., Any]) -> Task[..., Any]:
        """A copy of ``task`` whose function is sent to the executor."""
        executor = self._executor
        assert executor is not None, "the runner is entered before its first submit"
        found = self._stand_ins.get(id(task))
        if found is None or found[0] is not task:
            stand_in = copy.copy(task)
            ref = _reference(task, by_value=self.pickles_by_value)
            stand_in.fn = _Body(executor, ref, task.isasync)
            found = self._stand_ins[id(task)] = (task, stand_in)
        return found[1]


class _Ref(NamedTuple):
    """Where a worker process finds a task's function: its module and qualified name, and
    the module's file (for a module loaded from a path, such as a deployment's flow file)."""

    module: str
    qualname: str
    path: str | None
    # the task's class, sent along (pickled by name) so that a worker process can make a
    # task of a bare function without this module importing the definitions' layer
    kind: type
    # the task, for an executor that pickles it by value (else None)
    task: Any = None


def _locate(ref: _Ref) -> Any:
    if ref.task is not None:
        return ref.task
    try:
        found: Any = importlib.import_module(ref.module)
    except ImportError:
        if ref.path is None:
            raise
        found = _load_file(ref.module, ref.path)
    for part in ref.qualname.split("."):
        found = getattr(found, part)
    return found


def _load_file(name: str, path: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {name!r} from {path!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _reference(task: Task[..., Any], *, by_value: bool = False) -> _Ref:
    """Where a worker process finds ``task``'s function; with ``by_value``, the task itself
    when a worker could not import it by name (the script's ``__main__`` is another
    program there).

    Raises:
        ValueError: the function cannot be found there (defined inside a function, say).
    """
    fn = task.fn
    module = getattr(fn, "__module__", None) or "__main__"
    qualname = getattr(fn, "__qualname__", "")
    ref = _Ref(module, qualname, getattr(sys.modules.get(module), "__file__", None), type(task))
    if by_value and module == "__main__":
        return ref._replace(task=_bare(task))
    try:
        found = _locate(ref)
    except Exception:
        found = None
    if found is not fn and getattr(found, "fn", None) is not fn:
        if by_value:
            return ref._replace(task=_bare(task))
        raise ValueError(
            f"task {task.name!r} cannot run in a worker process: a worker imports its "
            f"function as {module}.{qualname}, which is not it; define the task at the top "
            "level of a module, or run it with ThreadPoolTaskRunner"
        )
    return ref


def _bare(task: Task[..., Any]) -> Task[..., Any]:
    """``task``'s function and name alone, to send by value: its other options (hooks,
    cache, retries) are used in the flow's process only."""
    return type(task)(task.fn, name=task.name)


class _FlowRunRef(NamedTuple):
    id: str
    name: str
    flow_name: str
    settings: Settings
    tracked: bool
    flow_kind: type  # the flow's class, as _Ref.kind


# Task runs a cluster's runner keeps in flight, per worker thread or CPU of the cluster when
# the run starts, and at least: enough that workers never wait for the next call to arrive.
IN_FLIGHT_PER_WORKER = 4
MIN_IN_FLIGHT = 32


def calls_in_flight(workers: int) -> int:
    """How many task runs a runner on a cluster of ``workers`` threads (or CPUs) keeps going."""
    return max(MIN_IN_FLIGHT, IN_FLIGHT_PER_WORKER * workers)


def call_name(fn: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """The name of a call an executor is given: its task run's (the :class:`_Job` it carries),
    else the function's; what a cluster's dashboard shows."""
    name = str(getattr(args[0], "task_run_name", "") if args else "")
    return name or getattr(fn, "__name__", "call")


class _Job(NamedTuple):
    """One call of a task's function, as sent to a worker process."""

    ref: _Ref
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    task_run_id: int
    task_run_name: str
    log_prints: bool
    run_count: int
    tags: tuple[str, ...]
    flow_run: _FlowRunRef | None


# A job's outcome: whether the function returned (else it raised), what it returned or
# raised, and the task runs and log lines it made.
_Outcome = tuple[bool, Any, list[Any], list[Any]]


class _Body:
    """Stands for a task's function in its task run: calls it in the runner's executor,
    and queues what the call sends back with the flow run's tracker."""

    def __init__(self, executor: Executor, ref: _Ref, isasync: bool) -> None:
        self.executor = executor
        self.ref = ref
        self.isasync = isasync

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job = self._job(args, kwargs)
        if self.isasync:
            return self._call_async(job)
        return self._finish(self.executor.submit(run_body, job).result())

    async def _call_async(self, job: _Job) -> Any:
        import asyncio

        return self._finish(await asyncio.wrap_future(self.executor.submit(run_body, job)))

    def _job(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Job:
        context = TASK_RUN.get()
        assert context is not None, "called inside its task run"
        flow_run = context.flow_run
        ref = None
        if flow_run is not None:
            handle = flow_run.handle
            ref = _FlowRunRef(
                handle.id_text,
                handle.name,
                flow_run.flow.name,
                flow_run.settings,
                flow_run.tracked,
                type(flow_run.flow),
            )
        return _Job(
            self.ref,
            args,
            kwargs,
            context.id,
            context.task_run_name,
            context.log_prints,
            context.run_count,
            tuple(context.tags),
            ref,
        )

    @staticmethod
    def _finish(outcome: _Outcome) -> Any:
        returned, value, task_runs, log_lines = outcome
        context = TASK_RUN.get()
        flow_run = context.flow_run if context is not None else None
        if flow_run is not None:
            # only those of this flow run: a flow called in the worker ran untracked there
            own = flow_run.handle.id_text
            for row in task_runs:
                if row[1] == own:
                    flow_run.tracker.add_task_run(row)
            for line in log_lines:
                if line[0] == own:
                    flow_run.tracker.add_log(line)
        if returned:
            return value
        raise value


# ---------------------------------------------------------------- in a worker process


def _start_worker() -> None:
    from dockyard.sdk.runtime import logs

    logs.install()


def run_body(job: _Job) -> _Outcome:
    """Call a task's function in a worker process, as its task run (see
    :class:`ProcessPoolTaskRunner`): its logs and the task runs it makes are collected and
    sent back with what it returned or raised."""
    import asyncio
    import inspect

    from dockyard.sdk.runtime import logs

    logs.install()  # once per process: a cluster's workers are not started by the runner
    fn, task = _function(job.ref)
    tracker = _Collector(job.flow_run.tracked if job.flow_run is not None else False)
    flow_run = _WorkerFlowRun(job.flow_run, job.task_run_name, tracker) if job.flow_run else None
    context = TaskRunContext(
        task=task,
        id=job.task_run_id,
        task_run_name=job.task_run_name,
        flow_run=flow_run,
        log_prints=job.log_prints,
        args=job.args,
        kwargs=job.kwargs,
    )
    context.run_count = job.run_count
    context.tags = job.tags
    if job.log_prints:
        logs.capture_prints()
    flow_token, task_token = FLOW_RUN.set(flow_run), TASK_RUN.set(context)
    try:
        try:
            value = fn(*job.args, **job.kwargs)
            if inspect.iscoroutine(value):
                value = asyncio.run(value)
            outcome: _Outcome = (True, value, tracker.task_runs, tracker.logs)
        except Exception as exc:
            outcome = (False, _portable(exc), tracker.task_runs, tracker.logs)
        finally:
            if flow_run is not None:
                flow_run.wait_for_tasks()
    finally:
        TASK_RUN.reset(task_token)
        FLOW_RUN.reset(flow_token)
    return outcome


def _function(ref: _Ref) -> tuple[Callable[..., Any], Task[..., Any]]:
    found: Any = _locate(ref)
    kind: Any = ref.kind
    if isinstance(found, kind):
        return found.fn, found
    return found, kind(found)


def _portable(exc: Exception) -> Exception:
    """``exc``, with the worker's traceback as a note, if it can be sent back; else a
    RuntimeError that says what it was."""
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    exc.add_note(f"in worker process {os.getpid()}:\n{frames}")
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc} (raised in a worker process)")
    return exc


class _Collector(LocalTracker):
    """Keeps the task runs and log lines of a call in a worker process, to send them back."""

    def __init__(self, tracked: bool) -> None:
        super().__init__()
        self.tracked = tracked
        self.task_runs: list[Any] = []
        self.logs: list[Any] = []

    def add_task_run(self, row: Any) -> None:
        self.task_runs.append(row)

    def add_log(self, row: Any) -> None:
        self.logs.append(row)


def _stand_in_flow() -> None:
    """The function of the flow a worker process's task runs belong to (never called)."""


class _WorkerFlowRun(FlowRunContext):
    """The flow run as a worker process sees it. The task runs a call makes are named
    after the run it is part of: ``<run>.<task>-<n>``."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self, ref: _FlowRunRef, prefix: str, tracker: _Collector) -> None:
        from dockyard.sdk.runtime.tracking import RunHandle

        super().__init__(
            flow=ref.flow_kind(_stand_in_flow, name=ref.flow_name),
            handle=RunHandle(uuid.UUID(ref.id), ref.name),
            parameters={},
            parent=None,
            tracker=tracker,
            settings=ref.settings,
            log_prints=False,
        )
        self._prefix = prefix
        self._counter = itertools.count()

    def next_task_run_name(self, task: Task[..., Any]) -> str:
        return f"{self._prefix}.{task.name}-{next(self._counter)}"
