"""``dockyard_ray.RayTaskRunner`` on a real local Ray instance (two CPUs, on 127.0.0.1),
started once for this module by a runner, as a flow's runner starts it.

Ray's workers import this module and ``cluster_tasks`` to find their tasks, so they are
defined at their top level (except those that test functions travelling by value), and this
directory is on their ``PYTHONPATH`` (``runtime_env``), as a project's own is on its cluster.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from cluster_tasks import check_each_kind, crunch_as_on_threads, submit_each_kind

import dockyard_ray
from _support import RunningServer, require
from dockyard import flow, task
from dockyard_ray import RayTaskRunner, remote_options

# one pytest-xdist worker runs this module's tests (one Ray instance)
pytestmark = [pytest.mark.xdist_group("ray")] if "PYTEST_XDIST_WORKER" in os.environ else []

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
HERE = Path(__file__).resolve().parent
# Ray binds its processes to the node's address; on Linux the one of a network interface,
# unless told it is alone on this machine (read once, when ray is imported)
LOOPBACK_ONLY = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def _init_kwargs() -> dict[str, Any]:
    return {
        "num_cpus": 2,
        "include_dashboard": False,
        "log_to_driver": False,
        "runtime_env": {"env_vars": {"PYTHONPATH": f"{HERE}{os.pathsep}{HERE.parent}"}},
    }


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """A local Ray instance, started (and at the end stopped) by a RayTaskRunner; the
    runners of the tests' flows share its connection."""
    require(importlib.util.find_spec("ray"), "Ray is not installed: pip install -e '.[ray]'")
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    # Ray's sessions (sockets, logs) in a short path of their own, removed at the end
    sessions = tempfile.mkdtemp(prefix="ray-")
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in LOOPBACK_ONLY.items():
                env.setenv(name, value)
            import ray

            owner = RayTaskRunner(init_kwargs={**_init_kwargs(), "_temp_dir": sessions})
            with owner:
                assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
                yield ray
            assert not ray.is_initialized()
        new = [c for c in psutil.Process().children(recursive=True) if c.pid not in before]
        _, alive = psutil.wait_procs(new, timeout=30)
        assert not alive, f"processes left running: {[p.name() for p in alive]}"
    finally:
        shutil.rmtree(sessions, ignore_errors=True)


def _runner() -> RayTaskRunner:
    return RayTaskRunner(init_kwargs=_init_kwargs())


# ---------------------------------------------------------------- tasks


@task
def cpus() -> float:
    import ray

    return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0))


# ---------------------------------------------------------------- tests


@SQLITE_ONLY
def test_200_mapped_tasks_give_what_the_thread_runner_gives(
    tracked: RunningServer, ray_instance: Any, tmp_path: Path
) -> None:
    crunch_as_on_threads(tracked, _runner(), tmp_path)
    assert ray_instance.is_initialized()  # the flow's runner left the shared connection open


def test_tasks_run_in_ray_workers(ray_instance: Any) -> None:
    @flow(task_runner=_runner())
    def pipeline() -> dict[str, Any]:
        return submit_each_kind()

    check_each_kind(pipeline())


def test_remote_options_apply_to_the_tasks_submitted_in_their_block(ray_instance: Any) -> None:
    @flow(task_runner=_runner())
    def pipeline() -> list[float]:
        plain = cpus.submit()
        with remote_options(num_cpus=2):
            both = cpus.submit()
            with remote_options(num_cpus=0.5):
                half = cpus.submit()
        return [plain.result(), both.result(), half.result()]

    assert pipeline() == [1.0, 2.0, 0.5]
    assert repr(_runner().duplicate()) == repr(_runner())


def test_all_is_honest() -> None:
    for module in (dockyard_ray, dockyard_ray.context, dockyard_ray.task_runners):
        assert [name for name in module.__all__ if not hasattr(module, name)] == []
