"""A client of the Dask cluster a task runs on, to compute Dask collections there.

::

    import dask.dataframe as dd
    from dockyard import task
    from dockyard_dask import get_dask_client

    @task
    def summarize(path: str) -> dict:
        with get_dask_client() as client:
            frame = dd.read_parquet(path)
            return client.compute(frame.describe()).result().to_dict()

Without it a task computes a collection with Dask's default scheduler, inside its own
worker. On a worker, the task leaves the worker's pool of threads while the block lasts,
so the work it hands to the cluster can run on that worker too. In the flow's body (a flow
run by :class:`~dockyard_dask.DaskTaskRunner`) the client is one of the runner's cluster.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from dockyard.context import FlowRunContext
from dockyard.exceptions import DockyardError
from dockyard_dask.task_runners import DaskTaskRunner

if TYPE_CHECKING:
    from distributed import Client, Worker

__all__ = ["get_async_dask_client", "get_dask_client"]


@contextlib.contextmanager
def get_dask_client(timeout: float | str | None = None, **client_kwargs: Any) -> Iterator[Client]:
    """A client of the cluster the current task runs on, for the ``with`` block.

    Args:
        timeout: how long to wait for the scheduler (seconds, or ``"10s"``); default:
            Dask's ``distributed.comm.timeouts.connect``.
        client_kwargs: more arguments of ``distributed.Client``.

    Raises:
        DockyardError: neither on a Dask worker nor in a flow run by a DaskTaskRunner.
    """
    from distributed import Client, worker_client

    worker = _worker()
    if worker is not None and not client_kwargs:
        # the worker's own connection, and the task leaves the pool until the block ends
        with worker_client(timeout=timeout) as client:
            yield client
        return
    options = _options(timeout, client_kwargs)
    with _seceded(worker), Client(_scheduler_address(worker), **options) as client:
        yield client


@contextlib.asynccontextmanager
async def get_async_dask_client(
    timeout: float | str | None = None, **client_kwargs: Any
) -> AsyncIterator[Client]:
    """An asynchronous client of the cluster the current task runs on, for the ``async
    with`` block (see :func:`get_dask_client`)."""
    from distributed import Client

    worker = _worker()
    options = _options(timeout, client_kwargs)
    with _seceded(worker):
        async with Client(_scheduler_address(worker), asynchronous=True, **options) as client:
            yield client


def _options(timeout: float | str | None, given: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"set_as_default": False, **given}
    if timeout is not None:
        options["timeout"] = timeout
    return options


def _worker() -> Worker | None:
    """The Dask worker running this thread's task, else None."""
    from distributed import get_worker

    try:
        return get_worker()
    except ValueError:
        return None


@contextlib.contextmanager
def _seceded(worker: Worker | None) -> Iterator[None]:
    """On a worker: leave its pool of threads for the block (work this task waits for
    may need the thread)."""
    if worker is None:
        yield
        return
    from distributed import rejoin, secede

    secede()
    try:
        yield
    finally:
        rejoin()


def _scheduler_address(worker: Worker | None) -> str:
    if worker is not None:
        return str(worker.scheduler.address)
    flow_run = FlowRunContext.get()
    if flow_run is not None and isinstance(flow_run.flow.task_runner, DaskTaskRunner):
        runner = flow_run.task_runner(flow_run.flow.task_runner.duplicate)
        client = runner.client if isinstance(runner, DaskTaskRunner) else None
        if client is not None and client.scheduler is not None:
            return str(client.scheduler.address)
    raise DockyardError(
        "get_dask_client() found no Dask cluster: call it in a task run by DaskTaskRunner, "
        "or in a flow whose task_runner is a DaskTaskRunner"
    )
