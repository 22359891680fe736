"""SIGTERM to the engine: the flow stops at once and the run reports how it ended."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from _support import RunningServer
from dockyard.schemas import DeploymentCreate, DeploymentRunCreate

FLOWS = """
import asyncio, time
from dockyard import flow, task

@task
def nap(seconds: float) -> None:
    time.sleep(seconds)

@flow(log_prints=True)
def sleepy(seconds: float = 60) -> None:
    print("sleeping")
    try:
        time.sleep(seconds)
    except Exception:
        print("an except Exception clause must not swallow the signal")
    print("woke up")

@flow(log_prints=True)
async def async_sleepy(seconds: float = 60) -> None:
    print("sleeping")
    await asyncio.sleep(seconds)
    print("woke up")

@flow(log_prints=True)
def busy_task(seconds: float = 60) -> None:
    future = nap.submit(seconds)
    print("sleeping")
    future.result()
    print("woke up")
"""


def start_engine(
    server: RunningServer, tmp_path: Path, function: str
) -> tuple[uuid.UUID, subprocess.Popen[str]]:
    """Deploy ``function`` of FLOWS, create a run, start the engine on it; wait till it sleeps."""
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOWS))
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name=function.replace("_", "-"),
                name="d",
                entrypoint=f"flows.py:{function}",
                path=str(tmp_path),
            )
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate())
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard.engine", str(run.id)],
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
    else:
        pytest.fail(f"the engine ended before its flow started: {process.wait()}")
    return run.id, process


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the engine did not exit after SIGTERM")
    return process.returncode, out


def messages(server: RunningServer, run_id: uuid.UUID) -> list[str]:
    with server.client() as client:
        return [log.message for log in client.read_logs(flow_run_id=run_id)]


@pytest.mark.parametrize("function", ["sleepy", "async_sleepy", "busy_task"])
def test_sigterm_crashes_a_running_run(
    server: RunningServer, tmp_path: Path, function: str
) -> None:
    run_id, process = start_engine(server, tmp_path, function)
    process.send_signal(signal.SIGTERM)
    status, output = finish(process)
    assert status == 1, output
    with server.client() as client:
        run = client.read_flow_run(run_id)
    assert run.state == "CRASHED"
    assert run.state_message is not None
    assert run.state_message.startswith("terminated by signal SIGTERM")
    logged = messages(server, run_id)
    assert "woke up" not in logged and "woke up" not in output
    assert any("finished in state CRASHED" in line for line in logged)


def test_sigterm_after_a_cancel_ends_the_run_cancelled(
    server: RunningServer, tmp_path: Path
) -> None:
    run_id, process = start_engine(server, tmp_path, "sleepy")
    with server.client() as client:
        assert client.cancel_flow_run(run_id).state == "CANCELLING"
    process.send_signal(signal.SIGTERM)
    status, output = finish(process)
    assert status == 1, output
    with server.client() as client:
        run = client.read_flow_run(run_id)
        states = [str(s.type) for s in client.read_flow_run_states(run_id)]
    assert run.state == "CANCELLED"
    assert run.state_message == "cancelled (terminated by signal SIGTERM)"
    assert states[-2:] == ["CANCELLING", "CANCELLED"]
    assert "woke up" not in messages(server, run_id)


def test_a_cancel_seen_by_the_lease_keeper_ends_the_run_cancelled(
    server: RunningServer, tmp_path: Path
) -> None:
    """Started by hand, with no worker to kill it, a cancelled run stops at its next task."""
    source = FLOWS + textwrap.dedent(
        """
        @flow
        def steps(n: int = 600) -> None:
            print("sleeping")
            for _ in range(n):
                nap(0.1)
        """
    )
    (tmp_path / "flows.py").write_text(source)
    with server.client() as client:
        deployment = client.upsert_deployment(
            DeploymentCreate(
                flow_name="steps", name="d", entrypoint="flows.py:steps", path=str(tmp_path)
            )
        )
        run = client.create_deployment_run(deployment.id, DeploymentRunCreate())
    env = {**server.env, "DOCKYARD_HEARTBEAT_SECONDS": "0.2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "dockyard.engine", str(run.id)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    with server.client() as client:
        while client.read_flow_run(run.id).state != "RUNNING":
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        client.cancel_flow_run(run.id)
    status, output = finish(process)
    assert status == 1, output
    with server.client() as client:
        ended = client.read_flow_run(run.id)
    assert (ended.state, ended.state_message) == ("CANCELLED", "cancelled")
