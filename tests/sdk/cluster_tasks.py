"""The tasks, flows and checks the tests of the Dask and Ray runners share (and some the
process pool's use).

Workers import this module to find its tasks, so they are defined at its top level; it is
beside the test modules, on the workers' path as they are.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

from _support import RunningServer
from dockyard import flow, get_run_context, get_run_logger, task
from dockyard.states import Failed, State
from dockyard.task_runners import TaskRunner, ThreadPoolTaskRunner


def _run_id() -> str:
    context = get_run_context()
    assert context is not None and hasattr(context, "flow_run_id")
    return str(context.flow_run_id)


# ---------------------------------------------------------------- tasks


@task
def square(x: int) -> int:
    get_run_logger().info("squaring %d", x)
    return x * x


@task(retries=2)
def flaky(path: str) -> int:
    """Fails until it has been tried three times (counted in a file: each try may run in
    another worker)."""
    with open(path, "a+") as counter:
        counter.write("x")
        counter.seek(0)
        tries = len(counter.read())
    if tries < 3:
        raise ConnectionError(f"try {tries}")
    return tries


class Odd(ValueError):
    pass


@task
def explode(x: int) -> None:
    raise Odd(f"odd {x}")


@task
def where(x: int) -> tuple[int, int]:
    return os.getpid(), x + 1


@task
async def async_double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


@task
def parent_of_two(n: int) -> int:
    where(n)
    return n + 1


@task
def refuse(x: int) -> State:
    state: State = Failed(message=f"refused {x}")
    return state


@flow
def crunch(path: str) -> dict[str, Any]:
    squares = square.map(range(200))
    failed = explode.submit(3)
    return {
        "squares": squares.result(),
        "flaky": flaky.submit(path).result(),
        "failed": repr(failed.exception()),
        "run_id": _run_id(),
    }


# ---------------------------------------------------------------- checks


def _recorded(server: RunningServer, run_id: str) -> dict[str, Any]:
    """What the server holds of a run's task runs and of the lines they logged (a task run's
    name tells when it started, not which element of the map it had). A failure in a
    worker is logged without the traceback lines a thread's has: its worker's traceback
    is a note of the exception."""
    with server.client() as client:
        task_runs = client.list_task_runs(flow_run_id=uuid.UUID(run_id), limit=1000)
        logs = client.read_logs(flow_run_id=uuid.UUID(run_id), limit=1000)
    assert all(t.start_time and t.end_time for t in task_runs)
    squared = [log.task_run_id for log in logs if log.message.startswith("squaring")]
    squares = {t.id for t in task_runs if t.name.startswith("square-")}
    assert sorted(map(str, squared)) == sorted(map(str, squares))  # one line each
    return {
        "task_runs": {t.name: (t.state, t.attempts, t.error is not None) for t in task_runs},
        "logs": sorted(log.message.split("\n")[0] for log in logs if log.task_run_id),
    }


def crunch_as_on_threads(
    server: RunningServer, runner: TaskRunner, tmp_path: Path
) -> dict[str, Any]:
    """Runs ``crunch`` on ``runner`` and on threads, checks both give (and record) the same,
    and returns what the server recorded of the run on ``runner``."""
    on_threads = crunch.with_options(task_runner=ThreadPoolTaskRunner())(str(tmp_path / "t"))
    on_runner = crunch.with_options(task_runner=runner)(str(tmp_path / "r"))

    assert on_runner["squares"] == on_threads["squares"] == [x * x for x in range(200)]
    assert on_runner["flaky"] == on_threads["flaky"] == 3
    assert on_runner["failed"] == on_threads["failed"] == "Odd('odd 3')"
    recorded = _recorded(server, on_runner["run_id"])
    assert recorded == _recorded(server, on_threads["run_id"])
    assert len(recorded["task_runs"]) == 202
    assert recorded["task_runs"]["flaky-0"] == ("COMPLETED", 3, False)
    assert recorded["task_runs"]["explode-0"] == ("FAILED", 1, True)
    return recorded


def submit_each_kind() -> dict[str, Any]:
    """In a flow: submits a task of each kind (mapped, async, nested, returning a state,
    failing, defined in a function) and returns what each gave."""

    @task
    def defined_here(x: int) -> str:  # travels by value
        return f"{x}!"

    refused = refuse.submit(7)
    refused.wait()
    return {
        "where": where.map([1, 2, 3]).result(),
        "async": async_double.submit(21).result(),
        "nested": parent_of_two.submit(1).result(),
        "refused": refused.state,
        "failed": explode.submit(5).exception(),
        "here": defined_here.submit(4).result(),
    }


def check_each_kind(got: dict[str, Any]) -> None:
    """What ``submit_each_kind`` returned, when its tasks ran in worker processes."""
    assert [value for _, value in got["where"]] == [2, 3, 4]
    assert all(pid != os.getpid() for pid, _ in got["where"])
    assert got["async"] == 42 and got["nested"] == 2 and got["here"] == "4!"
    assert got["refused"].is_failed() and got["refused"].message == "refused 7"
    assert isinstance(got["failed"], Odd) and str(got["failed"]) == "odd 5"
    assert any("in worker process" in note for note in got["failed"].__notes__)
