"""``DaskTaskRunner``: the functions of submitted tasks run on a Dask cluster.

It is a :class:`~dockyard.task_runners.ProcessPoolTaskRunner` whose executor is a
``dask.distributed`` client: each task run (its record, retries, timeout, cache, result
persistence, the futures it waits for) stays in the flow's process, and only the call of
the task's function goes to a Dask worker. The task runs and log lines it makes there come
back with its result and are recorded with the flow run, in the tracker's batches.

Functions travel to the workers by reference (module and name) when the workers can import
them, else by value (cloudpickle): a task defined in the script being run, or inside a
function. Their arguments and results are pickled.
"""

from __future__ import annotations

import functools
import importlib
import uuid
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Self

from dockyard.exceptions import DockyardError
from dockyard.sdk.runtime.process_pool import call_name, calls_in_flight
from dockyard.task_runners import ProcessPoolTaskRunner

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["DaskTaskRunner"]

# A LocalCluster's scheduler listens on 127.0.0.1; its dashboard too (the next free port
# when this one is taken)
LOCAL_DASHBOARD = "127.0.0.1:8787"


class DaskTaskRunner(ProcessPoolTaskRunner):
    """Runs the function of each submitted task on a Dask cluster.

    Either connects to a running scheduler (``address``), or starts a cluster for the flow
    run and closes it when the run ends (``LocalCluster()`` by default: worker processes on
    this machine, the scheduler and its dashboard on 127.0.0.1).

    Args:
        address: the address of a running Dask scheduler (``tcp://10.0.0.5:8786``).
        cluster_class: the cluster to start when no ``address`` is given: a class or a
            callable, or its import path (``"dask_kubernetes.operator.KubeCluster"``).
            Default: ``distributed.LocalCluster``.
        cluster_kwargs: passed to ``cluster_class`` (``{"n_workers": 4}``).
        adapt_kwargs: when given, the cluster adapts its size to the load:
            ``cluster.adapt(**adapt_kwargs)`` (``{"minimum": 1, "maximum": 10}``).
        client_kwargs: passed to ``distributed.Client``.

    Raises:
        ValueError: both an address and a cluster to start are given.
    """

    pickles_by_value = True
    extras = ("dask",)

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: Mapping[str, Any] | None = None,
        adapt_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if address is not None and (cluster_class or cluster_kwargs or adapt_kwargs):
            raise ValueError(
                "DaskTaskRunner takes either address= (a running scheduler) or "
                "cluster_class=/cluster_kwargs=/adapt_kwargs= (a cluster to start), not both"
            )
        super().__init__()
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._client: Client | None = None
        self._cluster: Any = None

    def duplicate(self) -> Self:
        return type(self)(
            address=self.address,
            cluster_class=self.cluster_class,
            cluster_kwargs=self.cluster_kwargs,
            adapt_kwargs=self.adapt_kwargs,
            client_kwargs=self.client_kwargs,
        )

    @property
    def client(self) -> Client | None:
        """The client of the cluster while the runner is started, else None."""
        return self._client

    @property
    def cluster(self) -> Any:
        """The cluster the runner started (None when it connected to ``address``)."""
        return self._cluster

    def make_executor(self) -> Executor:
        """Connect to the scheduler at ``address``, or start the cluster; return an executor
        that runs calls on it."""
        from distributed import Client

        # the flow's process keeps Dask's default scheduler: get_dask_client() gives one
        options = {"set_as_default": False, **self.client_kwargs}
        if self.address is not None:
            try:
                client = Client(self.address, **options)
            except OSError as exc:
                raise DockyardError(
                    f"cannot reach the Dask scheduler at {self.address} ({exc}); start it, "
                    "or leave out address= to start a cluster for the run"
                ) from exc
        else:
            kwargs = dict(self.cluster_kwargs)
            if self.cluster_class is None:  # LocalCluster's dashboard listens everywhere
                kwargs.setdefault("dashboard_address", LOCAL_DASHBOARD)
            cluster = _cluster_factory(self.cluster_class)(**kwargs)
            try:
                if self.adapt_kwargs:
                    cluster.adapt(**self.adapt_kwargs)
                client = Client(cluster, **options)
            except BaseException:
                cluster.close()
                raise
            self._cluster = cluster
        self._client = client
        return _DaskExecutor(client)

    def _thread_count(self) -> int:
        client = self._client
        threads = sum(client.nthreads().values()) if client is not None else 0
        return calls_in_flight(threads)

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        """Stop the runner, then close its client, and the cluster if it started one."""
        super().shutdown(wait=wait, cancel=cancel)
        with self._lock:
            client, self._client = self._client, None
            cluster, self._cluster = self._cluster, None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        if self.address is not None:
            return f"DaskTaskRunner(address={self.address!r})"
        name = self.cluster_class or "LocalCluster"
        return f"DaskTaskRunner(cluster_class={name!r}, cluster_kwargs={self.cluster_kwargs!r})"


def _cluster_factory(given: str | Callable[..., Any] | None) -> Callable[..., Any]:
    if given is None:
        from distributed import LocalCluster

        return LocalCluster
    if callable(given):
        return given
    module, _, name = given.rpartition(".")
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise DockyardError(
            f"cluster_class {given!r} cannot be imported ({exc}); give 'package.module.Class' "
            "of an installed package, or the class itself"
        ) from exc
    return found


class _DaskExecutor(Executor):
    """Runs calls on a Dask cluster through ``client``; a call whose workers kept dying
    fails with a :class:`~dockyard.exceptions.DockyardError` that says so."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._calls = client.get_executor(pure=False)
        self._pending: weakref.WeakSet[Future[Any]] = weakref.WeakSet()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        # the key names the task run on the dashboard (Dask groups keys by their prefix)
        name = call_name(fn, args)
        call = self._calls.submit(fn, *args, key=f"{name}-{uuid.uuid4().hex}", **kwargs)
        self._pending.add(call)
        outcome: Future[Any] = Future()
        outcome.set_running_or_notify_cancel()
        call.add_done_callback(functools.partial(_settle, outcome, name))
        return outcome

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            for call in list(self._pending):
                call.cancel()  # cancels the call on the cluster too
        self._calls.shutdown(wait=wait)


def _settle(outcome: Future[Any], name: str, call: Future[Any]) -> None:
    from distributed import KilledWorker

    if call.cancelled():
        outcome.set_exception(DockyardError(f"task run {name!r} was cancelled on Dask"))
        return
    error = call.exception()
    if error is None:
        outcome.set_result(call.result())
    elif isinstance(error, KilledWorker):
        lost = DockyardError(
            f"task run {name!r} was lost: each Dask worker that ran it died ({error}); the "
            "workers' logs say why (running out of memory is the usual cause). The scheduler "
            "gives up after `distributed.scheduler.allowed-failures` deaths"
        )
        lost.__cause__ = error
        outcome.set_exception(lost)
    else:
        outcome.set_exception(error)
