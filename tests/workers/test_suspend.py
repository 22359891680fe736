"""A deployment's run that suspends itself, with a real process worker and the real engine:
its process exits and the worker leaves it be; a resume (from the CLI) runs it again from the
top, the task that completed before is not run again, and the suspend returns the input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from worker_support import Workers, make_deployment, make_pool, trigger, wait_for_state

from _support import RunningServer

FLOWS = """\
from pathlib import Path

from dockyard import flow, task
from dockyard.flow_runs import suspend_flow_run


@task
def count(path: str) -> int:
    with open(path, "a") as file:
        file.write("x")
    return len(Path(path).read_text())


@flow(log_prints=True)
def suspending(counter: str, starts: str) -> str:
    done = count(counter)
    with open(starts, "a") as file:
        file.write("start\\n")
    name = suspend_flow_run(wait_for_input=str, timeout=300)
    print(f"resumed with {name}")
    return f"{done}:{name}"
"""


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the server's rules for suspended runs are tested on both databases in
    tests/server/test_pausing.py; this tests the engine and the worker."""
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


def test_a_suspended_run_starts_again_from_the_top_and_reuses_its_tasks(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "flows.py").write_text(FLOWS)
    counter, starts = tmp_path / "counter", tmp_path / "starts"
    with server.client() as client:
        make_pool(client)
        deployment = make_deployment(
            client,
            flow_name="suspending",
            entrypoint="flows.py:suspending",
            path=str(code),
            parameters={"counter": str(counter), "starts": str(starts)},
        )
        worker = workers.start("--pool", "pool", "--name", "w1")
        run = trigger(client, deployment)
        paused = wait_for_state(client, run.id, {"PAUSED"})
        assert paused.lease_expires is None  # given back: no slot, no process
        worker.wait_for_output(f"{run.name}' ({run.id}) suspended")

        wrong = server.cli("flow-run", "resume", str(run.id), "--input", '{"value": 7}', check=1)
        assert "run_input.value: 7 is not of type 'string'" in wrong.stderr
        answer = server.cli("flow-run", "resume", str(run.id), "--input", '{"value": "ahoy"}')
        assert answer.returncode == 0, answer.stderr
        assert "runs it again from the top" in answer.stdout

        done = wait_for_state(client, run.id, {"COMPLETED", "FAILED", "CRASHED"})
        assert done.state == "COMPLETED", done.state_message
        assert done.result == "1:ahoy" and done.attempt == 1
        history = [s.type for s in client.read_flow_run_states(run.id)]
        logs = [log.message for log in client.read_logs(flow_run_id=run.id)]
    assert history == [
        "SCHEDULED", "PENDING", "RUNNING", "PAUSED",
        "SCHEDULED", "PENDING", "RUNNING", "COMPLETED",
    ]  # fmt: skip
    assert counter.read_text() == "x"  # the task ran once
    assert starts.read_text() == "start\nstart\n"  # the flow ran twice, from the top
    assert any("reused the result of count" in m for m in logs)
    assert "resumed with ahoy" in logs
    output = worker.wait_for_output(f"{run.name}' ({run.id}) completed")
    assert "crashed" not in output
    assert json.dumps(done.result) == '"1:ahoy"'
