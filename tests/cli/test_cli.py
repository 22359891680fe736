"""The ``dockyard`` command against a real server, run as a subprocess."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from _support import CLI_COMMAND, RunningServer, assert_clean_error
from dockyard import schemas

StateType = schemas.StateType


def test_work_pool_lifecycle(server: RunningServer) -> None:
    created = server.cli("work-pool", "create", "my-docker-pool", "--type", "process")
    assert "my-docker-pool" in created.stdout

    table = server.cli("work-pool", "ls").stdout
    assert "my-docker-pool" in table
    assert "NOT_READY" in table
    assert "never" in table

    [pool] = json.loads(server.cli("work-pool", "ls", "--json").stdout)
    assert pool["name"] == "my-docker-pool"
    assert pool["type"] == "process"
    assert pool["status"] == "NOT_READY"
    assert pool["concurrency_limit"] is None
    assert pool["last_polled"] is None
    assert "base_job_template" in pool

    server.cli("work-pool", "pause", "my-docker-pool")
    shown = json.loads(server.cli("work-pool", "inspect", "my-docker-pool", "--json").stdout)
    assert shown["status"] == "PAUSED"
    assert "PAUSED" in server.cli("work-pool", "inspect", "my-docker-pool").stdout

    server.cli("work-pool", "resume", "my-docker-pool")
    server.cli("work-pool", "set-concurrency-limit", "my-docker-pool", "3")
    [pool] = json.loads(server.cli("work-pool", "ls", "--json").stdout)
    assert (pool["status"], pool["concurrency_limit"]) == ("NOT_READY", 3)
    server.cli("work-pool", "clear-concurrency-limit", "my-docker-pool")
    server.cli("work-pool", "update", "my-docker-pool", "--description", "for the tutorial")
    shown = json.loads(server.cli("work-pool", "inspect", "my-docker-pool", "--json").stdout)
    assert (shown["concurrency_limit"], shown["description"]) == (None, "for the tutorial")

    server.cli("work-pool", "delete", "my-docker-pool")
    assert json.loads(server.cli("work-pool", "ls", "--json").stdout) == []


def test_work_pool_with_template_file(server: RunningServer, tmp_path: Path) -> None:
    template = server.cli("work-pool", "get-default-base-job-template", "--type", "process")
    parsed = json.loads(template.stdout)
    assert "job_configuration" in parsed
    path = tmp_path / "template.json"
    path.write_text(template.stdout)
    server.cli("work-pool", "create", "p", "--type", "process", "--base-job-template", str(path))
    shown = json.loads(server.cli("work-pool", "inspect", "p", "--json").stdout)
    assert shown["base_job_template"] == parsed


def test_unknown_pool_is_a_clean_error(server: RunningServer) -> None:
    result = server.cli("work-pool", "inspect", "nope", check=False)
    assert_clean_error(result, "nope", "not found")
    assert_clean_error(server.cli("work-pool", "pause", "nope", check=False), "nope")


def test_duplicate_and_invalid_pools(server: RunningServer) -> None:
    server.cli("work-pool", "create", "twice", "--type", "process")
    again = server.cli("work-pool", "create", "twice", "--type", "process", check=False)
    assert_clean_error(again, "twice")
    bad = server.cli("work-pool", "create", "has space", "--type", "process", check=False)
    assert_clean_error(bad, "name")
    unknown = server.cli("work-pool", "create", "x", "--type", "no-such-type", check=False)
    assert_clean_error(unknown, "no-such-type")


def test_work_queue_lifecycle(server: RunningServer) -> None:
    server.cli("work-pool", "create", "pool", "--type", "process")
    server.cli("work-queue", "create", "fast", "--pool", "pool", "--priority", "1")
    queues = json.loads(server.cli("work-queue", "ls", "--pool", "pool", "--json").stdout)
    assert [q["name"] for q in queues] == ["fast", "default"]
    assert "fast" in server.cli("work-queue", "ls", "--pool", "pool").stdout
    server.cli("work-queue", "update", "fast", "--pool", "pool", "--concurrency-limit", "2")
    server.cli("work-queue", "pause", "fast", "--pool", "pool")
    shown = server.cli("work-queue", "inspect", "fast", "--pool", "pool", "--json").stdout
    assert (json.loads(shown)["paused"], json.loads(shown)["concurrency_limit"]) == (True, 2)
    server.cli("work-queue", "resume", "fast", "--pool", "pool")
    server.cli("work-queue", "delete", "fast", "--pool", "pool")
    missing = server.cli("work-queue", "inspect", "fast", "--pool", "pool", check=False)
    assert_clean_error(missing, "fast")


def test_deployments(server: RunningServer) -> None:
    with server.client() as client:
        client.upsert_deployment(
            schemas.DeploymentCreate(flow_name="get-repo-info", name="my-first-deployment")
        )
    [listed] = json.loads(server.cli("deployment", "ls", "--json").stdout)
    assert (listed["flow_name"], listed["name"]) == ("get-repo-info", "my-first-deployment")
    assert "get-repo-info/my-first-deployment" in server.cli("deployment", "ls").stdout
    shown = server.cli("deployment", "inspect", "get_repo_info/my-first-deployment", "--json")
    assert json.loads(shown.stdout)["id"] == listed["id"]

    slip = server.cli("deployment", "inspect", "get_repo_info/my-deployment", check=False)
    assert_clean_error(slip, "get-repo-info/my-first-deployment")
    assert_clean_error(server.cli("deployment", "inspect", "no-slash", check=False), "FLOW/NAME")

    server.cli("deployment", "delete", "get-repo-info/my-first-deployment")
    assert json.loads(server.cli("deployment", "ls", "--json").stdout) == []


def test_flow_runs(server: RunningServer) -> None:
    traceback = 'Traceback (most recent call last):\n  File "f.py", line 3\nValueError: boom'
    with server.client() as client:
        deployment = client.upsert_deployment(schemas.DeploymentCreate(flow_name="etl", name="d"))
        scheduled = client.create_deployment_run(deployment.id, schemas.DeploymentRunCreate())
        failed = client.create_flow_run(schemas.FlowRunCreate(flow_name="etl", name="direct"))
        transition = schemas.StateTransition(
            state=StateType.FAILED, message=traceback, lease_token=failed.lease_token
        )
        client.set_flow_run_state(failed.id, transition)

    runs = json.loads(server.cli("flow-run", "ls", "--json").stdout)
    assert [run["id"] for run in runs] == [str(failed.id), str(scheduled.id)]  # newest first
    for key in ("name", "flow_name", "deployment_name", "scheduled_start", "end_time"):
        assert key in runs[0]
    assert runs[0]["state"] == "FAILED"

    only_failed = server.cli("flow-run", "ls", "--state", "failed", "--json").stdout
    assert [run["id"] for run in json.loads(only_failed)] == [str(failed.id)]
    of_deployment = server.cli("flow-run", "ls", "--deployment", "etl/d", "--json").stdout
    assert [run["id"] for run in json.loads(of_deployment)] == [str(scheduled.id)]
    table = server.cli("flow-run", "ls").stdout
    assert str(failed.id) in table  # ids are never cut
    assert "SCHEDULED" in table

    shown = server.cli("flow-run", "inspect", str(failed.id)).stdout
    assert "ValueError: boom" in shown
    assert "RUNNING" in shown  # the state history
    data = json.loads(server.cli("flow-run", "inspect", str(failed.id), "--json").stdout)
    assert [state["type"] for state in data["states"]] == ["RUNNING", "FAILED"]

    bad_state = server.cli("flow-run", "ls", "--state", "sleepy", check=False)
    assert_clean_error(bad_state, "SLEEPY", "COMPLETED")
    unknown = server.cli("flow-run", "inspect", "3c1e9f3e-0000-4000-8000-000000000000", check=False)
    assert_clean_error(unknown, "not found")


def test_logs_follow_until_final(server: RunningServer) -> None:
    with server.client() as client:
        run = client.create_flow_run(schemas.FlowRunCreate(flow_name="etl"))
        first = schemas.LogCreate(flow_run_id=run.id, message="first line")
        client.create_logs([first])
        follower = subprocess.Popen(
            [*CLI_COMMAND, "flow-run", "logs", str(run.id), "--follow"],
            env=server.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1.5)
            assert follower.poll() is None, "--follow stopped while the run was RUNNING"
            last = schemas.LogCreate(flow_run_id=run.id, message="last line", level=40)
            client.create_logs([last])
            done = schemas.StateTransition(state=StateType.COMPLETED, lease_token=run.lease_token)
            client.set_flow_run_state(run.id, done)
            out, err = follower.communicate(timeout=30)
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
    assert follower.returncode == 0, err
    lines = out.splitlines()
    assert [line.split(maxsplit=3)[2:] for line in lines] == [
        ["INFO", "first line"],
        ["ERROR", "last line"],
    ]
    plain = server.cli("flow-run", "logs", str(run.id)).stdout
    assert plain == out
