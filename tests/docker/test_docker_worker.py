"""The docker worker against a real server, a real daemon and the real engine in containers."""

from __future__ import annotations

from typing import Any

from docker_support import (
    FAST,
    FINAL,
    POOL,
    RUN_TIMEOUT,
    containers_of,
    docker_deployment,
    log_messages,
    wait_no_container,
)
from worker_support import Workers, trigger, wait_for_state, wait_until

from _support import RunningServer
from dockyard import schemas


def test_a_run_completes_in_a_container(
    server: RunningServer, workers: Workers, flow_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, flow_image)
        assert str(client.read_work_pool(POOL).status) == "NOT_READY"
        worker = workers.start("--pool", POOL, "--name", "docker-1")
        assert "worker 'docker-1' (docker)" in worker.output()
        assert str(client.read_work_pool(POOL).status) == "READY"

        run = trigger(client, deployment, parameters={"greeting": "ahoy"})
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "COMPLETED", done.state_message
        assert done.worker_name == "docker-1"
        assert "ahoy from a container" in log_messages(client, run.id).splitlines()

        output = worker.wait_for_output(f"flow run '{run.name}' ({run.id}) completed")
        assert f"(id {done.infrastructure_id})" in output
        assert f"{run.name} | ahoy from a container" in output
        wait_no_container(docker_client, run.id)


def test_cancel_stops_the_container(
    server: RunningServer, workers: Workers, flow_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, flow_image)
        workers.start("--pool", POOL, env=FAST)
        run = trigger(client, deployment, parameters={"wait": 600})
        wait_for_state(client, run.id, {"RUNNING"}, RUN_TIMEOUT)
        assert [c.status for c in containers_of(docker_client, run.id)] == ["running"]

        client.cancel_flow_run(run.id)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "CANCELLED", done.state_message
        wait_no_container(docker_client, run.id)


def test_a_container_that_exits_without_a_final_state_crashes(
    server: RunningServer, workers: Workers, flow_image: str, docker_client: Any
) -> None:
    command = ["python", "-c", "print('about to fail', flush=True); raise SystemExit(3)"]
    with server.client() as client:
        deployment = docker_deployment(client, flow_image, command=command)
        workers.start("--pool", POOL)
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "CRASHED"
        assert done.state_message == (
            f"its container (id {done.infrastructure_id}) exited with code 3 without reporting "
            "a final state"
        )
        assert "about to fail" in log_messages(client, run.id)
        wait_no_container(docker_client, run.id)


def test_the_hooks_of_a_killed_run_are_called_in_a_container_like_its_own(
    server: RunningServer, workers: Workers, flow_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        docker_deployment(client, flow_image)  # the pool
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="doomed",
                name="killed",
                entrypoint="flows.py:doomed",
                work_pool_name=POOL,
                job_variables={"image": flow_image, "image_pull_policy": "Never"},
            )
        )
        workers.start("--pool", POOL)
        run = trigger(client, deployment)
        assert wait_for_state(client, run.id, FINAL, RUN_TIMEOUT).state == "CRASHED"
        wait_until(
            lambda: f"hook saw {run.id} Crashed" in log_messages(client, run.id),
            RUN_TIMEOUT,
            "the on_crashed hook to log",
        )
    wait_until(
        lambda: (
            not docker_client.containers.list(
                all=True, filters={"label": f"dockyard.hooks-of={run.id}"}
            )
        ),
        30,
        "the hooks container to go",
    )


def test_a_missing_image_with_never_crashes_with_the_reason(
    server: RunningServer, workers: Workers, base_image: str
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, "dockyard-test/not-built:1")
        workers.start("--pool", POOL)
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "CRASHED"
        assert done.state_message is not None
        assert done.state_message.startswith(
            "its container could not start: image 'dockyard-test/not-built:1' is not on this "
            "machine and its image_pull_policy is Never"
        )


def test_docker_not_running_crashes_the_run_with_the_reason(
    server: RunningServer, workers: Workers, tmp_path: Any, base_image: str
) -> None:
    socket = tmp_path / "no-docker.sock"
    with server.client() as client:
        deployment = docker_deployment(client, base_image)
        workers.start("--pool", POOL, env={"DOCKER_HOST": f"unix://{socket}"})
        run = trigger(client, deployment)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "CRASHED"
        assert done.state_message == (
            f"its container could not start: Docker is not running (cannot connect to "
            f"{socket}); start Docker Desktop or `dockerd` on the worker's machine"
        )


def test_a_restarted_worker_watches_its_running_container_again(
    server: RunningServer, workers: Workers, flow_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, flow_image)
        first = workers.start("--pool", POOL, "--name", "steady", env=FAST)
        run = trigger(client, deployment, parameters={"wait": 600})
        wait_for_state(client, run.id, {"RUNNING"}, RUN_TIMEOUT)
        first.kill()  # no goodbye: the container goes on under its own lease
        assert [c.status for c in containers_of(docker_client, run.id)] == ["running"]

        second = workers.start("--pool", POOL, "--name", "steady", env=FAST)
        short_id = containers_of(docker_client, run.id)[0].short_id
        assert f"watching flow run '{run.name}' ({run.id}) again (id {short_id})" in (
            second.output()
        )
        client.cancel_flow_run(run.id)
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "CANCELLED", done.state_message
        second.wait_for_output(f"flow run '{run.name}' ({run.id}) cancelled")
        wait_no_container(docker_client, run.id)


def test_a_container_that_ended_without_its_worker_is_removed_by_the_next_one(
    server: RunningServer, workers: Workers, flow_image: str, docker_client: Any
) -> None:
    with server.client() as client:
        deployment = docker_deployment(client, flow_image)
        gone = workers.start("--pool", POOL, "--name", "gone")
        run = trigger(client, deployment, parameters={"wait": 1})
        wait_for_state(client, run.id, {"RUNNING"}, RUN_TIMEOUT)
        gone.kill()
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "COMPLETED"  # the engine reports it: no worker needed
        wait_until(
            lambda: [c.status for c in containers_of(docker_client, run.id)] == ["exited"],
            30,
            "the container to exit",
        )
        workers.start("--pool", POOL, "--name", "another")
        wait_no_container(docker_client, run.id)
