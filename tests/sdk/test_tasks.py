"""Tasks: retries, timeouts, submit and map, async tasks, and tasks outside flows."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from dockyard import TaskFuture, flow, get_run_context, task, unmapped
from dockyard.sdk.runtime.context import TaskRunContext


def test_task_retries_with_a_list_of_delays() -> None:
    calls: list[float] = []

    @task(retries=3, retry_delay_seconds=[0.02, 0.05])
    def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) < 4:
            raise ConnectionError("try again")
        return len(calls)

    @flow
    def run() -> int:
        return flaky()

    assert run() == 4
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.05 and gaps[2] >= 0.05  # the last delay repeats


def test_a_task_that_keeps_failing_fails_the_flow() -> None:
    @task(retries=1)
    def broken() -> None:
        raise ValueError("bad input")

    @flow
    def run() -> None:
        broken()

    with pytest.raises(ValueError, match="bad input"):
        run()


def test_a_flow_may_handle_a_failed_task() -> None:
    @task
    def broken() -> None:
        raise ValueError("bad input")

    @flow
    def run() -> str:
        try:
            broken()
        except ValueError:
            return "handled"
        return "not reached"

    assert run() == "handled"


def test_a_sync_task_times_out_and_is_retried() -> None:
    attempts: list[int] = []

    @task(timeout_seconds=0.1, retries=1)
    def slow() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(3)
        return len(attempts)

    @flow
    def run() -> int:
        return slow()

    started = time.monotonic()
    assert run() == 2
    assert time.monotonic() - started < 2.5


def test_a_sync_task_timeout_names_the_task_run() -> None:
    @task(timeout_seconds=0.1)
    def slow() -> None:
        time.sleep(3)

    @flow
    def run() -> None:
        slow()

    with pytest.raises(TimeoutError, match=r"task run 'slow-0' timed out after 0.1 s"):
        run()


async def test_an_async_task_times_out() -> None:
    cancelled = asyncio.Event()

    @task(timeout_seconds=0.1)
    async def slow() -> None:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @flow
    async def run() -> None:
        await slow()

    with pytest.raises(TimeoutError, match=r"timed out after 0\.1 s"):
        await run()
    assert cancelled.is_set()


def test_submit_runs_tasks_in_threads_and_returns_futures() -> None:
    threads: set[str] = set()

    @task
    def square(x: int) -> int:
        threads.add(threading.current_thread().name)
        time.sleep(0.02)
        return x * x

    @flow
    def run() -> list[int]:
        futures = [square.submit(i) for i in range(4)]
        assert all(isinstance(f, TaskFuture) for f in futures)
        return [f.result() for f in futures]

    assert run() == [0, 1, 4, 9]
    assert all(name.startswith("dockyard-task") for name in threads)


def test_futures_passed_to_tasks_are_resolved() -> None:
    @task
    def one() -> int:
        return 1

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def run() -> int:
        a = one.submit()
        b = add.submit(a, y=a)
        return total([a, b, add(b, 10)])

    assert run() == 1 + 2 + 12


def test_a_failed_future_raises_its_exception() -> None:
    @task
    def broken() -> None:
        raise LookupError("nope")

    @flow
    def run() -> BaseException | None:
        future = broken.submit()
        assert future.wait(5)
        return future.exception()

    assert isinstance(run(), LookupError)


def test_map_runs_one_task_per_element_in_order() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def count(items: list[str], extra: int) -> int:
        return len(items) + extra

    @flow
    def run() -> tuple[list[int], list[int], list[int]]:
        zipped = add.map([1, 2, 3], [10, 20, 30]).result()
        static = add.map(range(3), 100).result()
        whole = count.map(unmapped(["a", "b"]), extra=[0, 1]).result()
        return zipped, static, whole

    assert run() == ([11, 22, 33], [100, 101, 102], [2, 3])


def test_map_refuses_iterables_of_different_lengths() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def run() -> None:
        add.map([1, 2], [1, 2, 3])

    with pytest.raises(ValueError, match="one length"):
        run()


def test_map_over_futures() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def run() -> list[int]:
        return double.map(double.map([1, 2, 3])).result()

    assert run() == [4, 8, 12]


async def test_async_tasks_submit_and_await() -> None:
    @task
    async def fetch(n: int) -> int:
        await asyncio.sleep(0.01)
        return n + 1

    @flow
    async def run() -> list[int]:
        direct = await fetch(0)
        submitted = await fetch.submit(1)
        mapped = [await f for f in fetch.map([2, 3])]
        return [direct, submitted, *mapped]

    assert await run() == [1, 2, 3, 4]


def test_an_async_task_submitted_from_a_sync_flow() -> None:
    @task
    async def fetch(n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    @flow
    def run() -> int:
        return fetch.submit(7).result()

    assert run() == 7


def test_task_runs_are_named_after_the_task_with_a_counter() -> None:
    names: list[str] = []

    @task
    def step() -> None:
        context = get_run_context()
        assert isinstance(context, TaskRunContext)
        names.append(context.task_run_name)

    @flow
    def run() -> None:
        step()
        step()
        step.submit().wait()

    run()
    assert names == ["step-0", "step-1", "step-2"]


def test_a_task_outside_a_flow_is_a_plain_call_with_retries() -> None:
    attempts: list[int] = []

    @task(retries=1)
    def flaky(x: int) -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("once")
        context = get_run_context()
        assert isinstance(context, TaskRunContext) and context.flow_run is None
        return x

    assert flaky(5) == 5
    assert flaky.submit(6).result() == 6
