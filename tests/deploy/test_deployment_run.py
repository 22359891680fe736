"""``dockyard deployment run``, ``--watch``, ``flow-run cancel`` and ``deployment ls``'s reasons,
with real workers running the runs."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deploy_support import FLOWS, Workers, log_messages, state_of, wait_until, write

from _support import RunningServer
from dockyard import schemas

ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def deployment(
    server: RunningServer,
    tmp_path: Path,
    function: str,
    name: str = "d",
    pool: str | None = "pool",
    **fields: object,
) -> schemas.Deployment:
    """A deployment of ``FLOWS``'s ``function`` (its pool is made if missing)."""
    write(tmp_path / "project" / "flows.py", FLOWS)
    with server.client() as client:
        if pool is not None and not any(p.name == pool for p in client.list_work_pools()):
            client.create_work_pool(schemas.WorkPoolCreate(name=pool, type="process"))
        found: schemas.Deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name=function.replace("_", "-"),
                name=name,
                entrypoint=f"flows.py:{function}",
                path=str(tmp_path / "project"),
                work_pool_name=pool,
                **fields,  # type: ignore[arg-type]
            )
        )
    return found


def watched_states(output: str) -> list[str]:
    """The states ``--watch`` printed: ``<date> <time> state    RUNNING: message``."""
    fields = [line.split() for line in output.splitlines()]
    return [f[3].rstrip(":") for f in fields if len(f) > 3 and f[2] == "state"]


def created_id(output: str) -> uuid.UUID:
    first = output.splitlines()[0]
    assert first.startswith("Created flow run '"), output
    match = ID.search(first)
    assert match, output
    return uuid.UUID(match.group())


def test_run_takes_params_job_variables_and_a_later_start(
    server: RunningServer, tmp_path: Path
) -> None:
    deployment(server, tmp_path, "get_repo_info", name="my-first-deployment")
    done = server.cli(
        "deployment",
        "run",
        "get_repo_info/my-first-deployment",
        "--params",
        '{"repo_name": "a/b", "stars": 1}',
        "--param",
        "stars=5",
        "--param",
        "repo_name=x/y",
        "--job-variable",
        "stream_output=false",
        "--job-variable",
        "env.GREETING=hi there",
        "--start-in",
        "10m",
    )
    run_id = created_id(done.stdout)
    assert f"/runs/{run_id}" in done.stdout
    with server.client() as client:
        run = client.read_flow_run(run_id)
    assert run.parameters == {"repo_name": "x/y", "stars": 5}
    assert run.job_variables == {"stream_output": False, "env.GREETING": "hi there"}
    assert run.state == "SCHEDULED" and run.scheduled_start is not None
    later = run.scheduled_start - datetime.now(UTC)
    assert timedelta(minutes=9) < later <= timedelta(minutes=10)
    assert "It will wait: no worker is online for work pool 'pool'" in done.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--param", "novalue"], "--param takes KEY=VALUE"),
        (["--params", "[1]"], "--params takes a JSON object"),
        (["--start-in", "soon"], "--start-in takes a duration"),
        (["--job-variable", "stream_output=3"], "stream_output"),
    ],
)
def test_bad_options_are_explained(
    server: RunningServer, tmp_path: Path, args: list[str], expected: str
) -> None:
    deployment(server, tmp_path, "get_repo_info")
    done = server.cli("deployment", "run", "get-repo-info/d", *args, check=1)
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_a_slip_in_the_name_gets_suggestions(server: RunningServer, tmp_path: Path) -> None:
    deployment(server, tmp_path, "get_repo_info", name="my-first-deployment")
    done = server.cli("deployment", "run", "get_repo_info/my-deployment", check=1)
    assert "deployment 'get_repo_info/my-deployment' not found" in done.stderr
    assert "did you mean: get-repo-info/my-first-deployment" in done.stderr


@pytest.mark.parametrize(
    ("function", "params", "status", "state"),
    [
        ("get_repo_info", ["--param", "repo_name=watched/repo"], 0, "COMPLETED"),
        ("failing", [], 1, "FAILED"),
    ],
)
def test_watch_streams_states_and_logs_and_exits_with_the_outcome(
    server: RunningServer,
    workers: Workers,
    tmp_path: Path,
    function: str,
    params: list[str],
    status: int,
    state: str,
) -> None:
    deployment(server, tmp_path, function)
    workers.start("pool")
    name = f"{function.replace('_', '-')}/d"
    done = server.cli("deployment", "run", name, *params, "--watch", check=status)
    lines = done.stdout.splitlines()
    created_id(done.stdout)
    states = watched_states(done.stdout)
    assert states == ["SCHEDULED", "PENDING", "RUNNING", state]
    assert lines[-1].endswith(f"ended {state}.")
    if state == "COMPLETED":
        assert any("watched/repo has 0 stars" in line for line in lines)
    else:
        assert any("RuntimeError: this flow fails" in line for line in lines)


def test_watch_follows_a_crash_retry(
    server: RunningServer, workers: Workers, tmp_path: Path
) -> None:
    deployment(server, tmp_path, "crash_once", crash_retries=1)
    workers.start("pool")
    marker = tmp_path / "crashed-once"
    done = server.cli("deployment", "run", "crash-once/d", "--param", f"marker={marker}", "--watch")
    states = watched_states(done.stdout)
    assert states[:4] == ["SCHEDULED", "PENDING", "RUNNING", "CRASHED"]
    assert states[-1] == "COMPLETED" and states.count("RUNNING") == 2
    assert done.stdout.splitlines()[-1].endswith("ended COMPLETED.")


def test_cancel_a_scheduled_run(server: RunningServer, tmp_path: Path) -> None:
    deployment(server, tmp_path, "get_repo_info")
    run_id = created_id(
        server.cli("deployment", "run", "get-repo-info/d", "--start-in", "1h").stdout
    )
    done = server.cli("flow-run", "cancel", str(run_id))
    assert "is CANCELLED" in done.stdout
    assert state_of(server, run_id) == "CANCELLED"
    again = server.cli("flow-run", "cancel", str(run_id), check=1)
    assert "nothing to cancel" in again.stderr


def test_cancel_a_running_run(server: RunningServer, workers: Workers, tmp_path: Path) -> None:
    deployment(server, tmp_path, "slow")
    workers.start("pool")
    run_id = created_id(server.cli("deployment", "run", "slow/d").stdout)
    wait_until(lambda: "sleeping" in log_messages(server, run_id), 60, "the flow to start")
    done = server.cli("flow-run", "cancel", str(run_id))
    assert "is CANCELLING" in done.stdout
    wait_until(lambda: state_of(server, run_id) == "CANCELLED", 60, "the run to be CANCELLED")
    assert "woke up" not in log_messages(server, run_id)


def test_ls_says_why_runs_wait(server: RunningServer, tmp_path: Path) -> None:
    no_worker = deployment(server, tmp_path, "get_repo_info", name="no-worker")
    paused = deployment(server, tmp_path, "get_repo_info", name="paused", paused=True)
    served = deployment(server, tmp_path, "get_repo_info", name="served", pool=None)
    limited = deployment(server, tmp_path, "slow", name="limited", concurrency_limit=1)
    deployment(server, tmp_path, "slow", name="idle")
    with server.client() as client:
        for d in (no_worker, paused, served, limited, limited):
            client.create_deployment_run(d.id, schemas.DeploymentRunCreate())
        running = client.list_flow_runs(deployment_id=limited.id)[0]
        client.set_flow_run_state(running.id, schemas.StateTransition(state="PENDING"))
    listed = {line.split()[0]: line for line in server.cli("deployment", "ls").stdout.splitlines()}
    assert (
        "1 run waiting: no worker is online for work pool 'pool'"
        in listed["get-repo-info/no-worker"]
    )
    assert "the deployment is paused" in listed["get-repo-info/paused"]
    assert "its serve process is not running" in listed["get-repo-info/served"]
    assert "(served)" in listed["get-repo-info/served"]
    assert listed["slow/idle"].split()[-1] == "-"
    with server.client() as client:
        client.heartbeat(schemas.WorkerHeartbeat(name="w", work_pool_name="pool"))
        listed = {
            line.split()[0]: line for line in server.cli("deployment", "ls").stdout.splitlines()
        }
        assert "concurrency limit is reached (1/1 running)" in listed["slow/limited"]
        client.pause_work_pool("pool")
    listed = {line.split()[0]: line for line in server.cli("deployment", "ls").stdout.splitlines()}
    assert "work pool 'pool' is paused" in listed["get-repo-info/no-worker"]
    assert "PAUSED" in listed["get-repo-info/paused"]
