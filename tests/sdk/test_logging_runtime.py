"""Run loggers (dockyard.logging), runtime facts (dockyard.runtime) and run contexts
(dockyard.context), inside and outside runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sdk_stub import Recorded

import dockyard
from _support import RunningServer
from dockyard import flow, runtime, task
from dockyard.context import FlowRunContext, TaskRunContext, get_run_context
from dockyard.exceptions import MissingContextError
from dockyard.logging import disable_run_logger, get_logger, get_run_logger
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate

FLOW_FIELDS = ("flow_run_id", "flow_run_name", "flow_name")
TASK_FIELDS = ("task_run_id", "task_run_name", "task_name")


def _records(caplog: pytest.LogCaptureFixture, message: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == message]


@contextlib.contextmanager
def root_console() -> Iterator[logging.Handler]:
    """A handler on the root logger printing on standard error, as logging.basicConfig()
    adds one (basicConfig itself does nothing while pytest's handlers are on the root).
    Made inside the test, where ``sys.stderr`` is capsys's."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ROOT %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


# ---------------------------------------------------------------- get_run_logger


def test_run_logger_records_carry_the_run_and_reach_caplog(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @task
    def step() -> str:
        get_run_logger().info("from the task")
        return str(runtime.task_run.id)

    @flow
    def pipeline() -> tuple[str | None, str | None, str]:
        get_run_logger().info("from the flow")
        return runtime.flow_run.id, runtime.flow_run.name, step()

    run_id, run_name, task_run_id = pipeline()
    [in_flow] = _records(caplog, "from the flow")
    assert in_flow.name == "dockyard.flow_runs"
    assert [getattr(in_flow, f) for f in FLOW_FIELDS] == [run_id, run_name, "pipeline"]
    assert not hasattr(in_flow, "task_run_id")
    [in_task] = _records(caplog, "from the task")
    assert in_task.name == "dockyard.task_runs"
    assert [getattr(in_task, f) for f in TASK_FIELDS] == [task_run_id, "step-0", "step"]
    assert [getattr(in_task, f) for f in FLOW_FIELDS] == [run_id, run_name, "pipeline"]
    assert in_task.funcName == "step"  # the caller, not the SDK


def test_run_logger_records_are_shipped_to_their_run(recorder: Recorded) -> None:
    @task
    def step() -> None:
        get_run_logger().warning("from the task")

    @flow
    def pipeline() -> None:
        logger = get_run_logger()
        logger.info("from the flow", extra={"batch": 7})
        # a thread that does not carry the run's context still logs to the run
        thread = threading.Thread(target=logger.info, args=("from a plain thread",))
        thread.start()
        thread.join()
        step()

    pipeline()
    run_id = str(recorder.runs[0]["id"])
    logs = {log["message"]: log for log in recorder.logs}
    for message in ("from the flow", "from a plain thread", "from the task"):
        assert logs[message]["flow_run_id"] == run_id
    assert logs["from the flow"]["task_run_id"] is None
    assert logs["from the task"]["task_run_id"] == recorder.task_runs[0]["id"]
    assert logs["from the task"]["level"] == logging.WARNING


def test_extra_fields_are_added_to_the_runs(caplog: pytest.LogCaptureFixture) -> None:
    @flow
    def tagged() -> None:
        get_run_logger(team="data").info("with extras", extra={"batch": 7})

    tagged()
    [record] = _records(caplog, "with extras")
    assert (record.team, record.batch, record.flow_name) == ("data", 7, "tagged")  # type: ignore[attr-defined]


def test_get_run_logger_outside_a_run_says_where_to_call_it() -> None:
    with pytest.raises(MissingContextError, match=r"outside a flow or task run.*@flow or @task"):
        get_run_logger()
    assert issubclass(MissingContextError, RuntimeError)


def test_disable_run_logger_lets_a_tasks_function_be_called_directly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @task
    def double(x: int) -> int:
        get_run_logger().info("doubling %d", x)
        return 2 * x

    with disable_run_logger():
        assert double.fn(21) == 42
    assert _records(caplog, "doubling 21") == []
    with pytest.raises(MissingContextError):
        double.fn(1)


def test_disable_run_logger_silences_runs_too(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow
    def quiet() -> None:
        get_run_logger().info("silenced")

    with disable_run_logger():
        quiet()
    assert _records(caplog, "silenced") == []
    assert "silenced" not in capsys.readouterr().err


def test_get_logger_names_the_run_logger() -> None:
    @flow
    def named() -> tuple[str, str]:
        return get_logger().name, get_logger("etl").name

    assert named() == ("dockyard.flow_runs", "dockyard.flow_runs.etl")
    assert get_logger().name == "dockyard.flow_runs"  # outside a run too


# ---------------------------------------------------------------- the console


def test_a_record_prints_once_without_logging_configured(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    @flow(name="console")
    def console() -> None:
        get_run_logger().info("printed once")

    console()
    lines = [line for line in capsys.readouterr().err.splitlines() if "printed once" in line]
    assert len(lines) == 1
    assert "| INFO    | Flow run '" in lines[0]
    assert len(_records(caplog, "printed once")) == 1


def test_a_root_console_handler_prints_run_records_instead_of_the_sdk(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @task
    def step() -> None:
        get_run_logger().info("task line")

    @flow
    def configured() -> None:
        get_run_logger().info("flow line")
        step()

    with root_console():
        configured()
    err = capsys.readouterr().err
    assert err.count("flow line") == 1 and "ROOT dockyard.flow_runs: flow line" in err
    assert err.count("task line") == 1 and "ROOT dockyard.task_runs: task line" in err


def test_a_root_handler_writing_elsewhere_leaves_the_console_to_the_sdk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = logging.FileHandler(tmp_path / "run.log")
    logging.getLogger().addHandler(handler)
    try:

        @flow
        def filed() -> None:
            get_run_logger().info("to both")

        filed()
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    assert capsys.readouterr().err.count("to both") == 1
    assert "to both" in (tmp_path / "run.log").read_text()


# ---------------------------------------------------------------- log_prints


def test_log_prints_makes_records_and_still_prints(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str], recorder: Recorded
) -> None:
    @task
    def shout(word: str) -> None:
        print(word.upper())

    @flow(log_prints=True)
    def talk() -> None:
        print("hello", "world", sep=", ")
        shout("hey")

    talk()
    [in_flow] = _records(caplog, "hello, world")
    assert in_flow.name == "dockyard.flow_runs" and in_flow.levelno == logging.INFO
    assert in_flow.funcName == "talk"
    [in_task] = _records(caplog, "HEY")
    assert in_task.name == "dockyard.task_runs" and in_task.task_name == "shout"  # type: ignore[attr-defined]
    out, err = capsys.readouterr()
    assert out.count("hello, world\n") == 1 and out.count("HEY\n") == 1
    assert "hello, world" not in err and "HEY" not in err
    [shipped] = [log for log in recorder.logs if log["message"] == "HEY"]
    assert shipped["task_run_id"] == recorder.task_runs[0]["id"]


def test_log_prints_with_a_root_console_handler_prints_the_record_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @flow(log_prints=True)
    def talk() -> None:
        print("just once")

    with root_console():
        talk()
    out, err = capsys.readouterr()
    assert "just once" not in out
    assert err.count("just once") == 1 and "ROOT dockyard.flow_runs: just once" in err


# ---------------------------------------------------------------- dockyard.runtime


def test_runtime_outside_a_run_answers_empty_values() -> None:
    assert runtime.flow_run.id is None and runtime.flow_run.name is None
    assert runtime.flow_run.flow_name is None and runtime.flow_run.deployment_id is None
    assert runtime.flow_run.parameters == {} and runtime.flow_run.tags == []
    assert runtime.flow_run.job_variables == {} and runtime.flow_run.run_count == 0
    assert runtime.flow_run.parent_flow_run_id is None and runtime.flow_run.api_url is None
    assert runtime.flow_run.scheduled_start_time.tzinfo is not None  # now, in UTC
    assert runtime.task_run.id is None and runtime.task_run.name is None
    assert runtime.task_run.parameters == {} and runtime.task_run.tags == []
    assert runtime.task_run.run_count == 0
    assert runtime.deployment.id is None and runtime.deployment.name is None
    assert runtime.deployment.parameters == {} and runtime.deployment.flow_run_id is None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        runtime.flow_run.nope  # noqa: B018


def test_runtime_flow_run_and_task_run_inside_runs() -> None:
    @task(tags=["fast"])
    def step(x: int, factor: int = 3) -> dict[str, Any]:
        return {
            "id": runtime.task_run.id,
            "name": runtime.task_run.name,
            "task_name": runtime.task_run.task_name,
            "parameters": runtime.task_run.parameters,
            "tags": runtime.task_run.tags,
            "run_count": runtime.task_run.run_count,
            "flow_run_id": runtime.flow_run.id,  # the flow run of the task
        }

    @flow(tags=["nightly"], version="7")
    def pipeline(n: int, label: str = "x") -> dict[str, Any]:
        started = datetime.now(UTC)
        return {
            "id": runtime.flow_run.id,
            "context_id": str(get_run_context().flow_run.id),  # type: ignore[union-attr]
            "name": runtime.flow_run.name,
            "flow_name": runtime.flow_run.flow_name,
            "flow_version": runtime.flow_run.flow_version,
            "parameters": runtime.flow_run.parameters,
            "tags": runtime.flow_run.tags,
            "run_count": runtime.flow_run.run_count,
            "scheduled_before_code": runtime.flow_run.scheduled_start_time <= started,
            "deployment": runtime.deployment.id,
            "task": step(n),
        }

    got = pipeline(2)
    assert got["id"] == got["context_id"] and got["name"]
    assert (got["flow_name"], got["flow_version"]) == ("pipeline", "7")
    assert got["parameters"] == {"n": 2, "label": "x"}
    assert (got["tags"], got["run_count"]) == (["nightly"], 1)
    assert got["scheduled_before_code"] and got["deployment"] is None
    task_run = got["task"]
    assert uuid.UUID(task_run["id"]) and task_run["name"] == "step-0"
    assert task_run["task_name"] == "step" and task_run["tags"] == ["fast"]
    assert task_run["parameters"] == {"x": 2, "factor": 3}
    assert task_run["run_count"] == 1 and task_run["flow_run_id"] == got["id"]


def test_run_count_counts_attempts_of_flows_and_tasks() -> None:
    task_counts: list[int] = []
    flow_counts: list[int] = []

    @task(retries=2)
    def flaky() -> None:
        task_counts.append(runtime.task_run.run_count)
        if len(task_counts) < 3:
            raise RuntimeError("not yet")

    @flow(retries=1)
    def retried() -> None:
        flow_counts.append(runtime.flow_run.run_count)
        if len(flow_counts) < 2:
            raise RuntimeError("again")
        flaky()

    retried()
    assert flow_counts == [1, 2] and task_counts == [1, 2, 3]


def test_a_subflow_knows_its_parent() -> None:
    @flow
    def child() -> str | None:
        return runtime.flow_run.parent_flow_run_id

    @flow
    def parent() -> tuple[str | None, str | None, str | None]:
        return runtime.flow_run.id, child(), runtime.flow_run.parent_flow_run_id

    own, childs_parent, parents_parent = parent()
    assert childs_parent == own and parents_parent is None


def test_runtime_in_async_flows_and_tasks() -> None:
    @task
    async def step() -> str | None:
        await asyncio.sleep(0)
        get_run_logger().info("async task")
        return runtime.task_run.name

    @flow
    async def pipeline() -> tuple[str | None, str | None]:
        return runtime.flow_run.flow_name, await step()

    assert asyncio.run(pipeline()) == ("pipeline", "step-0")


def test_api_and_ui_urls_of_a_tracked_run(recorder: Recorded, no_server: str) -> None:
    @flow
    def tracked() -> tuple[str | None, str | None, str | None]:
        return runtime.flow_run.id, runtime.flow_run.api_url, runtime.flow_run.ui_url

    run_id, api_url, ui_url = tracked()
    assert api_url == f"{no_server}/flow-runs/{run_id}"
    assert ui_url == f"{no_server.removesuffix('/api')}/runs/{run_id}"


# ---------------------------------------------------------------- dockyard.context


def test_run_contexts_inside_and_outside_runs() -> None:
    seen: dict[str, Any] = {}

    @task(tags=["t"])
    def step(x: int) -> None:
        context = get_run_context()
        assert isinstance(context, TaskRunContext)
        seen["task"] = (context.task, context.task_run)
        seen["task_get"] = TaskRunContext.get() is context
        seen["flow_in_task"] = FlowRunContext.get()

    @flow(tags=["f"])
    def pipeline(n: int = 1) -> None:
        context = get_run_context()
        assert isinstance(context, FlowRunContext)
        seen["flow"] = (context.flow, context.flow_run)
        seen["task_in_flow"] = TaskRunContext.get()
        step(n)

    pipeline()
    flow_object, flow_run = seen["flow"]
    assert flow_object is pipeline
    assert (flow_run.name, flow_run.parameters, flow_run.tags, flow_run.run_count) == (
        flow_run.name,
        {"n": 1},
        ["f"],
        1,
    )
    assert isinstance(flow_run.id, uuid.UUID) and seen["task_in_flow"] is None
    task_object, task_run = seen["task"]
    assert task_object is step and seen["task_get"]
    assert (task_run.name, task_run.parameters, task_run.tags, task_run.run_count) == (
        "step-0",
        {"x": 1},
        ["t"],
        1,
    )
    assert seen["flow_in_task"].flow_run.id == flow_run.id == task_run.flow_run_id
    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    with pytest.raises(MissingContextError, match="outside a flow or task run"):
        get_run_context()
    assert dockyard.get_run_context() is None  # the older function keeps answering None


# ---------------------------------------------------------------- a deployment's run

DEPLOYED = """
from dockyard import flow, runtime

@flow
def child() -> dict:
    return {
        "deployment": runtime.deployment.id,
        "parent_deployment_id": runtime.flow_run.parent_deployment_id,
    }

@flow(log_prints=True)
def report(name: str, times: int = 1) -> dict:
    print("reporting")
    return {
        "flow_run_id": runtime.flow_run.id,
        "scheduled_start_time": runtime.flow_run.scheduled_start_time.isoformat(),
        "tags": runtime.flow_run.tags,
        "run_count": runtime.flow_run.run_count,
        "job_variables": runtime.flow_run.job_variables,
        "flow_run_deployment_id": runtime.flow_run.deployment_id,
        "deployment": {
            "id": runtime.deployment.id,
            "name": runtime.deployment.name,
            "version": runtime.deployment.version,
            "parameters": runtime.deployment.parameters,
            "flow_run_id": runtime.deployment.flow_run_id,
        },
        "child": child(),
    }
"""


def test_a_deployments_run_knows_its_deployment(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(textwrap.dedent(DEPLOYED))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="report",
                name="nightly",
                version="1.2",
                entrypoint="flows.py:report",
                path=str(tmp_path),
                parameters={"name": "dock", "times": 1},
            )
        )
        run = client.create_deployment_run(
            deployment.id,
            DeploymentRunCreate(parameters={"times": 2}, tags=["adhoc"], job_variables={"cpu": 2}),
        )
    process = subprocess.run(
        [sys.executable, "-m", "dockyard.engine", str(run.id)],
        env=server.env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    with server.client() as client:
        finished = client.read_flow_run(run.id)
        logged = [log.message for log in client.read_logs(flow_run_id=run.id)]
    got = finished.result
    assert got["flow_run_id"] == str(run.id) == got["deployment"]["flow_run_id"]
    assert got["deployment"] == {
        "id": str(deployment.id),
        "name": "nightly",
        "version": "1.2",
        "parameters": {"name": "dock", "times": 2},
        "flow_run_id": str(run.id),
    }
    assert got["flow_run_deployment_id"] == str(deployment.id)
    assert run.scheduled_start is not None
    assert datetime.fromisoformat(got["scheduled_start_time"]) == run.scheduled_start
    assert "adhoc" in got["tags"] and got["run_count"] == 1
    assert got["job_variables"] == {"cpu": 2}
    assert got["child"] == {"deployment": None, "parent_deployment_id": str(deployment.id)}
    assert logged.count("reporting") == 1  # shipped by its record, not again as output
    assert "reporting" in process.stdout
