"""The docker worker type against the contract every type keeps, plus what is its own.

These call the type's methods directly, as the base worker does, with a real daemon and no
server; containers run the session's base image (Python, no Dockyard).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import containers_of
from test_contract import EXIT_TIMEOUT, UNUSED_API, WorkerContract, claimed_run

from dockyard import settings
from dockyard.exceptions import LaunchError
from dockyard.schemas import ClaimedRun
from dockyard.workers import worker_class
from dockyard.workers._docker_recover import lease_token_of
from dockyard.workers._docker_spec import container_spec
from dockyard.workers.docker import DockerWorker


class TestDockerWorker(WorkerContract):
    @pytest.fixture
    def worker(self, base_image: str) -> Iterator[DockerWorker]:
        self.image = base_image
        worker = DockerWorker(
            pool="contract", name="contract-worker", settings=settings.load(api_url=UNUSED_API)
        )
        yield worker
        worker.close()

    def config_for(self, code: str) -> dict[str, Any]:
        return {
            "image": self.image,
            "image_pull_policy": "Never",
            "command": ["python", "-c", code],
        }

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:
        return {"image": "dockyard-test/no-such-image:never", "image_pull_policy": "Never"}

    def wait_gone(self, docker_client: Any, run_id: Any) -> None:
        deadline = time.monotonic() + EXIT_TIMEOUT
        while containers_of(docker_client, run_id):
            assert time.monotonic() < deadline, "the container was not removed"
            time.sleep(0.05)

    def test_it_is_the_docker_type(self) -> None:
        assert worker_class("docker") is DockerWorker

    def test_container_is_labelled_and_on_the_host_network(
        self, worker: DockerWorker, docker_client: Any
    ) -> None:
        claimed = claimed_run()
        config = {**self.config_for("import time; time.sleep(30)"), "labels": {"team": "data"}}
        handle = worker.launch(claimed, config)
        try:
            container = docker_client.containers.get(handle.id)
            labels = container.labels
            assert labels["dockyard.flow-run-id"] == str(claimed.flow_run.id)
            assert labels["dockyard.worker-name"] == "contract-worker"
            assert labels["team"] == "data"
            assert container.attrs["HostConfig"]["NetworkMode"] == "host"
            assert container.attrs["HostConfig"]["Privileged"] is False
            assert container.name.startswith("dockyard-contract-run-")
            assert worker.infrastructure_id(handle) == container.short_id
        finally:
            worker.kill(handle, 0.0)

    def test_finished_container_is_removed(self, worker: DockerWorker, docker_client: Any) -> None:
        claimed = claimed_run()
        handle = worker.launch(claimed, self.config_for("print('done')"))
        assert self.wait_exit(worker, handle) == 0
        assert not containers_of(docker_client, claimed.flow_run.id)

    def test_auto_remove_false_keeps_it(self, worker: DockerWorker, docker_client: Any) -> None:
        claimed = claimed_run()
        config = {**self.config_for("import sys; sys.exit(4)"), "auto_remove": False}
        handle = worker.launch(claimed, config)
        assert self.wait_exit(worker, handle) == 4
        kept = containers_of(docker_client, claimed.flow_run.id)
        assert [c.status for c in kept] == ["exited"]

    def test_env_variables_and_no_worker_environment(
        self, worker: DockerWorker, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ONLY_ON_THE_WORKER", "secret")
        code = "import os; print(os.environ.get('GREETING'), os.environ.get('ONLY_ON_THE_WORKER'))"
        claimed = claimed_run()
        config = {**self.config_for(code), "env": {"GREETING": "hi", "DROPPED": None}}
        handle = worker.launch(claimed, config)
        assert self.wait_exit(worker, handle) == 0
        assert worker.output_path(claimed.flow_run.id).read_text().split() == ["hi", "None"]

    def test_missing_image_with_never_says_so(self, worker: DockerWorker) -> None:
        config = {"image": "dockyard-test/no-such-image:never", "image_pull_policy": "Never"}
        with pytest.raises(
            LaunchError, match="is not on this machine and its image_pull_policy"
        ) as raised:
            worker.launch(claimed_run(), config)
        assert raised.value.retryable is False  # it would fail the same way again

    def test_failed_pull_says_why(self, worker: DockerWorker) -> None:
        # nothing listens on port 9: the pull fails at once, on loopback
        config = {"image": "127.0.0.1:9/dockyard-test/nothing:1"}
        with pytest.raises(
            LaunchError, match=re.escape("cannot pull image '127.0.0.1:9/dockyard-test")
        ) as raised:
            worker.launch(claimed_run(), config)
        assert raised.value.retryable is True  # the registry may be back by the next attempt

    def test_no_image_says_how_to_set_one(self, worker: DockerWorker) -> None:
        with pytest.raises(LaunchError, match="names no image") as raised:
            worker.launch(claimed_run(), {})
        assert raised.value.retryable is False

    @pytest.mark.parametrize(
        ("variables", "reason"),
        [
            # refused by the Docker SDK before any request
            ({"mem_limit": "lots"}, "its job configuration is not valid for Docker: "),
            # refused by the daemon as a bad request (400)
            ({"mem_limit": 1}, "Docker refused to create its container: Minimum memory limit"),
            ({"image": "Not/A-Valid:Reference"}, "cannot look up image 'Not/A-Valid:Reference'"),
        ],
    )
    def test_a_configuration_docker_refuses_is_not_retried(
        self, worker: DockerWorker, variables: dict[str, Any], reason: str
    ) -> None:
        with pytest.raises(LaunchError, match=re.escape(reason)) as raised:
            worker.launch(claimed_run(), {**self.config_for("pass"), **variables})
        assert raised.value.retryable is False

    def test_each_attempt_starts_beside_the_containers_of_earlier_ones(
        self, worker: DockerWorker, docker_client: Any
    ) -> None:
        # attempt 1 kept (auto_remove false), attempt 2 left behind by a worker that died
        claimed = claimed_run()
        kept = {**self.config_for("pass"), "auto_remove": False}
        assert self.wait_exit(worker, worker.launch(claimed, kept)) == 0
        second = attempt(claimed, 2)
        spec = container_spec(
            second, self.config_for("pass"), api_url=UNUSED_API, api_key=None, worker="gone"
        )
        left = docker_client.containers.create(**spec.create_kwargs())
        left.start()
        left.wait()

        third = attempt(claimed, 3)
        handle = worker.launch(third, self.config_for("print('attempt 3')"))
        assert self.wait_exit(worker, handle) == 0
        assert worker.output_path(claimed.flow_run.id).read_text().endswith("attempt 3\n")
        # the kept one stays, the left-over one is removed, the finished one is removed
        remaining = containers_of(docker_client, claimed.flow_run.id)
        assert [c.labels["dockyard.flow-run-attempt"] for c in remaining] == ["1"]
        assert remaining[0].name.endswith(f"{claimed.flow_run.id.hex[:8]}-1")

    def test_a_container_tells_the_lease_token_it_was_started_with(
        self, worker: DockerWorker, docker_client: Any, launch: Any
    ) -> None:
        claimed, handle = launch("import time; time.sleep(30)")
        container = docker_client.containers.get(handle.id)
        assert lease_token_of(container) == claimed.lease_token

    def test_docker_not_running_says_so(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
        worker = DockerWorker(pool="contract", settings=settings.load(api_url=UNUSED_API))
        config = {"image": "dockyard-test/python:3.11"}
        with pytest.raises(LaunchError) as raised:
            worker.launch(claimed_run(), config)
        assert str(raised.value) == (
            f"Docker is not running (cannot connect to {tmp_path}/docker.sock); "
            "start Docker Desktop or `dockerd` on the worker's machine"
        )
        assert worker.recover() == {}
        assert raised.value.retryable is True  # Docker may be running by the next attempt


def attempt(claimed: ClaimedRun, number: int) -> ClaimedRun:
    """``claimed`` as its crash retry ``number`` would be handed out."""
    run = claimed.flow_run.model_copy(update={"attempt": number})
    return claimed.model_copy(update={"flow_run": run, "lease_token": uuid.uuid4()})
