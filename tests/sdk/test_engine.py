"""``python -m dockyard.engine RUN_ID`` against a real server, as infrastructure runs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from _support import RunningServer
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate, FlowRun

FLOWS = """
import asyncio, sys
from dockyard import flow, task, get_logger

@task
def shout(word: str) -> str:
    return word.upper()

@flow(log_prints=True)
def my_flow(name: str, times: int = 1) -> list[str]:
    get_logger().info("greeting %s", name)
    words = [shout(name) for _ in range(times)]
    print("said", " ".join(words))
    return words

@flow
def plain_output() -> None:
    print("to stdout without log_prints")
    print("to stderr", file=sys.stderr)

@flow
async def async_flow(n: int) -> int:
    await asyncio.sleep(0.01)
    return n * 2

@flow
def failing() -> None:
    raise RuntimeError("the flow broke")

def undecorated(x: int = 1) -> int:
    return x + 1
"""


def deploy_and_run(
    server: RunningServer,
    path: Path,
    entrypoint: str,
    *,
    source: str = FLOWS,
    file: str = "flows.py",
    flow_name: str = "my-flow",
    parameters: dict[str, Any] | None = None,
    run_parameters: dict[str, Any] | None = None,
) -> tuple[FlowRun, subprocess.CompletedProcess[str]]:
    """Deploy ``source`` from ``path``, run it with the engine, return the run and process."""
    (path / file).write_text(textwrap.dedent(source))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name=flow_name,
                name="test",
                entrypoint=entrypoint,
                path=str(path),
                parameters=parameters or {},
            )
        )
        run = client.create_deployment_run(
            deployment.id, DeploymentRunCreate(parameters=run_parameters or {})
        )
    process = run_engine(server, run.id, cwd=path.parent)
    with server.client() as client:
        return client.read_flow_run(run.id), process


def run_engine(
    server: RunningServer, run_id: uuid.UUID | str, cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockyard.engine", str(run_id)],
        env=server.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def messages(server: RunningServer, run_id: uuid.UUID) -> list[str]:
    with server.client() as client:
        return [log.message for log in client.read_logs(flow_run_id=run_id)]


def test_the_engine_runs_a_deployed_flow_in_its_existing_run(
    server: RunningServer, tmp_path: Path
) -> None:
    run, process = deploy_and_run(
        server,
        tmp_path,
        "flows.py:my_flow",
        parameters={"name": "dock", "times": 1},
        run_parameters={"times": "2"},
    )
    assert process.returncode == 0, process.stderr
    assert run.state == "COMPLETED"
    assert run.result == ["DOCK", "DOCK"]
    with server.client() as client:
        states = [s.type for s in client.read_flow_run_states(run.id)]
        assert states == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
        assert len(client.list_flow_runs(flow_name="my-flow")) == 1
        assert len(client.list_task_runs(flow_run_id=run.id)) == 2
    logged = messages(server, run.id)
    assert "greeting dock" in logged
    assert "said DOCK DOCK" in logged
    assert "said DOCK DOCK" in process.stdout


NAMED = """
from dockyard import flow


@flow(flow_run_name="report-{day}")
def named(day: str) -> str:
    return day


@flow(flow_run_name=lambda: 42)
def badly_named(day: str) -> str:
    return day
"""


def test_the_engine_gives_a_deployed_run_the_name_its_flow_gives_it(
    server: RunningServer, tmp_path: Path
) -> None:
    run, process = deploy_and_run(
        server,
        tmp_path,
        "named.py:named",
        source=NAMED,
        file="named.py",
        flow_name="named",
        run_parameters={"day": "monday"},
    )
    assert process.returncode == 0, process.stderr
    assert (run.state, run.name, run.result) == ("COMPLETED", "report-monday", "monday")


def test_a_name_that_cannot_be_made_leaves_the_deployed_run_its_own(
    server: RunningServer, tmp_path: Path
) -> None:
    run, process = deploy_and_run(
        server,
        tmp_path,
        "named.py:badly_named",
        source=NAMED,
        file="named.py",
        flow_name="badly-named",
        run_parameters={"day": "monday"},
    )
    assert process.returncode == 0, process.stderr
    assert run.state == "COMPLETED" and not run.name.startswith("report")
    assert any(line.startswith("the run keeps its name") for line in messages(server, run.id))


def test_the_engine_ships_what_the_flow_writes_to_stdout_and_stderr(
    server: RunningServer, tmp_path: Path
) -> None:
    run, process = deploy_and_run(
        server, tmp_path, "flows.py:plain_output", flow_name="plain-output"
    )
    assert process.returncode == 0, process.stderr
    logged = messages(server, run.id)
    assert "to stdout without log_prints" in logged
    assert "to stderr" in logged
    assert "to stderr" in process.stderr


@pytest.mark.parametrize(
    ("entrypoint", "flow_name", "params", "state", "expected"),
    [
        ("flows.py:async_flow", "async-flow", {"n": 21}, "COMPLETED", 42),
        ("flows.py:undecorated", "undecorated", {"x": 2}, "COMPLETED", 3),
        ("flows:my_flow", "my-flow", {"name": "m"}, "COMPLETED", ["M"]),
        (f"{'/ABS'}/flows.py:my_flow", "my-flow", {"name": "a"}, "COMPLETED", ["A"]),
        ("flows.py:failing", "failing", {}, "FAILED", "RuntimeError: the flow broke"),
    ],
)
def test_entrypoint_forms_and_outcomes(
    server: RunningServer,
    tmp_path: Path,
    entrypoint: str,
    flow_name: str,
    params: dict[str, Any],
    state: str,
    expected: Any,
) -> None:
    entrypoint = entrypoint.replace("/ABS", str(tmp_path))
    run, process = deploy_and_run(
        server, tmp_path, entrypoint, flow_name=flow_name, run_parameters=params
    )
    assert run.state == state, (run.state_message, process.stderr)
    if state == "COMPLETED":
        assert process.returncode == 0
        assert run.result == expected
    else:
        assert process.returncode == 1
        assert run.state_message is not None and run.state_message.startswith(expected)


@pytest.mark.parametrize(
    ("entrypoint", "source", "params", "expected"),
    [
        ("missing.py:my_flow", FLOWS, {}, "does not exist"),
        ("flows.py:nowhere", FLOWS, {}, "has no attribute 'nowhere'"),
        ("flows.py:my_flow", "raise ImportError('no such library')\n", {}, "no such library"),
        ("flows.py:my_flow", "def broken(:\n", {}, "SyntaxError"),
        ("no_such_module:my_flow", FLOWS, {}, "module 'no_such_module' was not found"),
        ("flows.py", FLOWS, {}, "is not valid"),
        ("flows.py:my_flow", FLOWS, {"name": "x", "nope": 1}, "do not fit the flow"),
        ("flows.py:my_flow", FLOWS, {"name": "x", "times": "many"}, "parameter 'times'"),
    ],
)
def test_a_broken_entrypoint_or_bad_parameters_fail_the_run(
    server: RunningServer,
    tmp_path: Path,
    entrypoint: str,
    source: str,
    params: dict[str, Any],
    expected: str,
) -> None:
    run, process = deploy_and_run(
        server, tmp_path, entrypoint, source=source, run_parameters=params
    )
    assert process.returncode == 1
    assert run.state == "FAILED"
    assert run.state_message is not None and expected in run.state_message, run.state_message
    assert "Traceback" not in process.stderr.split("\n")[0]


def test_the_engine_leaves_a_run_it_cannot_start_alone(
    server: RunningServer, tmp_path: Path
) -> None:
    run, _ = deploy_and_run(server, tmp_path, "flows.py:my_flow", run_parameters={"name": "x"})
    assert run.state == "COMPLETED"
    again = run_engine(server, run.id, tmp_path)
    assert again.returncode == 1
    assert "it is COMPLETED" in again.stderr
    with server.client() as client:
        assert client.read_flow_run(run.id).state == "COMPLETED"


def test_the_engine_explains_bad_arguments_and_an_unknown_run(
    server: RunningServer, tmp_path: Path
) -> None:
    usage = run_engine(server, "not-a-uuid", tmp_path)
    assert usage.returncode == 2 and "not a flow run id" in usage.stderr
    unknown = run_engine(server, uuid.uuid4(), tmp_path)
    assert unknown.returncode == 1
    assert "cannot start flow run" in unknown.stderr and "not found" in unknown.stderr


@pytest.mark.parametrize(
    "server", [{"DOCKYARD_SERVER_API_KEY": "k3y-of-the-engine-tests"}], indirect=True
)
def test_the_engine_sends_the_api_key(server: RunningServer, tmp_path: Path) -> None:
    run, process = deploy_and_run(
        server, tmp_path, "flows.py:my_flow", run_parameters={"name": "k"}
    )
    assert process.returncode == 0, process.stderr
    assert run.state == "COMPLETED" and run.result == ["K"]


@pytest.mark.parametrize("server", [{"DOCKYARD_LEASE_SECONDS": "2"}], indirect=True)
def test_the_lease_is_kept_while_the_flow_is_prepared(
    server: RunningServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Importing the flow (or its pull steps) may outlast a lease: the run is not reaped.
    The engine renews by the server's lease length, which its own environment (a
    container's, say) does not tell: here it says nothing of the 2 s lease."""
    monkeypatch.delitem(server.env, "DOCKYARD_LEASE_SECONDS")
    slow = "import time\ntime.sleep(5)\n" + FLOWS
    run, process = deploy_and_run(
        server, tmp_path, "flows.py:my_flow", source=slow, parameters={"name": "slow"}
    )
    assert process.returncode == 0, process.stderr
    assert run.state == "COMPLETED", run.state_message
