"""``compose.yaml``: the image built from the ``Dockerfile``, a server and a docker worker
brought up with ``docker-compose``, a flow run through them, and the stack torn down.

No registry can be reached in CI and every connection stays on loopback, so the stack runs
with ``tests/deploy/compose.ci.yaml`` over ``compose.yaml`` (see that file): the image builds
on the local base image, the server and the worker use host networking, and the server uses
the test suite's PostgreSQL instead of the ``postgres`` service, which is left out. Docker
refuses a published port with host networking and an override file cannot remove one, so the
server's ``ports`` are dropped from the merged configuration (``docker-compose config``).

The image is tagged ``dockyard-test/server:ci`` and kept: its dependency layer is reused
until ``pyproject.toml`` changes (a build then takes some 20 s more).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

# the Docker tests' helpers, and the worker tests' they use
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docker"))

from docker_support import (
    BASE_IMAGE,
    FINAL,
    FLOWS,
    RUN_TIMEOUT,
    containers_of,
    docker_or_none,
    log_messages,
)
from worker_support import trigger, wait_for_state

from _support import PostgresCluster, free_port, require, wait_until
from dockyard import schemas
from dockyard.client import Client
from dockyard.exceptions import NotFound
from dockyard.workers._docker_spec import LABEL_API_URL

ROOT = Path(__file__).resolve().parents[2]
CI_OVERRIDE = Path(__file__).with_name("compose.ci.yaml")
IMAGE = "dockyard-test/server:ci"
FLOW_IMAGE = "dockyard-test/compose-flows"
POOL = "docker-pool"  # compose.yaml's
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
BUILD_TIMEOUT = 600.0
UP_TIMEOUT = 120.0
STACK_TIMEOUT = 60.0


def docker_group() -> list[pytest.MarkDecorator]:
    """The Docker tests' group: they share one pytest worker (tests/docker/conftest.py)."""
    try:
        return [pytest.mark.xdist_group("docker")]
    except pytest.fail.Exception:  # no pytest-xdist (-p no:xdist): one worker, no groups
        return []


pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.timeout(BUILD_TIMEOUT + 300),
    *docker_group(),
]

FLOW_DOCKERFILE = f"""\
FROM {IMAGE}
WORKDIR /opt/flows
COPY flows.py /opt/flows/
"""


@dataclass
class Stack:
    """A compose project: its merged configuration, the variables it reads, and its server."""

    project: str
    file: Path
    env: dict[str, str]
    port: int
    api_key: str

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def client(self) -> Client:
        return Client(api_url=self.api_url, api_key=self.api_key)

    def compose(
        self, *args: str, timeout: float = STACK_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run ``docker-compose -p PROJECT -f FILE *args``; fail the test if it fails."""
        base = ("-p", self.project, "-f", str(self.file))
        return compose(*base, *args, env=self.env, timeout=timeout, check=check)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service, check=False).stdout

    def container(self, docker_client: Any, service: str) -> Any:
        found = docker_client.containers.list(
            all=True,
            filters={"label": [f"{PROJECT_LABEL}={self.project}", f"{SERVICE_LABEL}={service}"]},
        )
        assert len(found) == 1, f"containers of service {service}: {found}"
        return found[0]


def compose(
    *args: str, env: dict[str, str], timeout: float, check: bool = True
) -> subprocess.CompletedProcess[str]:
    command = ["docker-compose", *args]
    try:
        done = subprocess.run(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`{' '.join(command)}` still running after {timeout} s:\n{exc.output}")
    if check and done.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` exited with status {done.returncode}:\n"
            f"{done.stdout}\n{done.stderr}",
            pytrace=False,
        )
    return done


@pytest.fixture
def docker_client() -> Iterator[Any]:
    client = docker_or_none()
    require(
        client is not None,
        "Docker is not running: apt-get install docker.io and start `dockerd` (.ci/run does)",
    )
    require(
        shutil.which("docker-compose"), "docker-compose not found: apt-get install docker-compose"
    )
    import docker

    try:
        client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        require(False, f"image {BASE_IMAGE} not found: run scripts/build-base-image.sh (as root)")
    yield client
    client.close()


@pytest.fixture
def stack(docker_client: Any, postgres_cluster: PostgresCluster, tmp_path: Path) -> Iterator[Stack]:
    """A compose project of ``compose.yaml`` with the CI override, merged into ``tmp_path``;
    whatever the test leaves up is taken down."""
    project = f"dockyard-test-{uuid.uuid4().hex[:10]}"
    port = free_port()
    api_key = secrets.token_urlsafe(32)
    env = {
        **_compose_environment(),
        "COMPOSE_PROJECT_NAME": project,
        "BASE_IMAGE": BASE_IMAGE,
        "IMAGE": IMAGE,
        "PORT": str(port),
        "DATABASE_URL": postgres_cluster.new_database(),
        "DOCKYARD_SERVER_API_KEY": api_key,
        "POSTGRES_PASSWORD": "unused-the-postgres-service-is-left-out",
    }
    merged = compose(
        "-f", "compose.yaml", "-f", str(CI_OVERRIDE), "config", env=env, timeout=STACK_TIMEOUT
    ).stdout
    config = yaml.safe_load(merged)
    for service in config["services"].values():
        if service.get("network_mode") == "host":
            service.pop("ports", None)
    file = tmp_path / "compose.yaml"
    file.write_text(yaml.safe_dump(config, sort_keys=False))
    started = Stack(project=project, file=file, env=env, port=port, api_key=api_key)
    try:
        yield started
    finally:
        started.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)
        # the containers of runs the worker had no time to remove (the test failed first)
        runs = docker_client.containers.list(
            all=True, filters={"label": f"{LABEL_API_URL}={started.api_url}"}
        )
        for container in runs:
            container.remove(force=True)
        with contextlib.suppress(Exception):
            docker_client.images.remove(f"{FLOW_IMAGE}:{project}", force=True)


def _compose_environment() -> dict[str, str]:
    """This process's environment without compose settings of its own (a project name or
    files given by the user's shell would take the stack elsewhere)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}


def test_the_compose_stack_runs_a_flow_in_a_container(
    stack: Stack, docker_client: Any, tmp_path: Path
) -> None:
    stack.compose("build", "server", timeout=BUILD_TIMEOUT)

    stack.compose("up", "-d", "--no-deps", "server", timeout=UP_TIMEOUT)
    server = wait_healthy(stack, docker_client)
    assert server.attrs["Config"]["User"] == "dockyard"
    health = httpx.get(f"{stack.api_url}/health", timeout=10, trust_env=False)
    assert health.status_code == 200, health.text
    # the server needs its key (its own health check and /api/health do not)
    assert httpx.get(f"{stack.api_url}/work-pools", trust_env=False).status_code == 401
    assert "database: postgresql+asyncpg://postgres@127.0.0.1" in stack.logs("server")

    # the worker makes its pool on its first start
    stack.compose("up", "-d", "--no-deps", "worker", timeout=UP_TIMEOUT)
    with stack.client() as client:
        pool = wait_until(lambda: _ready_pool(client), UP_TIMEOUT, f"work pool {POOL} to be READY")
        assert pool is not None and pool.type == "docker"
        worker = stack.container(docker_client, "worker")
        assert worker.attrs["Config"]["User"] == "root"

        flow_image = build_flow_image(docker_client, tmp_path / "project", stack.project)
        deployment = client.upsert_deployment(
            schemas.DeploymentCreate(
                flow_name="greet",
                name="in-compose",
                entrypoint="flows.py:greet",
                work_pool_name=POOL,
                job_variables={"image": flow_image, "image_pull_policy": "Never"},
            )
        )
        run = trigger(client, deployment, parameters={"greeting": "ahoy"})
        done = wait_for_state(client, run.id, FINAL, RUN_TIMEOUT)
        assert done.state == "COMPLETED", f"{done.state_message}\n{stack.logs('worker')}"
        assert done.worker_name == "docker-1"
        assert "ahoy from a container" in log_messages(client, run.id).splitlines()
        wait_until(
            lambda: not containers_of(docker_client, run.id), 30, "the run's container to go"
        )
    assert f"{run.name} | ahoy from a container" in stack.logs("worker")
    assert "Traceback" not in stack.logs("server")

    stack.compose("down", "--volumes", "--timeout", "5")
    label = f"{PROJECT_LABEL}={stack.project}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == []
    assert docker_client.volumes.list(filters={"label": label}) == []
    assert docker_client.networks.list(names=[stack.project]) == []


def wait_healthy(stack: Stack, docker_client: Any) -> Any:
    """Wait until Docker finds the server healthy (compose.yaml's health check); fail with
    its log if it stops or restarts instead."""

    def healthy() -> Any:
        container = stack.container(docker_client, "server")
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead") or state.get("RestartCount", 0) > 0:
            pytest.fail(f"the server stopped ({state['Status']}):\n{stack.logs('server')}")
        return container if state.get("Health", {}).get("Status") == "healthy" else None

    return wait_until(healthy, UP_TIMEOUT, "the server's health check to pass", interval=0.5)


def _ready_pool(client: Client) -> schemas.WorkPool | None:
    try:
        pool: schemas.WorkPool = client.read_work_pool(POOL)
    except NotFound:
        return None  # the worker has not made it yet
    return pool if str(pool.status) == "READY" else None


def build_flow_image(docker_client: Any, project: Path, tag: str) -> str:
    """An image of ``flows.py`` (``docker_support.FLOWS``) on the stack's own image, as
    docs/deploy-server.md shows."""
    project.mkdir()
    (project / "flows.py").write_text(FLOWS)
    (project / "Dockerfile").write_text(FLOW_DOCKERFILE)
    reference = f"{FLOW_IMAGE}:{tag}"
    docker_client.images.build(path=str(project), tag=reference, rm=True, forcerm=True)
    return reference
