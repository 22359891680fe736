"""The docker worker type against the contract every type keeps, plus what is its own.

These call the type's methods directly, as the base worker does, with a real daemon and no
server; containers run the session's base image (Python, no Dockyard).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import containers_of
from test_contract import EXIT_TIMEOUT, UNUSED_API, WorkerContract, claimed_run

from dockyard import settings
from dockyard.exceptions import LaunchError
from dockyard.workers import worker_class
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
        with pytest.raises(LaunchError, match="is not on this machine and its image_pull_policy"):
            worker.launch(claimed_run(), config)

    def test_failed_pull_says_why(self, worker: DockerWorker) -> None:
        # nothing listens on port 9: the pull fails at once, on loopback
        config = {"image": "127.0.0.1:9/dockyard-test/nothing:1"}
        with pytest.raises(
            LaunchError, match=re.escape("cannot pull image '127.0.0.1:9/dockyard-test")
        ):
            worker.launch(claimed_run(), config)

    def test_no_image_says_how_to_set_one(self, worker: DockerWorker) -> None:
        with pytest.raises(LaunchError, match="names no image"):
            worker.launch(claimed_run(), {})

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
