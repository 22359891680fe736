"""Task runners: the thread pool (the default), the process pool, and the interface a new
runner implements.

The process pool's workers import this module and ``cluster_tasks`` to find their tasks, so
they are defined at their top level.
"""

from __future__ import annotations

import os
import threading
import uuid
from typing import Any, Self

import pytest
from cluster_tasks import Odd, async_double, explode, flaky, refuse

from _support import RunningServer
from dockyard import flow, get_logger, get_run_context, task
from dockyard.futures import TaskFuture
from dockyard.sdk.runtime.task_runners import prepare_task_run
from dockyard.states import State
from dockyard.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from dockyard.utilities.annotations import unmapped


def _run_id() -> uuid.UUID:
    context = get_run_context()
    assert context is not None and hasattr(context, "flow_run_id")
    return context.flow_run_id


# ---------------------------------------------------------------- threads


def test_max_workers_bounds_the_task_runs_going_on_at_once() -> None:
    lock = threading.Lock()
    running = [0]
    most = [0]
    both_in = threading.Barrier(2, timeout=30)

    @task
    def work(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        both_in.wait()  # two run at once (with one worker this would never return)
        with lock:
            running[0] -= 1
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline() -> list[int]:
        return work.map(range(6)).result()

    assert pipeline() == list(range(6))
    assert most[0] == 2


def test_the_default_runner_runs_tasks_in_threads() -> None:
    @task
    def where() -> str:
        return threading.current_thread().name

    @flow
    def pipeline() -> str:
        return where.submit().result()

    assert pipeline().startswith("dockyard-task")


def test_a_runner_is_given_as_an_instance_or_a_class_and_checked() -> None:
    def noop() -> None:
        pass

    assert isinstance(
        flow(task_runner=ThreadPoolTaskRunner)(noop).task_runner, ThreadPoolTaskRunner
    )
    swapped = flow(noop).with_options(task_runner=ProcessPoolTaskRunner(max_workers=2))
    assert isinstance(swapped.task_runner, ProcessPoolTaskRunner)
    with pytest.raises(TypeError, match="task_runner must be a task runner"):
        flow(task_runner="threads")(noop)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_workers must be a positive whole number"):
        ThreadPoolTaskRunner(max_workers=0)


def test_each_flow_run_uses_its_own_copy_of_the_runner() -> None:
    template = ThreadPoolTaskRunner(max_workers=3)

    @task
    def one() -> int:
        return 1

    @flow(task_runner=template)
    def pipeline() -> int:
        return one.submit().result()

    assert pipeline() == 1 and pipeline() == 1
    with pytest.raises(RuntimeError, match="is not started"):
        template.submit(one, (), {})


def test_a_runner_can_be_used_outside_a_flow() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        future = runner.submit(add, (1, 2), {})
        mapped = runner.map(add, ([1, 2], 10), {})
        assert future.result() == 3 and mapped.result() == [11, 12]


class InlineTaskRunner(TaskRunner):
    """A runner written on the interface alone: it runs each task at once, in the caller."""

    def __init__(self) -> None:
        self.entered = 0
        self.submitted = 0

    def duplicate(self) -> Self:
        return type(self)()

    def __enter__(self) -> Self:
        self.entered += 1
        return self

    def shutdown(self, *, wait: bool = True, cancel: bool = False) -> None:
        pass

    def submit(
        self,
        task: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        wait_for: Any = None,
    ) -> TaskFuture[Any]:
        from concurrent.futures import Future

        self.submitted += 1
        call, run_id = prepare_task_run(task, args, kwargs, wait_for=wait_for)
        future: Future[State] = Future()
        future.set_result(call())
        return TaskFuture(future, run_id)


def test_a_new_runner_needs_only_the_documented_methods() -> None:
    used: list[InlineTaskRunner] = []

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow(task_runner=InlineTaskRunner())
    def pipeline() -> list[int]:
        context = get_run_context()
        assert context is not None and hasattr(context, "task_runner")
        used.append(context.task_runner(ThreadPoolTaskRunner))  # type: ignore[arg-type]
        return [double.submit(1).result(), *double.map([2, 3]).result()]

    assert pipeline() == [2, 4, 6]
    assert used[0].entered == 1 and used[0].submitted == 3


# ---------------------------------------------------------------- processes


@task
def pid_of(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


@task
def shout(text: str) -> str:
    get_logger().info("shouting %s", text)
    return text.upper()


@task
def parent_of_two(n: int) -> int:
    shout(str(n))
    return n + 1


def test_process_pool_tasks_run_in_worker_processes() -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def pipeline() -> dict[str, Any]:
        results = pid_of.map([1, 2, 3]).result()
        refused = refuse.submit(7)
        failed = explode.submit(3)
        return {
            "results": results,
            "async": async_double.submit(21).result(),
            "nested": parent_of_two.submit(1).result(),
            "refused": refused.state,
            "failed": failed.exception(),
        }

    got = pipeline()
    assert [value for _, value in got["results"]] == [1, 4, 9]
    assert all(pid != os.getpid() for pid, _ in got["results"])
    assert got["async"] == 42 and got["nested"] == 2
    assert got["refused"].is_failed() and got["refused"].message == "refused 7"
    assert isinstance(got["failed"], Odd) and str(got["failed"]) == "odd 3"
    assert any("in worker process" in note for note in got["failed"].__notes__)


def test_process_pool_retries_are_run_by_the_flow(tmp_path: Any) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline(path: str) -> int:
        return flaky.submit(path).result()

    assert pipeline(str(tmp_path / "tries")) == 3


def test_a_task_a_worker_cannot_import_is_refused_at_submit() -> None:
    @task
    def local() -> None:
        pass

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline() -> None:
        local.submit()

    with pytest.raises(ValueError, match="cannot run in a worker process"):
        pipeline()


def test_process_pool_task_runs_and_logs_are_recorded(tracked: RunningServer) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def pipeline() -> str:
        assert shout.submit("a").result() == "A"
        assert parent_of_two.submit(5).result() == 6
        return str(_run_id())

    run_id = uuid.UUID(pipeline())
    with tracked.client() as client:
        task_runs = {t.name: t for t in client.list_task_runs(flow_run_id=run_id)}
        logs = client.read_logs(flow_run_id=run_id, limit=1000)
    assert sorted(task_runs) == ["parent_of_two-0", "parent_of_two-0.shout-0", "shout-0"]
    assert {t.state for t in task_runs.values()} == {"COMPLETED"}
    shouted = {log.message: log.task_run_id for log in logs if log.message.startswith("shout")}
    assert shouted == {
        "shouting a": task_runs["shout-0"].id,
        "shouting 5": task_runs["parent_of_two-0.shout-0"].id,
    }


def test_map_over_the_value_of_a_future() -> None:
    @task
    def items() -> list[int]:
        return [1, 2, 3]

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def size(values: list[int], extra: int) -> int:
        return len(values) + extra

    @flow
    def pipeline() -> tuple[list[int], list[int]]:
        future = items.submit()
        return add.map(future, 10).result(), size.map(unmapped(future), [0, 1]).result()

    assert pipeline() == ([11, 12, 13], [3, 4])


CRUNCH = """
import os

from dockyard import flow, task
from dockyard.task_runners import ProcessPoolTaskRunner


@task
def where(x: int) -> tuple[int, int]:
    return os.getpid(), x + 1


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def crunch() -> list[tuple[int, int]]:
    return where.map([1, 2]).result()
"""


def test_process_pool_tasks_of_a_module_loaded_from_its_file(tmp_path: Any) -> None:
    """A deployment's flow file is loaded by path, under a name workers cannot import."""
    import importlib.util
    import sys

    path = tmp_path / "crunch.py"
    path.write_text(CRUNCH)
    name = f"loaded_by_path_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        got = module.crunch()
    finally:
        del sys.modules[name]
    assert [value for _, value in got] == [2, 3]
    assert all(pid != os.getpid() for pid, _ in got)
