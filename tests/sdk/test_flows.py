"""Flows run without a server: results, failures, retries, timeouts, async and subflows."""

from __future__ import annotations

import asyncio
import time

import pytest

from dockyard import flow, get_run_context, task
from dockyard.sdk.runtime.context import FlowRunContext


def test_a_flow_returns_its_value_and_says_once_that_it_is_untracked(
    capsys: pytest.CaptureFixture[str], no_server: str
) -> None:
    @flow
    def double(x: int) -> int:
        return 2 * x

    assert double(21) == 42
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if "untracked" in line]
    assert len(notices) == 1, err
    assert notices[0].startswith(f"dockyard: no server at {no_server} (")
    assert notices[0].endswith("flow 'double' runs untracked")


def test_a_failing_flow_raises_its_exception() -> None:
    @flow
    def broken() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        broken()


def test_a_bad_call_raises_type_error_without_a_run(capsys: pytest.CaptureFixture[str]) -> None:
    @flow
    def one(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="flow 'one'"):
        one(1, 2)  # type: ignore[call-arg]
    assert "untracked" not in capsys.readouterr().err


def test_flow_retries_wait_their_delays() -> None:
    calls: list[float] = []

    @flow(retries=2, retry_delay_seconds=[0.05, 0.1])
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise RuntimeError("not yet")
        return "done"

    assert flaky() == "done"
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.05
    assert calls[2] - calls[1] >= 0.1


def test_flow_retries_give_up_with_the_last_error() -> None:
    attempts: list[int] = []

    @flow(retries=1)
    def always() -> None:
        attempts.append(1)
        raise ValueError(f"attempt {len(attempts)}")

    with pytest.raises(ValueError, match="attempt 2"):
        always()
    assert len(attempts) == 2


def test_a_sync_flow_times_out() -> None:
    @flow(timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(5)

    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"flow run '.*' timed out after 0.2 s"):
        slow()
    assert time.monotonic() - started < 2


def test_a_timed_out_attempt_is_retried() -> None:
    attempts: list[int] = []

    @flow(timeout_seconds=0.2, retries=1)
    def slow_then_fast() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(2)
        return len(attempts)

    assert slow_then_fast() == 2


async def test_async_flows_are_awaited() -> None:
    @task
    async def fetch(n: int) -> int:
        await asyncio.sleep(0.01)
        return n * 10

    @flow
    async def gather_all(n: int) -> list[int]:
        return list(await asyncio.gather(*(fetch(i) for i in range(n))))

    assert await gather_all(3) == [0, 10, 20]


async def test_an_async_flow_times_out() -> None:
    @flow(timeout_seconds=0.1)
    async def slow() -> None:
        await asyncio.sleep(5)

    with pytest.raises(TimeoutError, match=r"timed out after 0\.1 s"):
        await slow()


async def test_a_timeout_error_raised_by_the_flow_is_its_own() -> None:
    @flow(timeout_seconds=5)
    async def own() -> None:
        raise TimeoutError("the flow's own")

    with pytest.raises(TimeoutError, match="the flow's own"):
        await own()


def test_subflows_run_inside_their_parent() -> None:
    seen: list[tuple[str, str | None]] = []

    @flow
    def child(x: int) -> int:
        context = get_run_context()
        assert isinstance(context, FlowRunContext)
        parent = context.parent.flow.name if context.parent else None
        seen.append((context.flow.name, parent))
        return x + 1

    @flow
    def parent() -> int:
        return child(1) + child(2)

    assert parent() == 5
    assert seen == [("child", "parent"), ("child", "parent")]


def test_the_run_context_is_there_only_during_a_run() -> None:
    @flow
    def inspect_me(x: int) -> str:
        context = get_run_context()
        assert isinstance(context, FlowRunContext)
        assert context.parameters == {"x": x}
        assert not context.tracked
        return context.flow_run_name

    assert get_run_context() is None
    assert inspect_me(3).startswith("inspect-me-")
    assert get_run_context() is None


def test_a_flow_waits_for_the_tasks_it_submitted() -> None:
    finished: list[int] = []

    @task
    def slow(n: int) -> None:
        time.sleep(0.05)
        finished.append(n)

    @flow
    def fire_and_forget() -> None:
        for n in range(3):
            slow.submit(n)

    fire_and_forget()
    assert sorted(finished) == [0, 1, 2]
