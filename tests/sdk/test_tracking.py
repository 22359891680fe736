"""What the SDK reports, checked with a stub of the server calls (``recorder``)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import pytest
from sdk_stub import Recorded

from dockyard import flow, get_logger, get_run_context, task
from dockyard.exceptions import FlowRunAborted, ParameterValidationError
from dockyard.sdk.runtime.context import FlowRunContext
from dockyard.sdk.runtime.results import MAX_RESULT_BYTES


def test_a_flow_run_goes_running_then_completed_with_its_result(recorder: Recorded) -> None:
    @flow(tags=["nightly"])
    def add(x: int, y: int = 2) -> dict[str, int]:
        return {"sum": x + y}

    assert add(1) == {"sum": 3}
    [run] = recorder.runs
    assert run["flow_name"] == "add"
    assert run["parameters"] == {"x": 1, "y": 2}
    assert run["tags"] == ["nightly"]
    assert run["parent_flow_run_id"] is None
    [state] = recorder.of("state")
    assert state["state"] == "COMPLETED"
    assert state["result"] == {"sum": 3}
    assert state["lease_token"] is not None


def test_results_that_are_not_json_or_too_big_are_summarised(recorder: Recorded) -> None:
    @flow
    def returns(kind: str) -> Any:
        return {"object": object(), "big": "x" * (MAX_RESULT_BYTES + 1)}[kind]

    returns("object")
    returns("big")
    first, second = (s["result"] for s in recorder.of("state"))
    assert first["type"] == "builtins.object" and first["repr"].startswith("<object")
    assert second["type"] == "builtins.str" and len(second["repr"]) <= 210


def test_a_failure_is_reported_with_type_message_and_traceback(recorder: Recorded) -> None:
    @flow
    def broken() -> None:
        def deeper() -> None:
            raise ValueError("the input was bad")

        deeper()

    with pytest.raises(ValueError):
        broken()
    [state] = recorder.of("state")
    assert state["state"] == "FAILED"
    message = state["message"]
    assert message.startswith("ValueError: the input was bad\n\nTraceback")
    assert "in deeper" in message
    assert "dockyard/sdk" not in message  # the SDK's own frames are left out


def test_a_bad_parameter_fails_the_run_before_the_flow_starts(recorder: Recorded) -> None:
    @flow
    def typed(n: int) -> int:
        return n

    with pytest.raises(ParameterValidationError):
        typed("x")  # type: ignore[arg-type]
    [state] = recorder.of("state")
    assert state["state"] == "FAILED"
    assert state["message"].startswith("ParameterValidationError: flow 'typed'")
    assert "parameter 'n'" in state["message"]


def test_flow_retries_are_awaiting_retry_then_running(recorder: Recorded) -> None:
    attempts: list[int] = []

    @flow(retries=1)
    def flaky() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first")

    flaky()
    assert recorder.states() == ["AWAITING_RETRY", "RUNNING", "COMPLETED"]


def test_one_record_per_task_run_sent_before_the_final_state(recorder: Recorded) -> None:
    @task(retries=2, tags=["io"])
    def flaky(state: dict[str, int]) -> int:
        state["n"] += 1
        if state["n"] < 3:
            raise OSError("again")
        return state["n"]

    @task
    def fails() -> None:
        raise KeyError("k")

    @flow
    def run() -> None:
        flaky({"n": 0})
        for _ in range(5):
            flaky.submit({"n": 2})
        with contextlib.suppress(KeyError):
            fails()

    run()
    records = recorder.task_runs
    assert len(records) == 7
    assert len({r["id"] for r in records}) == 7
    by_name = {r["name"]: r for r in records}
    assert by_name["flaky-0"]["attempts"] == 3 and by_name["flaky-0"]["tags"] == ["io"]
    assert by_name["flaky-0"]["state"] == "COMPLETED"
    assert by_name["fails-0"]["state"] == "FAILED"
    assert by_name["fails-0"]["error"].startswith("KeyError: 'k'")
    assert all(r["flow_run_id"] == str(recorder.runs[0]["id"]) for r in records)
    assert all(r["start_time"] <= r["end_time"] for r in records)
    kinds = [kind for kind, _ in recorder.events]
    assert kinds.index("state") > max(i for i, k in enumerate(kinds) if k == "task_runs")


def test_subflows_are_recorded_with_their_parent(recorder: Recorded) -> None:
    @flow
    def child() -> int:
        return 1

    @flow
    def parent() -> int:
        return child() + child()

    parent()
    outer, first, second = recorder.runs
    assert outer["flow_name"] == "parent" and outer["parent_flow_run_id"] is None
    assert first["parent_flow_run_id"] == outer["id"] == second["parent_flow_run_id"]
    assert recorder.states(first["id"]) == ["COMPLETED"]
    assert recorder.states(outer["id"]) == ["COMPLETED"]


def test_log_prints_and_get_logger_ship_to_the_run(
    recorder: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    @task
    def shout(word: str) -> None:
        print(word.upper())
        get_logger().warning("from the task")

    @task(log_prints=False)
    def quiet() -> None:
        print("not shipped")

    @flow(log_prints=True)
    def talk() -> None:
        print("hello", "world", sep=", ")
        get_logger().info("from the flow")
        shout("hey")
        quiet()

    talk()
    assert "hello, world\nHEY\nnot shipped\n" in capsys.readouterr().out
    logs = recorder.logs
    messages = [log["message"] for log in logs]
    for expected in ("hello, world", "from the flow", "HEY", "from the task"):
        assert expected in messages
    assert "not shipped" not in messages
    run_id = str(recorder.runs[0]["id"])
    assert all(log["flow_run_id"] == run_id for log in logs)
    task_logs = [log for log in logs if log["message"] in ("HEY", "from the task")]
    assert all(log["task_run_id"] == recorder.task_runs[0]["id"] for log in task_logs)
    assert {log["level"] for log in task_logs} == {logging.INFO, logging.WARNING}


def test_prints_are_not_shipped_without_log_prints(recorder: Recorded) -> None:
    @flow
    def talk() -> None:
        print("just printed")

    talk()
    assert "just printed" not in [log["message"] for log in recorder.logs]


def test_get_logger_outside_a_run_is_a_plain_logger(recorder: Recorded) -> None:
    logger = get_logger()
    logger.info("nobody ships this")
    assert recorder.events == []


def test_a_refused_transition_aborts_the_flow(recorder: Recorded) -> None:
    recorder.refuse.add("COMPLETED")

    @flow
    def fenced() -> int:
        return 1

    with pytest.raises(FlowRunAborted, match="refused COMPLETED"):
        fenced()
    assert recorder.states() == []


def test_an_aborted_run_stops_at_its_next_task(recorder: Recorded) -> None:
    ran: list[int] = []

    @task
    def step(n: int) -> None:
        ran.append(n)
        if n == 1:
            context = get_run_context()
            assert context is not None and not isinstance(context, FlowRunContext)
            assert context.flow_run is not None
            context.flow_run.handle.abort("the lease was lost")

    @flow
    def long() -> None:
        for n in range(5):
            step(n)

    with pytest.raises(FlowRunAborted, match="the lease was lost"):
        long()
    assert ran == [0, 1]
    assert recorder.states() == []


def test_ten_thousand_prints_all_reach_the_tracker(recorder: Recorded) -> None:
    @flow(log_prints=True)
    def chatty() -> None:
        for i in range(10_000):
            print(f"line {i}")

    chatty()
    lines = [log["message"] for log in recorder.logs if log["message"].startswith("line ")]
    assert lines == [f"line {i}" for i in range(10_000)]


def test_prints_from_threads_without_a_run_are_not_shipped(recorder: Recorded) -> None:
    @flow(log_prints=True)
    def with_thread() -> None:
        thread = threading.Thread(target=print, args=("from a bare thread",))
        thread.start()
        thread.join()

    with_thread()
    assert "from a bare thread" not in [log["message"] for log in recorder.logs]


def test_running_flows_renew_their_leases(
    recorder: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_HEARTBEAT_SECONDS", "0.05")

    @flow
    def child() -> None:
        time.sleep(0.3)

    @flow
    def parent() -> None:
        time.sleep(0.3)
        child()

    parent()
    renewed = {r["run_id"] for r in recorder.of("renew")}
    assert renewed == {run["id"] for run in recorder.runs}
    renewals = len(recorder.of("renew"))
    time.sleep(0.2)
    assert len(recorder.of("renew")) == renewals  # none once the flow has returned


@pytest.mark.parametrize(
    ("refuse", "answer", "reported"),
    [({"renew"}, "RUNNING", []), (set(), "CANCELLING", ["CANCELLED"])],
)
def test_a_refused_renewal_or_a_cancel_stops_the_flow(
    recorder: Recorded,
    monkeypatch: pytest.MonkeyPatch,
    refuse: set[str],
    answer: str,
    reported: list[str],
) -> None:
    """Fenced off, the run reports nothing more; cancelled, it reports CANCELLED."""
    monkeypatch.setenv("DOCKYARD_HEARTBEAT_SECONDS", "0.05")
    recorder.refuse |= refuse
    recorder.renew_answer = answer
    ran: list[int] = []

    @task
    def step(n: int) -> None:
        ran.append(n)
        time.sleep(0.05)

    @flow
    def long() -> None:
        for n in range(100):
            step(n)

    with pytest.raises(FlowRunAborted):
        long()
    assert 0 < len(ran) < 100
    assert recorder.states() == reported
