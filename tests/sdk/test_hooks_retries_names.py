"""State hooks, retries (delays, backoff, jitter, conditions), run names, tags, options."""

from __future__ import annotations

import asyncio
import datetime
import inspect
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sdk_stub import Recorded

from _support import RunningServer
from dockyard import Flow, Task, flow, get_logger, get_run_context, task
from dockyard.exceptions import FlowRunAborted
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate
from dockyard.sdk.options import jittered
from dockyard.sdk.runtime import task_runs
from dockyard.sdk.runtime.context import FlowRunContext, TaskRunContext
from dockyard.sdk.runtime.states import State
from dockyard.sdk.runtime.tags import tags
from dockyard.tasks import exponential_backoff

Seen = list[tuple[str, str, str]]


def _recorder(seen: Seen, label: str) -> Any:
    """A hook that records (label, run name, state name)."""

    def hook(definition: Any, run: Any, state: State) -> None:
        assert isinstance(state, State)
        seen.append((label, run.name, state.name))

    hook.__name__ = label
    return hook


def _flow_context() -> FlowRunContext:
    context = get_run_context()
    assert isinstance(context, FlowRunContext)
    return context


def _task_context() -> TaskRunContext:
    context = get_run_context()
    assert isinstance(context, TaskRunContext)
    return context


def _logs(server: RunningServer, run_id: uuid.UUID) -> list[str]:
    with server.client() as client:
        return [log.message for log in client.read_logs(flow_run_id=run_id, limit=1000)]


# ---------------------------------------------------------------- names and options


def test_a_task_is_named_after_its_function_as_written_a_flow_with_dashes() -> None:
    @task
    def fetch_page() -> None: ...

    @flow
    def get_repo_info() -> None: ...

    assert fetch_page.name == "fetch_page"
    assert get_repo_info.name == "get-repo-info"


@pytest.mark.parametrize(("decorator", "cls"), [(flow, Flow), (task, Task)])
def test_with_options_takes_every_keyword_of_the_decorator(decorator: Any, cls: Any) -> None:
    def keywords(fn: Any) -> set[str]:
        params = inspect.signature(fn).parameters.values()
        return {p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}

    assert keywords(decorator) == keywords(cls.__init__)

    def fn() -> None: ...

    defined = decorator(fn)
    assert set(defined._given) == keywords(cls.__init__)
    for name, value in defined._options().items():
        copy = defined.with_options(**{name: value})
        assert copy._options() == defined._options()
    with pytest.raises(TypeError, match=r"unknown .* option"):
        defined.with_options(retires=3)


def test_with_options_keeps_hooks_added_by_decorator_and_replaces_tags() -> None:
    seen: Seen = []

    @task(tags=["a"])
    def step() -> int:
        return 1

    step.on_completion(_recorder(seen, "done"))
    copy = step.with_options(tags=["b"], name="other")
    assert copy.tags == ("b",) and copy.name == "other"
    assert [hook.__name__ for hook in copy.on_completion_hooks] == ["done"]
    assert step.tags == ("a",) and step.name == "step"


def test_a_task_run_name_template_and_function() -> None:
    @task(task_run_name="fetch-{url}-{page}")
    def fetch(url: str, page: int = 1) -> str:
        return _task_context().task_run_name

    def named() -> str:
        return f"double-{_task_context().parameters['x']}"

    @task(task_run_name=named)
    def double(x: int) -> str:
        return _task_context().task_run_name

    @flow
    def run() -> list[str]:
        return [fetch("a.com"), fetch("b.com", page=2), double(21)]

    assert run() == ["fetch-a.com-1", "fetch-b.com-2", "double-21"]


def test_a_task_run_name_that_names_no_parameter_stops_the_call() -> None:
    ran: list[int] = []

    @task(task_run_name="fetch-{nope}")
    def fetch(url: str) -> None:
        ran.append(1)

    with pytest.raises(ValueError, match=r"'nope'.*not one of its parameters"):
        fetch("x")
    assert ran == []


def test_a_flow_run_name_template_uses_validated_parameters() -> None:
    @flow(flow_run_name="hello-{name}-on-{date:%A}")
    def greet(name: str, date: datetime.datetime) -> str:
        return _flow_context().flow_run_name

    assert greet("marvin", "2024-01-01T00:00:00") == "hello-marvin-on-Monday"  # type: ignore[arg-type]


def test_a_flow_run_name_function_sees_the_run_it_names() -> None:
    def name_it() -> str:
        context = _flow_context()
        return f"{context.flow.name}-{context.parameters['n']}"

    @flow(flow_run_name=name_it)
    def counted(n: int) -> str:
        return _flow_context().flow_run_name

    assert counted(7) == "counted-7"


def test_flow_and_task_run_names_are_recorded(tracked: RunningServer) -> None:
    @task(task_run_name="step-{i}")
    def step(i: int) -> int:
        return i

    @flow(flow_run_name="batch-{size}")
    def batch(size: int) -> str:
        for i in range(size):
            step(i)
        return str(_flow_context().flow_run_id)

    run_id = uuid.UUID(batch(2))
    with tracked.client() as client:
        assert client.read_flow_run(run_id).name == "batch-2"
        names = sorted(t.name for t in client.list_task_runs(flow_run_id=run_id))
    assert names == ["step-0", "step-1"]


def test_a_bad_flow_run_name_makes_no_run(tracked: RunningServer) -> None:
    @flow(flow_run_name="run/{x}")
    def slashed(x: int) -> None: ...

    with pytest.raises(ValueError, match="flow_run_name"):
        slashed(1)
    with tracked.client() as client:
        assert client.list_flow_runs(flow_name="slashed") == []


# ---------------------------------------------------------------- tags


def test_tags_blocks_nest_and_add_to_the_runs_own(tracked: RunningServer) -> None:
    @task(tags=["io"])
    def load() -> list[str]:
        return list(_task_context().tags)

    @flow(tags=["etl"])
    def pipeline() -> dict[str, Any]:
        with tags("inner") as current:
            inside = load()
        return {
            "run": str(_flow_context().flow_run_id),
            "flow": list(_flow_context().tags),
            "task": inside,
            "current": sorted(current),
            "outside": load(),
        }

    with tags("outer", "etl"):
        result = pipeline()
    assert result["flow"] == ["etl", "outer"]
    assert result["task"] == ["io", "outer", "etl", "inner"]
    assert result["current"] == ["etl", "inner", "outer"]
    assert result["outside"] == ["io", "outer", "etl"]
    run_id = uuid.UUID(result["run"])
    with tracked.client() as client:
        assert client.read_flow_run(run_id).tags == ["etl", "outer"]
        recorded = {tuple(t.tags) for t in client.list_task_runs(flow_run_id=run_id)}
    assert recorded == {("io", "outer", "etl", "inner"), ("io", "outer", "etl")}


def test_tags_must_be_strings() -> None:
    with pytest.raises(ValueError, match="strings"):
        tags("a", 1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- retries


def test_exponential_backoff_doubles_the_delay() -> None:
    assert exponential_backoff(2)(4) == [2.0, 4.0, 8.0, 16.0]

    @task(retries=3, retry_delay_seconds=exponential_backoff(10))
    def patient() -> None: ...

    assert patient.retry_delay_seconds == (10.0, 20.0, 40.0)
    assert patient.with_options(retries=1).retry_delay_seconds == (10.0,)


def test_jitter_moves_each_delay_within_its_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = [jittered(10.0, 0.5) for _ in range(200)]
    assert all(5.0 <= d <= 15.0 for d in draws) and len(set(draws)) > 1
    assert all(0.0 <= jittered(10.0, 3) <= 40.0 for _ in range(200))

    slept: list[float] = []
    monkeypatch.setattr(task_runs.time, "sleep", slept.append)

    @task(retries=3, retry_delay_seconds=[1, 2, 4], retry_jitter_factor=0.25)
    def flaky() -> None:
        raise ConnectionError("again")

    with pytest.raises(ConnectionError):
        flaky()
    assert len(slept) == 3
    for delay, base in zip(slept, [1, 2, 4], strict=True):
        assert base * 0.75 <= delay <= base * 1.25


def test_retry_condition_decides_whether_to_retry() -> None:
    asked: list[tuple[str, int, str]] = []

    def only_timeouts(task: Task[..., Any], task_run: Any, state: State) -> bool:
        assert state.is_failed()
        try:
            state.result()
        except TimeoutError:
            asked.append((task.name, task_run.run_count, "retry"))
            return True
        except Exception:
            asked.append((task.name, task_run.run_count, "stop"))
            return False
        return False

    errors = iter([TimeoutError("slow"), TimeoutError("slow"), KeyError("gone")])

    @task(retries=5, retry_condition_fn=only_timeouts)
    def call() -> None:
        raise next(errors)

    @flow
    def run() -> None:
        call()

    with pytest.raises(KeyError):
        run()
    assert asked == [("call", 1, "retry"), ("call", 2, "retry"), ("call", 3, "stop")]


def test_a_retry_condition_that_raises_stops_the_retries() -> None:
    attempts: list[int] = []

    def broken(task: Any, task_run: Any, state: State) -> bool:
        raise RuntimeError("condition broke")

    @task(retries=3, retry_condition_fn=broken)
    def once() -> None:
        attempts.append(1)
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        once()
    assert attempts == [1]


def test_run_count_counts_the_attempts_of_tasks_and_flows() -> None:
    task_counts: list[int] = []
    flow_counts: list[int] = []

    @task(retries=2)
    def flaky() -> None:
        task_counts.append(_task_context().run_count)
        if len(task_counts) < 3:
            raise ConnectionError("again")

    @flow(retries=1)
    def run() -> None:
        flow_counts.append(_flow_context().run_count)
        flaky()
        if len(flow_counts) < 2:
            raise ValueError("once more")

    run()
    assert task_counts == [1, 2, 3]
    assert flow_counts == [1, 2]


# ---------------------------------------------------------------- task hooks


def test_task_hooks_fire_once_per_state_change() -> None:
    seen: Seen = []
    attempts: list[int] = []

    @task(
        retries=2,
        task_run_name="work",
        on_running=[_recorder(seen, "running")],
        on_failure=[_recorder(seen, "failure")],
        on_completion=[_recorder(seen, "completion")],
    )
    def work(fail_times: int) -> int:
        attempts.append(1)
        if len(attempts) <= fail_times:
            raise ConnectionError("again")
        return len(attempts)

    @flow
    def run(fail_times: int) -> int:
        return work(fail_times)

    assert run(1) == 2
    assert seen == [
        ("running", "work", "Running"),
        ("running", "work", "Retrying"),
        ("completion", "work", "Completed"),
    ]
    seen.clear()
    attempts.clear()
    with pytest.raises(ConnectionError):
        run(5)
    assert seen == [
        ("running", "work", "Running"),
        ("running", "work", "Retrying"),
        ("running", "work", "Retrying"),
        ("failure", "work", "Failed"),
    ]


def test_task_hook_decorators_get_the_task_run_and_its_state() -> None:
    got: dict[str, Any] = {}

    @task(tags=["t"])
    def add(x: int, y: int = 2) -> int:
        return x + y

    @add.on_completion
    def done(task: Task[..., Any], task_run: Any, state: State) -> None:
        got.update(
            task=task,
            name=task_run.name,
            parameters=task_run.parameters,
            tags=task_run.tags,
            id=task_run.id,
            result=state.result(),
        )

    @add.on_failure
    def failed(task: Task[..., Any], task_run: Any, state: State) -> None:
        got["error"] = state.result(raise_on_failure=False)

    @flow
    def run() -> int:
        return add(1)

    assert run() == 3
    assert got["task"] is add and got["name"] == "add-0"
    assert got["parameters"] == {"x": 1, "y": 2} and got["tags"] == ["t"]
    assert isinstance(got["id"], uuid.UUID) and got["result"] == 3
    with pytest.raises(TypeError):
        add("a")  # type: ignore[arg-type]
    assert isinstance(got["error"], TypeError)


def test_a_failing_hook_is_logged_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    seen: Seen = []

    def broken(task: Any, task_run: Any, state: State) -> None:
        raise RuntimeError("hook broke")

    @task(on_completion=[broken, _recorder(seen, "after")])
    def fine() -> str:
        return "ok"

    @flow(on_completion=[broken])
    def run() -> str:
        return fine()

    with caplog.at_level("ERROR", logger="dockyard"):
        assert run() == "ok"
    assert seen == [("after", "fine-0", "Completed")]
    failures = [r for r in caplog.records if "hook 'broken' failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info and r.exc_info[0] is RuntimeError for r in failures)


def test_async_hooks_of_async_tasks_and_flows_are_awaited() -> None:
    seen: Seen = []

    async def later(definition: Any, run: Any, state: State) -> None:
        await asyncio.sleep(0)
        seen.append((definition.name, run.name, state.name))

    @task(on_completion=[later])
    async def fetch() -> int:
        return 1

    @flow(on_completion=[later], flow_run_name="async-run")
    async def run() -> int:
        return await fetch()

    assert asyncio.run(run()) == 1
    assert seen == [("fetch", "fetch-0", "Completed"), ("run", "async-run", "Completed")]


# ---------------------------------------------------------------- flow hooks


def test_flow_hooks_fire_for_running_retrying_and_the_final_state() -> None:
    seen: Seen = []
    attempts: list[int] = []

    @flow(
        retries=1,
        flow_run_name="nightly",
        on_running=[_recorder(seen, "running")],
        on_failure=[_recorder(seen, "failure")],
        on_completion=[_recorder(seen, "completion")],
    )
    def nightly(fail: bool) -> None:
        attempts.append(1)
        if fail:
            raise ValueError("no data")

    nightly(False)
    assert seen == [("running", "nightly", "Running"), ("completion", "nightly", "Completed")]
    seen.clear()
    with pytest.raises(ValueError):
        nightly(True)
    assert seen == [
        ("running", "nightly", "Running"),
        ("running", "nightly", "Retrying"),
        ("failure", "nightly", "Failed"),
    ]


def test_a_flow_hook_gets_the_flow_run() -> None:
    got: dict[str, Any] = {}

    @flow(tags=["x"])
    def run(n: int = 1) -> str:
        return str(_flow_context().flow_run_id)

    @run.on_completion
    def done(flow: Flow[..., Any], flow_run: Any, state: State) -> None:
        got.update(flow=flow, id=flow_run.id, parameters=flow_run.parameters, tags=flow_run.tags)
        got["result"] = state.result()

    run_id = run()
    assert got["flow"] is run and str(got["id"]) == run_id
    assert got["parameters"] == {"n": 1} and got["tags"] == ["x"]
    assert got["result"] == run_id


def test_an_interrupted_flow_calls_its_crashed_hooks() -> None:
    seen: Seen = []

    class Interrupt(BaseException):
        pass

    @flow(flow_run_name="doomed", on_crashed=[_recorder(seen, "crashed")])
    def doomed() -> None:
        raise Interrupt

    @doomed.on_failure
    def not_this(flow: Any, flow_run: Any, state: State) -> None:
        seen.append(("failure", flow_run.name, state.name))

    with pytest.raises(Interrupt):
        doomed()
    assert seen == [("crashed", "doomed", "Crashed")]


def test_a_cancelled_flow_calls_its_cancellation_hooks(
    recorder: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_HEARTBEAT_SECONDS", "0.05")
    recorder.renew_answer = "CANCELLING"
    seen: Seen = []

    @task
    def step() -> None:
        time.sleep(0.05)

    @flow(on_cancellation=[_recorder(seen, "cancelled")])
    def long() -> None:
        for _ in range(200):
            step()

    with pytest.raises(FlowRunAborted):
        long()
    assert recorder.states() == ["CANCELLED"]
    assert [(label, state) for label, _, state in seen] == [("cancelled", "Cancelled")]


def test_hook_logs_and_failures_go_to_the_runs_logs(tracked: RunningServer) -> None:
    def note(flow: Any, flow_run: Any, state: State) -> None:
        get_logger().info("noted %s", state.name)

    def broken(flow: Any, flow_run: Any, state: State) -> None:
        raise RuntimeError("hook broke")

    @flow(on_failure=[broken, note])
    def failing() -> None:
        _ids.append(_flow_context().flow_run_id)
        raise ValueError("bad")

    _ids: list[uuid.UUID] = []
    with pytest.raises(ValueError):
        failing()
    with tracked.client() as client:
        assert client.read_flow_run(_ids[0]).state == "FAILED"
    messages = _logs(tracked, _ids[0])
    assert "noted Failed" in messages
    broke = [m for m in messages if m.startswith("on_failure hook 'broken' failed")]
    assert len(broke) == 1 and "RuntimeError: hook broke" in broke[0]


# ---------------------------------------------------------------- the engine

HOOKED_FLOWS = """
import time
from pathlib import Path
from dockyard import flow, get_logger

def record(flow, flow_run, state):
    get_logger().info("hook saw %s", state.name)
    Path("hooks.txt").open("a").write(f"{flow.name} {flow_run.name} {state.name}\\n")

@flow(log_prints=True, on_crashed=[record], on_cancellation=[record])
def sleepy(seconds: float = 60) -> None:
    print("sleeping")
    time.sleep(seconds)
"""


def _deployment_run(server: RunningServer, tmp_path: Path) -> uuid.UUID:
    (tmp_path / "flows.py").write_text(textwrap.dedent(HOOKED_FLOWS))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="sleepy", name="d", entrypoint="flows.py:sleepy", path=str(tmp_path)
            )
        )
        return client.create_deployment_run(deployment.id, DeploymentRunCreate()).id


@pytest.mark.parametrize("cancel", [False, True])
def test_sigterm_calls_the_crashed_or_cancellation_hooks(
    server: RunningServer, tmp_path: Path, cancel: bool
) -> None:
    run_id = _deployment_run(server, tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard.engine", str(run_id)],
        env={**server.env, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "sleeping" in line:
            break
    if cancel:
        with server.client() as client:
            client.cancel_flow_run(run_id)
    process.terminate()
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 1, output
    state = "Cancelled" if cancel else "Crashed"
    with server.client() as client:
        run = client.read_flow_run(run_id)
    assert run.state == state.upper()
    assert (tmp_path / "hooks.txt").read_text() == f"sleepy {run.name} {state}\n"
    assert f"hook saw {state}" in _logs(server, run_id)


def test_the_hooks_entry_calls_the_hooks_of_a_run_whose_process_is_gone(
    server: RunningServer, tmp_path: Path
) -> None:
    run_id = _deployment_run(server, tmp_path)

    def hooks_entry() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dockyard.engine", "--hooks", str(run_id)],
            env=server.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    early = hooks_entry()
    assert early.returncode == 1 and "it is SCHEDULED, not CANCELLED or CRASHED" in early.stderr
    with server.client() as client:
        run = client.cancel_flow_run(run_id)
    assert run.state == "CANCELLED"
    done = hooks_entry()
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "hooks.txt").read_text() == f"sleepy {run.name} Cancelled\n"
    assert "hook saw Cancelled" in _logs(server, run_id)


def test_the_hooks_entry_does_nothing_for_a_deployment_without_a_flow(
    server: RunningServer, tmp_path: Path
) -> None:
    """A deployment whose runs start a command of their own has no flow to call hooks of."""
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(flow_name="command-only", name="custom")
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate())
        client.cancel_flow_run(run.id)
    done = subprocess.run(
        [sys.executable, "-m", "dockyard.engine", "--hooks", str(run.id), "CANCELLED"],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
