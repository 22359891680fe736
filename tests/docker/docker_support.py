"""What the Docker tests share: the daemon, the session's images, a registry, containers."""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

from _support import free_port, require, wait_until
from dockyard import schemas
from dockyard.settings import Settings
from dockyard.workers._docker_recover import list_containers

BASE_IMAGE = "dockyard-test/python:3.11"
DEPS_REPOSITORY = "dockyard-test/deps"
FLOWS_REPOSITORY = "dockyard-test/flows"
RUN_LABEL = "dockyard.flow-run-id"
REGISTRY_BINARY = "docker-registry"
REGISTRY_TIMEOUT = 30.0
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
POOL = "my-docker-pool"
RUN_TIMEOUT = 90.0
# the worker notices cancellations at its heartbeat: make it quick
FAST = {"DOCKYARD_HEARTBEAT_SECONDS": "0.5"}

FLOWS = """\
import time

from dockyard import flow


@flow(log_prints=True)
def greet(greeting: str = "hello", wait: float = 0.0) -> str:
    print(f"{greeting} from a container")
    if wait:
        time.sleep(wait)
    return greeting


def say_how_it_ended(flow, flow_run, state):
    from dockyard.logging import get_run_logger

    get_run_logger().info("hook saw %s %s", flow_run.id, state.name)


@flow(on_crashed=[say_how_it_ended])
def doomed() -> None:
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)  # gone before it can call its hook
"""

DEPS_DOCKERFILE = """\
FROM {base}
COPY requirements.txt /tmp/requirements.txt
RUN python -m pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt
"""


def docker_or_none() -> Any:
    """A Docker client, or None when no daemon answers."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception:
        return None
    return client


def run_containers(client: Any) -> set[str]:
    """Ids of every container a docker worker made for a run."""
    return {c.id for c in list_containers(client, all=True, filters={"label": RUN_LABEL})}


def containers_of(client: Any, run_id: Any) -> list[Any]:
    """The containers of one run, running or not."""
    return list_containers(client, all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def docker_deployment(
    client: Any, image: str, *, crash_retries: int = 0, **job_variables: Any
) -> schemas.Deployment:
    """A docker pool (made once) and a deployment of ``flows.py:greet`` in ``image``."""
    if not client.list_work_pools():
        client.create_work_pool(schemas.WorkPoolCreate(name=POOL, type="docker"))
    deployment: schemas.Deployment = client.upsert_deployment(
        schemas.DeploymentCreate(
            flow_name="greet",
            name="in-a-container",
            entrypoint="flows.py:greet",
            work_pool_name=POOL,
            job_variables={"image": image, "image_pull_policy": "Never", **job_variables},
            crash_retries=crash_retries,
        )
    )
    return deployment


def wait_no_container(docker_client: Any, run_id: Any) -> None:
    wait_until(lambda: not containers_of(docker_client, run_id), 30, "the container to go")


def log_messages(client: Any, run_id: Any) -> str:
    return "\n".join(log.message for log in client.read_logs(flow_run_id=run_id))


def remove_new_containers(client: Any, before: set[str]) -> None:
    import docker

    for container_id in run_containers(client) - before:
        with contextlib.suppress(docker.errors.APIError):
            client.containers.get(container_id).remove(force=True)


def dependencies() -> list[str]:
    """Dockyard's own requirements (no extras), as pip reads them."""
    return sorted(r for r in metadata.requires("dockyard") or [] if "extra ==" not in r)


def build_deps_image(client: Any, base: str, home: Path) -> str:
    """``dockyard-test/deps:<hash>``: ``base`` plus Dockyard's dependencies; kept by Docker."""
    import docker
    from dockyard.sdk.deploy.images import DeploymentImage, build_image

    requirements = "\n".join(dependencies()) + "\n"
    tag = hashlib.sha256((base + requirements).encode()).hexdigest()[:12]
    reference = f"{DEPS_REPOSITORY}:{tag}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(reference)
        return reference
    project = home / "deps-project"
    project.mkdir()
    (project / "requirements.txt").write_text(requirements)
    (project / "Dockerfile").write_text(DEPS_DOCKERFILE.format(base=base))
    image = DeploymentImage(DEPS_REPOSITORY, tag, dockerfile="Dockerfile")
    return build_image(image, project, settings=Settings(home=home))


def build_flow_image(project: Path, settings: Settings) -> str:
    """Build the image of a project holding :data:`FLOWS` as ``flows.py``."""
    from dockyard.sdk.deploy.images import DeploymentImage, build_image

    (project / "flows.py").write_text(FLOWS)
    return build_image(
        DeploymentImage(FLOWS_REPOSITORY),
        project,
        entrypoint_file=project / "flows.py",
        settings=settings,
    )


def tiny_image(client: Any, reference: str) -> str:
    """Build an image of one small file (quick to push and pull) as ``reference``."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in [
            ("Dockerfile", b"FROM scratch\nCOPY hello.txt /hello.txt\n"),
            ("hello.txt", f"hello from {reference}\n".encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.seek(0)
    image, _ = client.images.build(fileobj=archive, custom_context=True, tag=reference, rm=True)
    return str(image.id)


@dataclass
class Registry:
    """A running ``docker-registry`` on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


def start_registry(base: Path) -> Registry:
    """Start Debian's ``docker-registry`` listening on 127.0.0.1 only."""
    binary = shutil.which(REGISTRY_BINARY) or shutil.which(REGISTRY_BINARY, path="/usr/bin")
    require(binary, "docker-registry not found: apt-get install docker-registry")
    assert binary is not None
    port = free_port()
    config = base / "config.yml"
    config.write_text(REGISTRY_CONFIG.format(storage=base / "storage", port=port))
    log_path = base / "registry.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    registry = Registry(process, port, log_path)
    _wait_registry(registry)
    return registry


def _wait_registry(registry: Registry) -> None:
    deadline = time.monotonic() + REGISTRY_TIMEOUT
    url = f"http://{registry.address}/v2/"
    while True:
        if registry.process.poll() is not None:
            pytest.fail(f"docker-registry exited:\n{registry.log_path.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        if time.monotonic() > deadline:
            registry.stop()
            pytest.fail(
                f"docker-registry did not answer on {url}:\n{registry.log_path.read_text()}"
            )
        time.sleep(0.1)
