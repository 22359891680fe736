"""``dockyard_dask.DaskTaskRunner`` on a real Dask cluster: a ``LocalCluster`` with two worker
processes on 127.0.0.1, started once for this module.

The workers import this module and ``cluster_tasks`` to find their tasks, so they are defined
at their top level (except those that test functions travelling by value).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cluster_tasks import check_each_kind, crunch_as_on_threads, square, submit_each_kind

import dockyard_dask
from _support import RunningServer, free_port, require
from dockyard import flow, task, task_input_hash
from dockyard.exceptions import DockyardError
from dockyard_dask import DaskTaskRunner, get_async_dask_client, get_dask_client

try:
    import dask
    import distributed
except ImportError:  # the tests say so, or fail in CI
    distributed = None

# one pytest-xdist worker runs this module's tests (one cluster)
pytestmark = [pytest.mark.xdist_group("dask")] if "PYTEST_XDIST_WORKER" in os.environ else []

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Two worker processes (one thread each) and their scheduler, on 127.0.0.1; a task
    whose workers die twice is given up (``allowed-failures``: 1)."""
    require(distributed is not None, "Dask is not installed: pip install -e '.[dask]'")
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        started = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )
    try:
        assert started.scheduler_address.startswith("tcp://127.0.0.1:")
        yield started
    finally:
        started.close()
        _assert_gone(before)


def _assert_gone(before: set[int]) -> None:
    """No process the cluster started outlives it (but multiprocessing's resource tracker,
    which lives as long as this process)."""
    new = [
        child
        for child in psutil.Process().children(recursive=True)
        if child.pid not in before and "resource_tracker" not in " ".join(child.cmdline())
    ]
    _, alive = psutil.wait_procs(new, timeout=30)
    assert not alive, f"processes left running: {[p.pid for p in alive]}"


def _runner(cluster: Any) -> DaskTaskRunner:
    return DaskTaskRunner(address=cluster.scheduler_address)


# ---------------------------------------------------------------- tasks


@task
def write(path: str, text: str) -> None:
    Path(path).write_text(text)


@task
def read(path: str) -> str:
    return Path(path).read_text()


@task(cache_key_fn=task_input_hash, persist_result=True)
def counted(path: str, x: int) -> int:
    with open(path, "a") as calls:
        calls.write("x")
    return x * 10


@task
def sum_on_the_cluster(values: list[int]) -> int:
    with get_dask_client() as client:
        return int(client.submit(sum, values, pure=False).result())


@task
async def sum_on_the_cluster_async(values: list[int]) -> int:
    async with get_async_dask_client() as client:
        return int(await client.submit(sum, values, pure=False))


@task
def die_once(path: str) -> int:
    """Kills the worker process running it, the first time."""
    marker = Path(path)
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return int(marker.read_text())


@task
def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


# ---------------------------------------------------------------- tests


@SQLITE_ONLY
def test_200_mapped_tasks_give_what_the_thread_runner_gives(
    tracked: RunningServer, cluster: Any, tmp_path: Path
) -> None:
    recorded = crunch_as_on_threads(tracked, _runner(cluster), tmp_path)
    assert len(recorded["logs"]) >= 200
    assert "squaring 7" in recorded["logs"]


def test_tasks_run_in_the_worker_processes(cluster: Any, tmp_path: Path) -> None:
    @flow(task_runner=_runner(cluster))
    def pipeline(path: str) -> dict[str, Any]:
        written = write.submit(path, "first")
        got = submit_each_kind()
        got["after"] = read.submit(path, wait_for=[written]).result()
        return got

    got = pipeline(str(tmp_path / "file"))
    check_each_kind(got)
    assert got["after"] == "first"


def test_the_cache_and_persisted_results_stay_with_the_flow(
    cluster: Any, tmp_path: Path, dockyard_home: Path
) -> None:
    calls = tmp_path / "calls"

    @flow(task_runner=_runner(cluster))
    def pipeline(x: int) -> list[int]:
        return counted.map(str(calls), [x, x + 1]).result()

    assert pipeline(1) == [10, 20]
    assert pipeline(1) == [10, 20]
    assert calls.read_text() == "xx"  # the second run's were cache hits
    assert len([p for p in (dockyard_home / "storage").iterdir() if p.is_file()]) == 2


def test_get_dask_client_in_tasks_and_in_the_flow(cluster: Any) -> None:
    @flow(task_runner=_runner(cluster))
    def pipeline() -> dict[str, Any]:
        with get_dask_client() as client:
            address = client.scheduler.address
        return {
            "sync": sum_on_the_cluster.submit([1, 2, 3]).result(),
            "async": sum_on_the_cluster_async.submit([4, 5]).result(),
            "address": address,
        }

    assert pipeline() == {"sync": 6, "async": 9, "address": cluster.scheduler_address}
    with pytest.raises(DockyardError, match="found no Dask cluster"), get_dask_client():
        pass


def test_a_cluster_started_for_the_run_is_closed_after_it() -> None:
    require(distributed is not None, "Dask is not installed: pip install -e '.[dask]'")
    started: list[Any] = []

    class Recorded(distributed.LocalCluster):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            started.append(self)

    runner = DaskTaskRunner(
        cluster_class=Recorded,
        cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": "127.0.0.1:0"},
        adapt_kwargs={"minimum": 1, "maximum": 1},
    )

    @flow(task_runner=runner)
    def pipeline() -> int:
        return square.submit(3).result()

    assert pipeline() == 9 and pipeline() == 9
    assert len(started) == 2  # one per flow run, each closed when its run ended
    assert all(cluster.status == distributed.core.Status.closed for cluster in started)
    assert repr(runner.duplicate()) == repr(runner) and runner.client is None
    with pytest.raises(ValueError, match=r"either address= .* not both"):
        DaskTaskRunner(address="tcp://127.0.0.1:8786", cluster_kwargs={"n_workers": 1})


def test_an_unreachable_scheduler_is_said_so() -> None:
    require(distributed is not None, "Dask is not installed: pip install -e '.[dask]'")
    address = f"tcp://127.0.0.1:{free_port()}"

    @flow(task_runner=DaskTaskRunner(address=address, client_kwargs={"timeout": "1s"}))
    def pipeline() -> int:
        return square.submit(3).result()

    with pytest.raises(DockyardError, match=f"cannot reach the Dask scheduler at {address}"):
        pipeline()


def test_all_is_honest() -> None:
    for module in (dockyard_dask, dockyard_dask.task_runners, dockyard_dask.utils):
        assert [name for name in module.__all__ if not hasattr(module, name)] == []


def test_a_killed_worker_does_not_lose_the_flow_run(cluster: Any, tmp_path: Path) -> None:
    """A worker killed mid-task: the scheduler runs the task again on a live worker; when
    its workers keep dying the task run fails and says why (it never hangs)."""

    @flow(task_runner=_runner(cluster))
    def pipeline(path: str) -> int:
        return die_once.submit(path).result()

    # the second try read what the first wrote before its process was killed
    assert pipeline(str(tmp_path / "marker")) != os.getpid()

    @flow(task_runner=_runner(cluster))
    def doomed() -> None:
        die.submit().result()

    with pytest.raises(DockyardError, match="task run 'die-0' was lost: each Dask worker"):
        doomed()
