"""``pause_flow_run`` and ``resume_flow_run`` in flows called directly, against a real
server: typed input, input refused, the timeout, a cancel while paused, and the calls
refused outside a flow run."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from _support import RunningServer, wait_until
from dockyard import flow, task
from dockyard.exceptions import (
    Conflict,
    DockyardError,
    FlowRunAborted,
    InvalidInput,
    MissingContextError,
    NotFound,
)
from dockyard.flow_runs import (
    FlowPauseTimeout,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
)
from dockyard.input import RunInput


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the server's rules are tested on both databases in
    tests/server/test_pausing.py; these test the SDK's side."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


class Approval(RunInput):
    approved: bool
    note: str = Field("", description="why")


class Plain(BaseModel):
    size: int


def _paused(server: RunningServer, flow_name: str, key: str) -> Any:
    """The run of ``flow_name`` once it is PAUSED under ``key``."""

    def found() -> Any:
        with server.http() as http:
            runs = http.get("/flow-runs", params={"flow_name": flow_name}).json()
            for run in runs:
                pause = http.get(f"/flow-runs/{run['id']}/pause").json()
                if pause["state"] == "PAUSED" and pause["key"] == key:
                    return run
        return None

    return wait_until(found, 30, f"a run of {flow_name} paused under {key}")


def _in_thread(call: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def test_pause_and_resume_with_typed_input(tracked: RunningServer) -> None:
    @flow
    def approve() -> str:
        answer = pause_flow_run(wait_for_input=Approval, timeout=60)
        size = pause_flow_run(wait_for_input=Plain, timeout=60, key="size")
        count = pause_flow_run(wait_for_input=int, timeout=60)
        pause_flow_run(timeout=60)
        return f"{answer.approved}:{answer.note}:{size.size}:{count}"

    thread, outcome = _in_thread(approve)
    run = _paused(tracked, "approve", "pause-1")
    with pytest.raises(InvalidInput) as refused:
        resume_flow_run(run["id"], {"approved": "maybe"})
    assert refused.value.field == "run_input.approved"
    with pytest.raises(InvalidInput) as extra:
        resume_flow_run(run["id"], {"approved": True, "typo": 1})  # a RunInput forbids extras
    assert extra.value.field == "run_input"
    with tracked.client() as client:
        assert client.read_flow_run(run["id"]).state == "PAUSED"
        with tracked.http() as http:
            schema = http.get(f"/flow-runs/{run['id']}/pause").json()["input_schema"]
        assert schema["properties"]["note"]["description"] == "why"
        client.resume_flow_run(run["id"], {"approved": True, "note": "ship it"})
    _paused(tracked, "approve", "size")
    resume_flow_run(uuid.UUID(run["id"]), {"size": 3})
    _paused(tracked, "approve", "pause-2")
    resume_flow_run(run["id"], {"value": 7})
    _paused(tracked, "approve", "pause-3")
    resume_flow_run(run["id"])
    thread.join(30)
    assert outcome == ["True:ship it:3:7"]
    with tracked.client() as client:
        done = client.read_flow_run(run["id"])
        assert done.state == "COMPLETED"
        history = [s.type for s in client.read_flow_run_states(run["id"])]
    assert history == ["RUNNING", *["PAUSED", "RUNNING"] * 4, "COMPLETED"]
    with pytest.raises(Conflict) as late:
        resume_flow_run(run["id"], {"value": 1})
    assert late.value.current_state == "COMPLETED"
    with tracked.client() as client:
        messages = [log.message for log in client.read_logs(flow_run_id=run["id"])]
    assert any("paused: waiting up to 60 s to be resumed" in m for m in messages)


def test_a_pause_past_its_timeout_fails_the_run(tracked: RunningServer) -> None:
    @flow(retries=2)  # a pause that timed out is not tried again
    def forgotten() -> None:
        pause_flow_run(timeout=1)

    with pytest.raises(FlowPauseTimeout, match="paused for more than 1 s without being resumed"):
        forgotten()
    with tracked.client() as client:
        (run,) = client.list_flow_runs(flow_name="forgotten")
        assert run.state == "FAILED"
        assert "paused for more than 1 s without being resumed" in (run.state_message or "")
        history = [s.type for s in client.read_flow_run_states(run.id)]
    assert history == ["RUNNING", "PAUSED", "FAILED"]


def test_a_cancel_stops_a_paused_async_flow(tracked: RunningServer) -> None:
    @flow
    async def waiting() -> None:
        await pause_flow_run(timeout=60)

    thread, outcome = _in_thread(lambda: asyncio.run(waiting()))
    run = _paused(tracked, "waiting", "pause-1")
    with tracked.client() as client:
        assert client.cancel_flow_run(run["id"]).state == "CANCELLING"
        thread.join(30)
        assert isinstance(outcome[0], FlowRunAborted)
        ended = client.read_flow_run(run["id"])
    assert ended.state == "CANCELLED"


def test_the_calls_say_where_they_belong(tracked: RunningServer) -> None:
    with pytest.raises(MissingContextError, match="inside a flow run"):
        pause_flow_run()
    with pytest.raises(MissingContextError, match="inside a flow run"):
        suspend_flow_run()

    @task
    def in_a_task() -> None:
        pause_flow_run()

    @flow
    def direct() -> None:
        with pytest.raises(DockyardError, match="has no deployment"):
            suspend_flow_run()
        with pytest.raises(MissingContextError, match="inside a task run"):
            in_a_task()

    direct()
    with pytest.raises(NotFound):
        resume_flow_run(uuid.uuid4())
