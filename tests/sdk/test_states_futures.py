"""Returned states, ``return_state``, futures, ``wait_for`` and the argument annotations."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

import dockyard
from _support import RunningServer
from dockyard import flow, get_run_context, task
from dockyard.exceptions import FailedRun, UnfinishedRun
from dockyard.futures import FutureList, TaskFuture, as_completed, wait
from dockyard.states import Cancelled, Completed, Failed, Pending, State, StateType
from dockyard.utilities.annotations import allow_failure, quote, unmapped


def _run_id() -> uuid.UUID:
    context = get_run_context()
    assert context is not None and hasattr(context, "flow_run_id")
    return context.flow_run_id  # type: ignore[no-any-return]


# ---------------------------------------------------------------- returned states


def test_a_task_that_returns_a_failed_state_fails_without_raising_inside() -> None:
    @task
    def load() -> State:
        return Failed(message="no rows")

    @flow
    def pipeline() -> tuple[State, str]:
        state = load(return_state=True)
        with pytest.raises(FailedRun, match="no rows"):
            load()
        return state, "went on"

    state, after = pipeline()
    assert state.is_failed() and state.message == "no rows"
    assert after == "went on"
    with pytest.raises(FailedRun, match="no rows"):
        state.result()


def test_a_task_that_returns_a_completed_state_gives_its_data() -> None:
    @task
    def with_data() -> State:
        return Completed(data=5)

    @task
    def without_data() -> State:
        return Completed(message="nothing to say")

    @flow
    def pipeline() -> tuple[Any, Any]:
        return with_data(), without_data()

    assert pipeline() == (5, None)


def test_a_task_cannot_end_in_a_state_that_is_not_final() -> None:
    @task
    def stuck() -> State:
        return Pending()

    @flow
    def pipeline() -> dict[str, State]:
        return {"state": stuck(return_state=True)}

    state = pipeline()["state"]
    assert state.is_failed() and "only end in a final one" in (state.message or "")


def test_return_state_gives_the_final_state_of_a_task_and_never_raises_its_failure() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def broken() -> None:
        raise LookupError("nope")

    @flow
    def pipeline() -> dict[str, State]:
        return {"done": double(4, return_state=True), "failed": broken(return_state=True)}

    states = pipeline()
    done, failed = states["done"], states["failed"]
    assert done.type is StateType.COMPLETED and done.result() == 8 and done.data == 8
    assert failed.is_failed() and failed.message == "LookupError: nope"
    with pytest.raises(LookupError, match="nope"):
        failed.result()
    assert isinstance(failed.result(raise_on_failure=False), LookupError)


async def test_return_state_of_async_tasks_and_flows() -> None:
    @task
    async def fetch(n: int) -> int:
        return n + 1

    @task
    async def broken() -> None:
        raise ValueError("bad")

    @flow
    async def pipeline() -> dict[str, State]:
        return {"done": await fetch(1, return_state=True), "bad": await broken(return_state=True)}

    state = await pipeline(return_state=True)
    assert state.is_completed()
    states = state.result()
    assert states["done"].result() == 2 and states["bad"].is_failed()


def test_return_state_gives_the_final_state_of_a_flow() -> None:
    @flow
    def fine(x: int) -> int:
        return x

    @flow
    def broken() -> None:
        raise KeyError("k")

    @flow
    def refused() -> State:
        return Failed(message="no rows")

    assert fine(3, return_state=True).result() == 3
    failed = broken(return_state=True)
    assert failed.is_failed()
    with pytest.raises(KeyError):
        failed.result()
    with pytest.raises(FailedRun, match="no rows"):
        refused()
    assert refused(return_state=True).message == "no rows"


def test_a_flow_that_returns_futures_ends_in_their_states() -> None:
    @task
    def check(x: int) -> int:
        if x < 0:
            raise ValueError(f"negative: {x}")
        return x

    @flow
    def all_good() -> list[TaskFuture[int]]:
        return [check.submit(1), check.submit(2)]

    @flow
    def one_bad() -> list[TaskFuture[int]]:
        return [check.submit(1), check.submit(-1)]

    states = all_good()
    assert [s.result() for s in states] == [1, 2]
    with pytest.raises(ValueError, match="negative: -1"):
        one_bad()
    final = one_bad(return_state=True)
    assert final.is_failed() and final.message == "1/2 states did not complete"


def test_returned_states_are_recorded(tracked: RunningServer) -> None:
    ids: list[uuid.UUID] = []

    @task
    def load() -> State:
        return Failed(message="no rows")

    @flow
    def nightly() -> State:
        ids.append(_run_id())
        load(return_state=True)
        return Failed(message="nothing loaded")

    @flow
    def stopped() -> State:
        ids.append(_run_id())
        return Cancelled(message="not today")

    assert nightly(return_state=True).is_failed()
    assert stopped(return_state=True).is_cancelled()
    with tracked.client() as client:
        run = client.read_flow_run(ids[0])
        [task_run] = client.list_task_runs(flow_run_id=ids[0])
        cancelled = client.read_flow_run(ids[1])
    assert (run.state, run.state_message) == ("FAILED", "nothing loaded")
    assert (task_run.state, task_run.error) == ("FAILED", "no rows")
    assert (cancelled.state, cancelled.state_message) == ("CANCELLED", "not today")


# ---------------------------------------------------------------- futures


def test_a_future_tells_its_state_without_waiting() -> None:
    release = threading.Event()

    @task
    def held() -> str:
        release.wait(30)
        return "done"

    @flow
    def pipeline() -> tuple[str, str]:
        future = held.submit()
        before = future.state
        assert not future.done()
        release.set()
        assert future.result() == "done"
        return before.name, future.state.name

    before, after = pipeline()
    assert before in ("Pending", "Running") and after == "Completed"


def test_result_waits_at_most_its_timeout() -> None:
    release = threading.Event()

    @task
    def held() -> None:
        release.wait(30)

    @flow
    def pipeline() -> bool:
        future = held.submit()
        try:
            with pytest.raises(TimeoutError, match=r"did not finish within 0\.05 s"):
                future.result(timeout=0.05)
            return future.wait(0)
        finally:
            release.set()

    assert pipeline() is False


def test_result_can_return_the_failure_instead() -> None:
    @task
    def broken() -> None:
        raise LookupError("nope")

    @flow
    def pipeline() -> Any:
        return broken.submit().result(raise_on_failure=False)

    assert isinstance(pipeline(), LookupError)


def test_wait_splits_finished_futures_from_the_others() -> None:
    release = threading.Event()

    @task
    def quick(x: int) -> int:
        return x

    @task
    def held() -> None:
        release.wait(30)

    @flow
    def pipeline() -> tuple[int, int, int]:
        done_ones = [quick.submit(i) for i in range(3)]
        stuck = held.submit()
        try:
            wait(done_ones)
            done, not_done = wait([*done_ones, stuck], timeout=0.05)
            return len(done), len(not_done), int(stuck in not_done)
        finally:
            release.set()

    assert pipeline() == (3, 1, 1)


def test_as_completed_yields_futures_as_they_finish() -> None:
    second = threading.Event()

    @task
    def first() -> str:
        return "first"

    @task
    def later() -> str:
        second.wait(30)
        return "later"

    @flow
    def pipeline() -> list[str]:
        futures = [later.submit(), first.submit()]
        seen = []
        for future in as_completed(futures, timeout=30):
            seen.append(future.result())
            second.set()
        return seen

    assert pipeline() == ["first", "later"]


def test_done_callbacks_get_the_future() -> None:
    called: list[TaskFuture[int]] = []

    @task
    def one() -> int:
        return 1

    @flow
    def pipeline() -> bool:
        future = one.submit()
        future.add_done_callback(called.append)
        future.wait()
        future.add_done_callback(called.append)  # already done: called at once
        return all(c is future for c in called)

    assert pipeline() and len(called) == 2


def test_a_future_list_waits_for_all_and_gives_their_results() -> None:
    @task
    def square(x: int) -> int:
        if x == 3:
            raise ValueError("three")
        return x * x

    @flow
    def pipeline() -> tuple[list[int], list[Any]]:
        futures = square.map([1, 2, 3])
        assert isinstance(futures, FutureList)
        futures.wait()
        assert all(f.done() for f in futures)
        with pytest.raises(ValueError, match="three"):
            futures.result()
        return square.map([1, 2]).result(), futures.result(raise_on_failure=False)

    values, with_failure = pipeline()
    assert values == [1, 4]
    assert with_failure[:2] == [1, 4] and isinstance(with_failure[2], ValueError)


def test_the_public_names() -> None:
    import dockyard.futures as public

    assert dockyard.unmapped is unmapped
    assert public.TaskFuture is dockyard.TaskFuture and public.FutureList is dockyard.FutureList
    assert not any("Prefect" in name for name in dir(public))


# ---------------------------------------------------------------- wait_for and upstream


def test_wait_for_runs_a_task_after_the_runs_it_names() -> None:
    order: list[str] = []
    gate = threading.Event()

    @task
    def first() -> None:
        gate.wait(30)
        order.append("first")

    @task
    def then(label: str) -> None:
        order.append(label)

    @flow
    def pipeline() -> None:
        upstream = first.submit()
        submitted = then.submit("submitted", wait_for=[upstream])
        gate.set()
        submitted.wait()
        then("called", wait_for=[upstream])
        then.map(["mapped"], wait_for=upstream).wait()

    pipeline()
    assert order == ["first", "submitted", "called", "mapped"]


def test_a_task_whose_upstream_failed_does_not_run() -> None:
    ran: list[int] = []

    @task
    def broken() -> int:
        raise ValueError("upstream broke")

    @task
    def use(x: int) -> int:
        ran.append(x)
        return x

    @flow
    def pipeline() -> dict[str, State]:
        failed = broken.submit()
        by_argument = use.submit(failed)
        by_wait_for = use.submit(1, wait_for=[failed])
        by_argument.wait()
        with pytest.raises(UnfinishedRun, match="did not run"):
            by_argument.result()
        with pytest.raises(UnfinishedRun, match="did not run"):
            use(failed)
        direct = use(2, wait_for=[failed], return_state=True)
        by_wait_for.wait()
        return {"argument": by_argument.state, "wait_for": by_wait_for.state, "direct": direct}

    for state in pipeline().values():
        assert state.type is StateType.PENDING and state.name == "NotReady"
        assert "did not complete" in (state.message or "")
    assert ran == []


def test_allow_failure_lets_a_task_run_with_the_upstream_exception() -> None:
    @task
    def broken() -> int:
        raise ValueError("upstream broke")

    @task
    def report(x: Any) -> str:
        return f"got {x!r}"

    @flow
    def pipeline() -> tuple[str, str, str]:
        failed = broken.submit()
        return (
            report(allow_failure(failed)),
            report("waited", wait_for=[allow_failure(failed)]),
            report.submit([allow_failure(failed)]).result(),
        )

    got, waited, in_list = pipeline()
    assert got == "got ValueError('upstream broke')"
    assert waited == "got 'waited'"
    assert in_list == "got [ValueError('upstream broke')]"


def test_quote_passes_a_value_as_is() -> None:
    @task
    def one() -> int:
        return 1

    @task
    def kind(value: Any) -> str:
        return type(value).__name__

    @flow
    def pipeline() -> tuple[str, str, list[str]]:
        future = one.submit()
        return kind(quote(future)), kind([future]), kind.map(quote([future, future])).result()

    assert pipeline() == ("TaskFuture", "list", ["TaskFuture", "TaskFuture"])


def test_states_passed_to_tasks_give_their_values() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def pipeline() -> int:
        three = add(1, 2, return_state=True)
        return add(three, unmapped(three))

    assert pipeline() == 6


def test_a_flow_waits_for_wait_for_and_does_not_run_after_a_failure() -> None:
    @task
    def broken() -> None:
        raise ValueError("no")

    @task
    def fine() -> int:
        return 1

    @flow
    def child() -> str:
        return "ran"

    @flow
    def parent() -> tuple[str, State]:
        ok = child(wait_for=[fine.submit()])
        failed = broken.submit()
        with pytest.raises(UnfinishedRun, match="flow 'child' did not run"):
            child(wait_for=[failed])
        return ok, child(wait_for=[failed], return_state=True)

    ok, not_ready = parent()
    assert ok == "ran" and not_ready.name == "NotReady"


def test_a_task_run_that_did_not_run_is_recorded_pending(tracked: RunningServer) -> None:
    @task
    def broken() -> None:
        raise ValueError("no")

    @task
    def after() -> None:
        pass

    @flow
    def pipeline() -> str:
        after.submit(wait_for=[broken.submit()]).wait()
        return str(_run_id())

    run_id = pipeline()
    with tracked.client() as client:
        task_runs = {t.name: t for t in client.list_task_runs(flow_run_id=run_id)}
        run = client.read_flow_run(run_id)
    assert run.state == "COMPLETED"
    assert task_runs["broken-0"].state == "FAILED"
    assert task_runs["after-0"].state == "PENDING"
    assert "did not complete" in (task_runs["after-0"].error or "")


# ---------------------------------------------------------------- run_deployment


def test_a_deployment_run_has_its_state_as_a_state() -> None:
    from dockyard.schemas import FlowRun
    from dockyard.sdk.deploy.deployment_runs import DeploymentFlowRun, _with_state

    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "bright-otter",
        "flow_id": uuid.uuid4(),
        "flow_name": "etl",
        "deployment_id": None,
        "deployment_name": None,
        "work_pool_name": None,
        "work_queue_name": None,
        "parent_flow_run_id": None,
        "parameters": {},
        "job_variables": {},
        "tags": [],
        "state_message": None,
        "scheduled_start": None,
        "start_time": now,
        "end_time": now,
        "created": now,
        "attempt": 1,
        "worker_name": None,
        "infrastructure_id": None,
        "lease_expires": None,
        "idempotency_key": None,
    }
    done = _with_state(FlowRun(**fields, state="COMPLETED", result={"rows": 3}))
    assert isinstance(done, DeploymentFlowRun) and done.name == "bright-otter"
    assert done.state.is_completed() and done.state.result() == {"rows": 3}
    assert done.state == "COMPLETED" and str(done.state) == "COMPLETED"
    assert done.model_dump(mode="json")["state"] == "COMPLETED"
    failed = _with_state(FlowRun(**{**fields, "state_message": "boom"}, state="FAILED"))
    assert failed.state.is_failed() and failed.state != "COMPLETED"
    with pytest.raises(FailedRun, match="boom"):
        failed.state.result()


def test_a_failure_raised_again_by_the_sdk_keeps_the_traceback_of_its_worker() -> None:
    """A task's function that failed in a worker process (or a cluster's worker) is raised
    again in the flow's process by the SDK itself: its traceback is the worker's, a note."""
    from dockyard.sdk.runtime.results import describe_failure

    error = ValueError("odd 3")
    error.add_note('in worker process 4242:\n  File "tasks.py", line 7, in explode')
    described = describe_failure(error)
    assert described.startswith("ValueError: odd 3\n\n")
    assert 'in worker process 4242:\n  File "tasks.py", line 7, in explode' in described
    assert describe_failure(ValueError("plain")) == "ValueError: plain"
