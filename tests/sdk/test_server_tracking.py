"""Flows tracked by a real server: runs, states, task runs and logs are all recorded."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from _support import RunningServer
from dockyard import flow, get_logger, get_run_context, task
from dockyard.exceptions import FlowRunAborted, Unauthorized


def _logs(server: RunningServer, run_id: uuid.UUID) -> list[Any]:
    found: list[Any] = []
    with server.client() as client:
        while True:
            after = found[-1].id if found else None
            page = client.read_logs(flow_run_id=run_id, after_id=after, limit=1000)
            if not page:
                return found
            found.extend(page)


def _run_id() -> uuid.UUID:
    context = get_run_context()
    assert context is not None and hasattr(context, "flow_run_id")
    return context.flow_run_id  # type: ignore[no-any-return]


def test_a_flow_run_with_its_task_runs_and_logs_is_recorded(
    tracked: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    @task(retries=1)
    def add(x: int, y: int) -> int:
        return x + y

    @flow(log_prints=True)
    def pipeline(n: int = 3) -> dict[str, Any]:
        get_logger().info("starting")
        total = sum(add.map(range(n), 1).result()) + add(1, 1)
        print(f"total {total}")
        return {"total": total, "run": str(_run_id())}

    result = pipeline(3)
    assert result["total"] == 8
    assert "untracked" not in capsys.readouterr().err
    run_id = uuid.UUID(result["run"])
    with tracked.client() as client:
        run = client.read_flow_run(run_id)
        assert run.flow_name == "pipeline" and run.state == "COMPLETED"
        assert run.parameters == {"n": 3}
        assert run.result == result
        assert run.start_time is not None and run.end_time is not None
        assert [s.type for s in client.read_flow_run_states(run_id)] == ["RUNNING", "COMPLETED"]
        task_runs = client.list_task_runs(flow_run_id=run_id)
    assert sorted(t.name for t in task_runs) == ["add-0", "add-1", "add-2", "add-3"]
    assert {t.state for t in task_runs} == {"COMPLETED"}
    assert all(t.attempts == 1 and t.start_time <= t.end_time for t in task_runs)  # type: ignore[operator]
    messages = [log.message for log in _logs(tracked, run_id)]
    assert "starting" in messages and "total 8" in messages
    assert messages[-1] == "finished in state COMPLETED"


def test_a_failed_flow_is_recorded_with_its_traceback(tracked: RunningServer) -> None:
    ids: list[uuid.UUID] = []

    @task
    def explode() -> None:
        raise ZeroDivisionError("no way")

    @flow
    def doomed() -> None:
        ids.append(_run_id())
        explode()

    with pytest.raises(ZeroDivisionError):
        doomed()
    with tracked.client() as client:
        run = client.read_flow_run(ids[0])
        [task_run] = client.list_task_runs(flow_run_id=ids[0])
    assert run.state == "FAILED"
    assert run.state_message is not None
    assert run.state_message.startswith("ZeroDivisionError: no way")
    assert "in explode" in run.state_message
    assert task_run.state == "FAILED" and task_run.error is not None
    assert task_run.error.startswith("ZeroDivisionError: no way")


def test_a_subflow_records_its_parent(tracked: RunningServer) -> None:
    @flow
    def child() -> str:
        return str(_run_id())

    @flow
    def parent() -> tuple[str, str]:
        return str(_run_id()), child()

    parent_id, child_id = parent()
    with tracked.client() as client:
        assert client.read_flow_run(child_id).parent_flow_run_id == uuid.UUID(parent_id)
        assert client.read_flow_run(parent_id).parent_flow_run_id is None


async def test_an_async_flow_is_recorded(tracked: RunningServer) -> None:
    @task
    async def wait(n: int) -> int:
        await asyncio.sleep(0.01)
        return n

    @flow
    async def waiting() -> str:
        await asyncio.gather(wait(1), wait(2))
        return str(_run_id())

    run_id = await waiting()
    with tracked.client() as client:
        assert client.read_flow_run(run_id).state == "COMPLETED"
        assert len(client.list_task_runs(flow_run_id=run_id)) == 2


def test_nothing_is_lost_when_a_flow_prints_ten_thousand_lines(tracked: RunningServer) -> None:
    @flow(log_prints=True)
    def chatty() -> str:
        for i in range(10_000):
            print(f"line {i}")
        return str(_run_id())

    run_id = chatty()
    printed = [log.message for log in _logs(tracked, uuid.UUID(run_id)) if log.name != "stdout"]
    lines = [m for m in printed if m.startswith("line ")]
    assert len(lines) == 10_000
    assert lines == [f"line {i}" for i in range(10_000)]


@pytest.mark.parametrize("server", [{"DOCKYARD_SERVER_MAX_BODY_BYTES": "1048576"}], indirect=True)
def test_long_lines_are_sent_in_batches_the_server_takes(tracked: RunningServer) -> None:
    """Batches are cut by size as well as by count: a thousand long lines outside ASCII (6
    JSON bytes a character) would be tens of MB in one request, far over the server's
    smallest body limit, and refused."""
    line = "é" * 9_000

    @flow
    def wordy() -> str:
        logger = get_logger()
        for i in range(300):
            logger.info("%d %s", i, line)
        return str(_run_id())

    run_id = wordy()
    stored = [log.message for log in _logs(tracked, uuid.UUID(run_id))]
    assert [m for m in stored if m.endswith(line)] == [f"{i} {line}" for i in range(300)]


@pytest.mark.parametrize(
    "server", [{"DOCKYARD_SERVER_API_KEY": "s3cret-key-of-the-tracking-tests"}], indirect=True
)
def test_a_server_that_wants_a_key_refuses_a_flow_without_one(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    @flow
    def guarded() -> str:
        return str(_run_id())

    with pytest.raises(Unauthorized):
        guarded()
    monkeypatch.setenv("DOCKYARD_API_KEY", "s3cret-key-of-the-tracking-tests")
    run_id = guarded()
    with tracked.client() as client:
        assert client.read_flow_run(run_id).state == "COMPLETED"


# The flow outlives two leases; renewals every 0.5 s leave a wide margin on a busy machine.
@pytest.mark.parametrize("server", [{"DOCKYARD_LEASE_SECONDS": "4"}], indirect=True)
def test_a_long_flow_keeps_its_lease(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_HEARTBEAT_SECONDS", "0.5")

    @flow
    def long() -> str:
        time.sleep(9)
        return str(_run_id())

    run_id = long()
    with tracked.client() as client:
        states = [s.type for s in client.read_flow_run_states(run_id)]
    assert states == ["RUNNING", "COMPLETED"]


@pytest.mark.parametrize("server", [{"DOCKYARD_LEASE_SECONDS": "1"}], indirect=True)
def test_a_flow_whose_lease_expired_stops_without_reporting(
    tracked: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_HEARTBEAT_SECONDS", "60")  # never renewed in time
    ids: list[uuid.UUID] = []

    @flow
    def stale() -> None:
        ids.append(_run_id())
        time.sleep(6)  # several reaper rounds past the 1 s lease

    with pytest.raises(FlowRunAborted):
        stale()
    with tracked.client() as client:
        run = client.read_flow_run(ids[0])
    assert run.state == "CRASHED" and run.state_message is not None
    assert "lease expired" in run.state_message
