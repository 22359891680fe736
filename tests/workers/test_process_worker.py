"""The process worker against a real server, with real subprocesses (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from worker_support import (
    Workers,
    alive,
    fake_command,
    flow_deployment,
    make_deployment,
    make_pool,
    trigger,
    wait_for_state,
    wait_until,
)

from _support import RunningServer

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
# a dead worker's pool shows NOT_READY within this long (DESIGN.md: heartbeat 5 s, 15 s)
OFFLINE_BOUND = 15.0


def pool_status(client: object, name: str = "pool") -> str:
    return str(client.read_work_pool(name).status)  # type: ignore[attr-defined]


def test_deployment_run_completes_through_the_engine(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    server.cli("work-pool", "create", "pool", "--type", "process")
    with server.client() as client:
        assert pool_status(client) == "NOT_READY"
        worker = workers.start("--pool", "pool", "--name", "w1")
        assert "worker 'w1'" in worker.output() and "work pool 'pool'" in worker.output()
        assert pool_status(client) == "READY"

        deployment = flow_deployment(client, tmp_path)
        run = trigger(client, deployment, parameters={"greeting": "ahoy"})
        done = wait_for_state(client, run.id, FINAL)
        assert done.state == "COMPLETED", done.state_message
        assert done.worker_name == "w1"
        assert done.infrastructure_id and done.infrastructure_id.isdigit()
        messages = [log.message for log in client.read_logs(flow_run_id=run.id)]
        assert "ahoy from the engine" in messages

        output = worker.wait_for_output(f"flow run '{run.name}' ({run.id}) completed")
        assert f"claimed flow run '{run.name}'" in output
        assert f"(pid {done.infrastructure_id})" in output
        assert f"{run.name} | ahoy from the engine" in output  # stream_output echoes

        worker.kill()
        began = time.monotonic()
        wait_until(
            lambda: pool_status(client) == "NOT_READY",
            OFFLINE_BOUND - (time.monotonic() - began),
            "the pool of a killed worker to be NOT_READY",
            interval=0.25,
        )


def test_launch_contract_of_a_custom_command(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    dump = tmp_path / "seen.json"
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    with server.client() as client:
        # only the pool's own template may name the worker's environment
        template = client.read_worker_type("process").base_job_template
        template["variables"]["properties"]["env"]["default"] = {
            "FROM_POOL": "{{ $WORKER_SECRET }}"
        }
        make_pool(client, base_job_template=template)
        deployment = make_deployment(
            client,
            job_variables={
                "command": fake_command("--dump", str(dump)),
                "working_dir": str(work_dir),
                "env": {"GREETING": "hi", "FROM_WORKER": "{{ $WORKER_SECRET }}", "DROPPED": None},
                "stream_output": False,
            },
        )
        worker = workers.start("--pool", "pool", env={"WORKER_SECRET": "s3", "DROPPED": "x"})
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL)
        assert done.state == "COMPLETED", done.state_message

    seen = json.loads(dump.read_text())
    env = seen["env"]
    token = env["DOCKYARD_LEASE_TOKEN"]
    assert env["DOCKYARD_FLOW_RUN_ID"] == str(run.id)
    assert env["DOCKYARD_API_URL"] == server.api_url
    assert env["FROM_POOL"] == "s3"
    assert env["FROM_WORKER"] == "{{ $WORKER_SECRET }}"  # a deployment's value is plain text
    assert env["GREETING"] == "hi"
    assert "DROPPED" not in env
    assert token not in " ".join(seen["argv"])  # never on the command line
    assert seen["cwd"] == str(work_dir)
    assert str(seen["pid"]) == done.infrastructure_id
    output = worker.wait_for_output("completed")
    assert "fake engine" not in output  # stream_output false: nothing echoed


def test_exit_without_a_final_state_crashes_and_is_retried(
    server: RunningServer, workers: Workers
) -> None:
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client, crash_retries=1, job_variables={"command": fake_command("--exit", "3")}
        )
        worker = workers.start("--pool", "pool")
        run = trigger(client, deployment)

        def crashed_twice() -> object:
            current = client.read_flow_run(run.id)
            return current if current.attempt == 2 and current.state == "CRASHED" else None

        final = wait_until(crashed_twice, 60, "the retried run to crash again")
        assert "exited with code 3 without reporting a final state" in final.state_message
        history = [s.type for s in client.read_flow_run_states(run.id)]
        assert history == ["SCHEDULED", "PENDING", "RUNNING", "CRASHED"] * 2
        logs = "\n".join(log.message for log in client.read_logs(flow_run_id=run.id))
        assert "fake crash trace: RuntimeError: boom" in logs  # the output's tail
    output = worker.output()
    assert "crashed (code 3); scheduled again as attempt 2" in output
    assert "crashed (code 3): its process (pid" in output


def test_infrastructure_that_cannot_start_crashes_with_the_reason(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    with server.client() as client:
        make_pool(client)
        nowhere = make_deployment(
            client, name="nowhere", job_variables={"working_dir": str(tmp_path / "missing")}
        )
        nothing = make_deployment(
            client, name="nothing", job_variables={"command": "no-such-command --flag"}
        )
        workers.start("--pool", "pool")
        first, second = trigger(client, nowhere), trigger(client, nothing)
        first = wait_for_state(client, first.id, FINAL)
        second = wait_for_state(client, second.id, FINAL)
    assert first.state == "CRASHED"
    assert f"its working directory {tmp_path / 'missing'} does not exist" in first.state_message
    assert second.state == "CRASHED"
    assert "could not start: command not found: no-such-command" in second.state_message


def test_cancelling_a_running_run_stops_its_process(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client,
            job_variables={"command": fake_command("--append", str(marker), "--sleep", "60")},
        )
        worker = workers.start("--pool", "pool")
        run = trigger(client, deployment)
        wait_until(marker.exists, 30, "the run to start")
        pid = int(client.read_flow_run(run.id).infrastructure_id)
        assert alive(pid)
        client.cancel_flow_run(run.id)
        done = wait_for_state(client, run.id, FINAL, timeout=40)
    assert done.state == "CANCELLED", done.state_message
    assert not alive(pid)
    assert f"flow run '{run.name}' ({run.id}) cancelled" in worker.wait_for_output("cancelled")


@pytest.mark.parametrize("server", [{"DOCKYARD_LEASE_SECONDS": "3"}], indirect=True)
def test_a_killed_worker_leaves_no_run_pending(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "launched"
    with server.client() as client:
        make_pool(client)
        # the engine takes over: it moves its run to RUNNING after the worker is gone
        late = make_deployment(
            client,
            name="late",
            job_variables={
                "command": fake_command("--launched", str(marker), "--delay-start", "2")
            },
        )
        # nothing takes over: its process never reports, so the lease runs out
        silent = make_deployment(
            client,
            name="silent",
            job_variables={
                "command": fake_command("--launched", str(marker), "--no-start", "--sleep", "60")
            },
        )
        worker = workers.start("--pool", "pool")
        runs = [trigger(client, late), trigger(client, silent)]
        wait_until(lambda: marker.exists() and len(marker.read_text().split()) == 2, 30, "2 runs")
        assert {client.read_flow_run(r.id).state for r in runs} == {"PENDING"}
        worker.kill()
        finished = [wait_for_state(client, r.id, FINAL, timeout=30) for r in runs]
    assert finished[0].state == "COMPLETED"
    assert finished[1].state == "CRASHED" and "lease expired" in finished[1].state_message


def test_ctrl_c_leaves_started_runs_to_finish(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client, job_variables={"command": fake_command("--append", str(marker), "--sleep", "3")}
        )
        worker = workers.start("--pool", "pool")
        run = trigger(client, deployment)
        wait_until(marker.exists, 30, "the run to start")
        worker.interrupt()  # the whole process group, as a terminal's Ctrl-C
        assert worker.wait(10) == 0
        assert "runs left to finish under their own lease" in worker.output()
        assert client.read_flow_run(run.id).state == "RUNNING"
        assert wait_for_state(client, run.id, FINAL).state == "COMPLETED"

        # the stopped worker's long-poll claims nothing for it any more
        later = trigger(client, deployment)
        time.sleep(1.0)
        assert client.read_flow_run(later.id).state == "SCHEDULED"


def test_run_once_runs_what_is_due_and_exits(server: RunningServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client, job_variables={"command": fake_command("--append", str(marker))}
        )
        runs = [trigger(client, deployment) for _ in range(3)]
        result = server.cli("worker", "start", "--pool", "pool", "--run-once", "--limit", "2")
        assert result.stdout.count(" completed") == 3, result.stdout
        assert {client.read_flow_run(r.id).state for r in runs} == {"COMPLETED"}
    assert sorted(marker.read_text().split()) == sorted(str(r.id) for r in runs)


HOOKED_FLOW = """\
import os
import signal
import time

from dockyard import flow


def note(flow, flow_run, state):
    with open(os.environ["HOOK_FILE"], "a") as file:
        file.write(f"{flow.name} {flow_run.id} {state.type.value}\\n")


@flow(on_crashed=[note], on_cancellation=[note])
def doomed(how: str) -> None:
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # gone before it can call a hook
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a cancel must wait for SIGKILL
    with open(os.environ["HOOK_FILE"] + ".started", "w"):
        pass
    time.sleep(60)
"""


def test_the_worker_calls_the_hooks_of_a_run_whose_process_is_gone(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    """A run killed outright, and a cancelled run that ignored SIGTERM, end without their
    engine calling on_crashed/on_cancellation: the worker has them called, once each."""
    (tmp_path / "doomed.py").write_text(HOOKED_FLOW)
    hook_file = tmp_path / "hooks.txt"
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client,
            flow_name="doomed",
            entrypoint="doomed.py:doomed",
            path=str(tmp_path),
            job_variables={"env": {"HOOK_FILE": str(hook_file)}},
        )
        workers.start("--pool", "pool")  # a cancel waits the kill grace (10 s) for SIGKILL
        killed = trigger(client, deployment, parameters={"how": "kill"})
        assert wait_for_state(client, killed.id, FINAL).state == "CRASHED"
        wait_until(hook_file.exists, 30, "the on_crashed hook to be called")

        cancelled = trigger(client, deployment, parameters={"how": "hang"})
        wait_until(Path(f"{hook_file}.started").exists, 30, "the run to start")
        client.cancel_flow_run(cancelled.id)
        assert wait_for_state(client, cancelled.id, FINAL, timeout=40).state == "CANCELLED"
        wait_until(lambda: len(hook_file.read_text().splitlines()) >= 2, 30, "the other hook")
        logs = [log.message for log in client.read_logs(flow_run_id=killed.id)]
    time.sleep(1)  # a hook called twice would show by now
    assert hook_file.read_text().splitlines() == [
        f"doomed {killed.id} CRASHED",
        f"doomed {cancelled.id} CANCELLED",
    ]
    assert not any("cannot call the hooks" in message for message in logs)
