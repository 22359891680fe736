"""The docker worker under faults: crash retries beside earlier attempts' containers, launch
failures that are not retried, and a worker that restarts while its runs go on.

Containers that must not report on their run only sleep, in the base image (no
engine): their run stays PENDING, renewed by the worker's heartbeat only.
"""

from __future__ import annotations

from typing import Any

import pytest
from docker_support import (
    FINAL,
    RUN_TIMEOUT,
    containers_of,
    docker_deployment,
    wait_no_container,
)
from worker_support import Workers, trigger, wait_for_state, wait_until

from _support import RunningServer
from dockyard import schemas

NOT_RETRIED = "(not retried: starting it again would fail the same way)"
SLEEP = ["python", "-c", "import time; print('up', flush=True); time.sleep(600)"]
# A lease that runs out quickly once nobody renews it (a killed worker); workers get the
# server's environment, so they heartbeat every third of it.
SHORT_LEASE = [{"DOCKYARD_LEASE_SECONDS": "4"}]
# A lease that outlives a worker's restart by far: only a worker ends the run, not the reaper.
LONG_LEASE = [{"DOCKYARD_LEASE_SECONDS": "120"}]
# A worker whose heartbeat cannot come during a test: what it does, it does at start.
NO_HEARTBEAT = {"DOCKYARD_HEARTBEAT_SECONDS": "100000", "DOCKYARD_LEASE_SECONDS": "300000"}


def attempts(docker_client: Any, run_id: Any) -> dict[str, str]:
    """Attempt → status of the run's containers."""
    return {
        c.labels["dockyard.flow-run-attempt"]: c.status
        for c in containers_of(docker_client, run_id)
    }


def history(client: Any, run_id: Any) -> list[str]:
    return [str(state.type) for state in client.read_flow_run_states(run_id)]


def launched(client: Any, run_id: Any) -> schemas.FlowRun:
    """Wait until the run's container started (the worker recorded its id)."""

    def recorded() -> schemas.FlowRun | None:
        run: schemas.FlowRun = client.read_flow_run(run_id)
        return run if run.infrastructure_id else None

    return wait_until(recorded, RUN_TIMEOUT, "the run's container to start")


def wait_attempt_ended(client: Any, run_id: Any, attempt: int) -> schemas.FlowRun:
    def ended() -> schemas.FlowRun | None:
        run: schemas.FlowRun = client.read_flow_run(run_id)
        return run if run.attempt == attempt and run.state in FINAL else None

    return wait_until(ended, RUN_TIMEOUT, f"attempt {attempt} to end")


def test_a_crash_retry_starts_beside_a_kept_container(
    server: RunningServer, workers: Workers, base_image: str, docker_client: Any
) -> None:
    command = ["python", "-c", "raise SystemExit(3)"]
    with server.client() as client:
        deployment = docker_deployment(
            client, base_image, crash_retries=1, command=command, auto_remove=False
        )
        workers.start("--pool", "my-docker-pool")
        run = trigger(client, deployment)
        done = wait_attempt_ended(client, run.id, 2)
        assert done.state == "CRASHED"
        assert done.state_message == (
            f"its container (id {done.infrastructure_id}) exited with code 3 without reporting "
            "a final state"
        )
        kept = containers_of(docker_client, run.id)
        assert sorted(c.name.rsplit("-", 1)[1] for c in kept) == ["1", "2"]
        assert {c.status for c in kept} == {"exited"}


@pytest.mark.parametrize("server", SHORT_LEASE, indirect=True)
def test_another_worker_takes_the_retry_after_the_first_died(
    server: RunningServer, workers: Workers, base_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, base_image, crash_retries=1, command=SLEEP)
        first = workers.start("--pool", "my-docker-pool", "--name", "first")
        run = trigger(client, deployment)
        launched(client, run.id)
        first.kill()
        # its container dies too, and nobody follows it: it stays, exited
        for container in containers_of(docker_client, run.id):
            container.kill()
        wait_until(lambda: attempts(docker_client, run.id) == {"1": "exited"}, 30, "it to exit")

        workers.start("--pool", "my-docker-pool", "--name", "second")
        wait_until(
            lambda: attempts(docker_client, run.id) == {"2": "running"},
            RUN_TIMEOUT,
            "attempt 2 running, attempt 1's container removed",
        )
        now = client.read_flow_run(run.id)
        assert (now.attempt, now.state, now.worker_name) == (2, "PENDING", "second")


@pytest.mark.parametrize("server", SHORT_LEASE, indirect=True)
def test_a_restarted_worker_removes_its_earlier_attempts_container(
    server: RunningServer, workers: Workers, base_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, base_image, crash_retries=1, command=SLEEP)
        first = workers.start("--pool", "my-docker-pool", "--name", "steady")
        run = trigger(client, deployment)
        launched(client, run.id)
        first.kill()
        # attempt 2 must wait: only the restart may tidy attempt 1's container away
        client.update_deployment(deployment.id, schemas.DeploymentUpdate(paused=True))
        for container in containers_of(docker_client, run.id):
            container.kill()
        wait_until(
            lambda: client.read_flow_run(run.id).attempt == 2, RUN_TIMEOUT, "the crash retry"
        )
        assert attempts(docker_client, run.id) == {"1": "exited"}

        again = workers.start("--pool", "my-docker-pool", "--name", "steady")
        wait_no_container(docker_client, run.id)
        assert f"watching flow run '{run.name}'" not in again.output()  # attempt 1 is over


def test_a_launch_that_would_fail_the_same_way_is_not_retried(
    server: RunningServer, workers: Workers, base_image: str
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, "dockyard-test/not-built:1", crash_retries=2)
        workers.start("--pool", "my-docker-pool")
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "CRASHED"
        assert done.state_message is not None
        assert done.state_message.startswith(
            "its container could not start: image 'dockyard-test/not-built:1' is not on this "
            "machine and its image_pull_policy is Never"
        )
        assert done.state_message.endswith(NOT_RETRIED)
        # the crash and a retry would be one write: a CRASHED run read here is not retried
        assert done.attempt == 1
        assert history(client, run.id)[-1] == "CRASHED"


def test_a_launch_that_may_pass_is_retried(
    server: RunningServer, workers: Workers, base_image: str
) -> None:
    # nothing listens on port 9: every pull fails at once, on loopback
    with server.client() as client:
        deployment = docker_deployment(
            client,
            "127.0.0.1:9/dockyard-test/nothing:1",
            crash_retries=1,
            image_pull_policy="IfNotPresent",
        )
        workers.start("--pool", "my-docker-pool")
        run = trigger(client, deployment)
        done = wait_attempt_ended(client, run.id, 2)
        assert done.state == "CRASHED"
        assert done.state_message is not None
        assert done.state_message.startswith("its container could not start: cannot pull image")
        assert NOT_RETRIED not in done.state_message


@pytest.mark.parametrize("server", LONG_LEASE, indirect=True)
def test_a_cancel_while_the_worker_was_down_is_acted_on_when_it_restarts(
    server: RunningServer, workers: Workers, base_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, base_image, command=SLEEP)
        first = workers.start("--pool", "my-docker-pool", "--name", "steady")
        run = trigger(client, deployment)
        started = launched(client, run.id)
        first.kill()
        assert client.cancel_flow_run(run.id).state == "CANCELLING"

        # no heartbeat of this worker can tell it: it acts on what it reads at start
        again = workers.start("--pool", "my-docker-pool", "--name", "steady", env=NO_HEARTBEAT)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        # the worker (not the server's reaper) ended it, with the container's lease token
        assert done.state == "CANCELLED", done.state_message
        assert done.state_message is not None
        assert done.state_message.startswith(
            f"cancelled: its container (id {started.infrastructure_id})"
        )
        again.wait_for_output(f"flow run '{run.name}' ({run.id}) cancelled")
        wait_no_container(docker_client, run.id)


@pytest.mark.parametrize("server", LONG_LEASE, indirect=True)
def test_a_restarted_worker_ends_the_runs_it_took_back(
    server: RunningServer, workers: Workers, base_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, base_image, command=SLEEP)
        first = workers.start("--pool", "my-docker-pool", "--name", "steady")
        run = trigger(client, deployment)
        started = launched(client, run.id)
        first.kill()
        again = workers.start("--pool", "my-docker-pool", "--name", "steady")
        again.wait_for_output(f"watching flow run '{run.name}' ({run.id}) again")

        for container in containers_of(docker_client, run.id):
            container.kill()
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        # a PENDING run is leased: only its lease token (read back from the container) ends it
        assert done.state == "CRASHED"
        assert done.state_message == (
            f"its container (id {started.infrastructure_id}) exited with code 137 without "
            "reporting a final state"
        )
        wait_no_container(docker_client, run.id)
