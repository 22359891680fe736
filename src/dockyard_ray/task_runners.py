"""``RayTaskRunner``: the functions of submitted tasks run on a Ray cluster.

It is a :class:`~dockyard.task_runners.ProcessPoolTaskRunner` whose executor sends calls to
Ray as remote functions: each task run (its record, retries, timeout, cache, result
persistence, the futures it waits for) stays in the flow's process, and only the call of
the task's function runs on a Ray worker. The task runs and log lines it makes there come
back with its result and are recorded with the flow run, in the tracker's batches.

Ray's connection is one per process: runners share it. A runner that finds none starts it
(``ray.init``) and the last runner of the process to stop ends it; one made by the caller
(``ray.init()`` before the flow) is used and left open.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from concurrent.futures import wait as _wait_for
from typing import Any, Self

from dockyard.exceptions import DockyardError
from dockyard.sdk.runtime.process_pool import call_name, calls_in_flight
from dockyard.task_runners import ProcessPoolTaskRunner
from dockyard_ray.context import current_remote_options

__all__ = ["RayTaskRunner"]


class RayTaskRunner(ProcessPoolTaskRunner):
    """Runs the function of each submitted task on Ray.

    Args:
        address: the Ray cluster to connect to (``"ray://head:10001"``, ``"auto"``); None:
            ``RAY_ADDRESS`` if set, else one ``ray start`` started on this machine, else a
            local Ray instance started for the flow run.
        init_kwargs: more arguments of ``ray.init`` (``{"runtime_env": {...}}``,
            ``{"num_cpus": 4}``).

    Ray's options for some tasks (CPUs, GPUs, memory): :func:`~dockyard_ray.remote_options`.
    """

    pickles_by_value = True
    extras = ("ray",)

    def __init__(
        self, address: str | None = None, init_kwargs: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self._connected = False

    def duplicate(self) -> Self:
        return type(self)(address=self.address, init_kwargs=self.init_kwargs)

    def make_executor(self) -> Executor:
        """Connect to Ray (see the module's docstring); return an executor of calls on it."""
        _session.open(self.address, self.init_kwargs)
        self._connected = True
        return _RayExecutor()

    def _thread_count(self) -> int:
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 0))
        return calls_in_flight(cpus)

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop the runner, then leave Ray (ended if this runner's process started it and no
        other runner uses it)."""
        super().shutdown(wait=wait, cancel=cancel)
        with self._lock:
            connected, self._connected = self._connected, False
        if connected:
            _session.close()

    def __repr__(self) -> str:
        return f"RayTaskRunner(address={self.address!r}, init_kwargs={self.init_kwargs!r})"


class _Session:
    """This process's connection to Ray, counted: the runners using it, and whether one of
    them made it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._ours = False

    def open(self, address: str | None, init_kwargs: dict[str, Any]) -> None:
        import ray

        with self._lock:
            if not ray.is_initialized():
                try:
                    ray.init(address=address, **init_kwargs)
                except ConnectionError as exc:
                    raise DockyardError(
                        f"cannot connect to Ray at {address!r} ({exc}); start the cluster, or "
                        "leave out address= to start a local Ray instance for the run"
                    ) from exc
                self._ours = True
            self._users += 1

    def close(self) -> None:
        import ray

        with self._lock:
            self._users -= 1
            if self._users == 0 and self._ours:
                self._ours = False
                ray.shutdown()


_session = _Session()


class _RayExecutor(Executor):
    """Runs calls as Ray remote functions, with the options of :func:`remote_options` in
    force where the call's task run was submitted; a call whose worker or node died fails
    with a :class:`~dockyard.exceptions.DockyardError` that says so."""

    def __init__(self) -> None:
        self._remote: dict[Callable[..., Any], Any] = {}
        self._pending: weakref.WeakKeyDictionary[Future[Any], Any] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        import ray

        with self._lock:
            remote = self._remote.get(fn)
            if remote is None:  # made once: Ray exports a remote function when first called
                remote = self._remote[fn] = ray.remote(fn)
        # the task run's name, shown by Ray's dashboard and state API
        name = call_name(fn, args)
        options = {"name": name, **current_remote_options()}
        ref = remote.options(**options).remote(*args, **kwargs)
        call: Future[Any] = ref.future()
        outcome: Future[Any] = Future()
        outcome.set_running_or_notify_cancel()
        with self._lock:
            self._pending[outcome] = ref
        call.add_done_callback(functools.partial(_settle, outcome, name))
        return outcome

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        import ray

        with self._lock:
            pending = [(future, ref) for future, ref in self._pending.items() if not future.done()]
        if cancel_futures:
            for _, ref in pending:
                ray.cancel(ref)
        if wait:
            _wait_for([future for future, _ in pending])


def _settle(outcome: Future[Any], name: str, call: Future[Any]) -> None:
    import ray.exceptions

    error = None if call.cancelled() else call.exception()
    if call.cancelled() or isinstance(error, ray.exceptions.TaskCancelledError):
        outcome.set_exception(DockyardError(f"task run {name!r} was cancelled on Ray"))
        return
    if error is None:
        outcome.set_result(call.result())
    elif isinstance(error, ray.exceptions.RayError) and not isinstance(
        error, ray.exceptions.RayTaskError
    ):
        lost = DockyardError(
            f"task run {name!r} was lost on Ray: {type(error).__name__}: {error}; Ray retries "
            "a call whose worker died `max_retries` times (see remote_options) before giving up"
        )
        lost.__cause__ = error
        outcome.set_exception(lost)
    else:
        outcome.set_exception(error)
