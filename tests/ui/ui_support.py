"""Helpers of the UI tests: a worker process, flow files, and runs made through the API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _support import RunningServer
from dockyard import schemas
from dockyard.client import Client

WORKER_STOP_SECONDS = 15.0

FLOWS = """\
import time

from dockyard import flow


@flow(log_prints=True)
def hello(name: str = "dock"):
    print(f"hello from the UI test, {name}!")


@flow(log_prints=True)
def nap(seconds: int = 60):
    print(f"napping for {seconds} s")
    time.sleep(seconds)
"""


def write_flows(directory: Path) -> Path:
    path = directory / "flows.py"
    path.write_text(FLOWS)
    return path


@contextlib.contextmanager
def running_worker(
    server: RunningServer, pool: str, cwd: Path, name: str = "ui-worker"
) -> Iterator[subprocess.Popen[bytes]]:
    """``dockyard worker start --pool POOL`` in the background, stopped (Ctrl-C) at the end."""
    worker_cli = Path(__file__).parents[2] / "src" / "dockyard" / "cli" / "worker.py"
    assert worker_cli.exists(), f"{worker_cli} is missing: the worker CLI is not there yet"
    log_path = cwd / f"worker-{name}.log"
    env = {**server.env, "DOCKYARD_HEARTBEAT_SECONDS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "dockyard.cli.main", "worker", "start", "--pool", pool]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--name", name],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        time.sleep(0.2)
        if process.poll() is not None:
            pytest.fail(f"the worker exited at once:\n{log_path.read_text()}", pytrace=False)
        yield process
    finally:
        _stop(process)
    output = log_path.read_text(errors="replace")
    if "Traceback" in output:
        pytest.fail(f"the worker wrote a traceback:\n{output}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


POOL_SECRET = "pool-secret-123"
DEPLOYMENT_SECRET = "hunter2-deployment"
RUN_SECRET = "run-secret-456"


def seed_showcase(client: Client) -> dict[str, str]:
    """Pools, deployments and runs in every common state, made through the API as a worker
    and an engine would; returns ids of things worth a look (``run``, ``deployment``, ...)."""
    docker = client.read_worker_type("docker").base_job_template
    credentials = docker["variables"]["properties"]["registry_credentials"]
    credentials["default"] = {"username": "ci-bot", "password": POOL_SECRET}
    client.create_work_pool(
        schemas.WorkPoolCreate(name="my-docker-pool", type="docker", base_job_template=docker)
    )
    client.create_work_pool(
        schemas.WorkPoolCreate(
            name="local", type="process", concurrency_limit=4, description="This machine"
        )
    )
    client.create_work_pool(schemas.WorkPoolCreate(name="nightly", type="process", paused=True))
    client.create_work_queue("local", schemas.WorkQueueCreate(name="urgent", priority=1))
    repo = client.upsert_deployment(
        schemas.DeploymentCreate(
            flow_name="get_repo_info",
            name="my-first-deployment",
            entrypoint="repo_info.py:get_repo_info",
            path="/srv/flows",
            work_pool_name="local",
            parameters={"repo_name": "PrefectHQ/prefect"},
            parameter_schema={
                "type": "object",
                "properties": {
                    "repo_name": {
                        "type": "string",
                        "title": "Repo name",
                        "default": "PrefectHQ/prefect",
                        "description": "owner/name of a GitHub repository",
                        "position": 0,
                    },
                    "top": {"type": "integer", "title": "Top", "default": 3, "position": 1},
                },
            },
            schedules=[schemas.ScheduleCreate(interval=3600)],
            tags=["tutorial"],
        )
    )
    etl = client.upsert_deployment(
        schemas.DeploymentCreate(
            flow_name="etl",
            name="nightly",
            entrypoint="etl.py:etl",
            work_pool_name="my-docker-pool",
            image="etl:1.4",
            job_variables={
                "image_pull_policy": "IfNotPresent",
                "registry_credentials": {"username": "bot", "password": DEPLOYMENT_SECRET},
            },
            schedules=[schemas.ScheduleCreate(cron="0 3 * * *", timezone="Europe/Paris")],
        )
    )
    ids = {"deployment": str(repo.id), "docker_deployment": str(etl.id)}
    finals = ["COMPLETED", "FAILED", "COMPLETED", "CRASHED", "RUNNING", "COMPLETED"]
    for number, final in enumerate(finals):
        deployment = repo if number % 2 == 0 else etl
        ids[final.lower()] = _seed_run(client, deployment, final, number)
    return ids


def _seed_run(client: Client, deployment: schemas.Deployment, final: str, number: int) -> str:
    job_variables = (
        {"registry_credentials": {"username": "bot", "password": RUN_SECRET}}
        if deployment.work_pool_name == "my-docker-pool"
        else {"env": {"ATTEMPT": str(number)}}
    )
    client.create_deployment_run(
        deployment.id, schemas.DeploymentRunCreate(job_variables=job_variables)
    )
    pool = deployment.work_pool_name
    (claimed,) = client.claim(
        schemas.ClaimRequest(worker_name=f"{pool}-worker", work_pool_name=pool)
    )
    run_id, token = claimed.flow_run.id, claimed.lease_token
    update = schemas.FlowRunUpdate(infrastructure_id=f"pid-{4000 + number}", lease_token=token)
    client.update_flow_run(run_id, update)
    client.set_flow_run_state(run_id, schemas.StateTransition(state="RUNNING", lease_token=token))
    started = schemas.utcnow()
    lines = [
        "Downloading repository statistics",
        f"Stars: {52000 + number * 17}",
        "Forks: 5400",
    ]
    client.create_logs([schemas.LogCreate(flow_run_id=run_id, message=m) for m in lines])
    client.create_task_runs(
        [
            schemas.TaskRunRecord(
                id=uuid.uuid4(),
                flow_run_id=run_id,
                name=f"fetch-stats-{i}",
                state="COMPLETED",
                start_time=started,
                end_time=schemas.utcnow(),
            )
            for i in range(2)
        ]
    )
    if final != "RUNNING":
        message = "ValueError: repository not found" if final != "COMPLETED" else None
        if final != "COMPLETED":
            client.create_logs(
                [schemas.LogCreate(flow_run_id=run_id, level=40, message=message or "")]
            )
        client.set_flow_run_state(
            run_id, schemas.StateTransition(state=final, lease_token=token, message=message)
        )
    return str(run_id)
