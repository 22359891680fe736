"""The tutorial (Workers & Work Pools) step by step, with a real daemon and ``flow.deploy()``.

The flow fetches its JSON from a small HTTP server this test runs on 127.0.0.1 instead of
api.github.com; containers use host networking, so it reaches it. Deployed first with
``image="name:tag"`` (generated Dockerfile), then with ``DeploymentImage(...,
dockerfile="Dockerfile")`` and a ``requirements.txt``; each run COMPLETES, its printed lines
are in its logs, and no container is left behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from docker_support import containers_of
from worker_support import Workers, wait_for_state, wait_until

from _support import RunningServer

POOL = "my-docker-pool"
IMAGE = "my-first-deployment-image:tutorial"
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "CRASHED"}
REPO = {"full_name": "PrefectHQ/prefect", "stargazers_count": 42, "forks_count": 7}

FLOW = """\
import httpx
from dockyard import flow

API = "REPO_API"


@flow(log_prints=True)
def get_repo_info(repo_name: str = "PrefectHQ/prefect"):
    url = f"{API}/repos/{repo_name}"
    response = httpx.get(url)
    response.raise_for_status()
    repo = response.json()
    print(f"{repo_name} repository statistics 🤓:")
    print(f"Stars 🌠 : {repo['stargazers_count']}")
    print(f"Forks 🍴 : {repo['forks_count']}")


if __name__ == "__main__":
"""

DEPLOY_GENERATED = """\
    get_repo_info.deploy(
        name="my-first-deployment",
        work_pool_name="my-docker-pool",
        job_variables={"image_pull_policy": "Never"},
        image="my-first-deployment-image:tutorial",
        push=False
    )
"""

DEPLOY_CUSTOM = """\
    from dockyard.deployments import DeploymentImage

    get_repo_info.deploy(
        name="my-first-deployment",
        work_pool_name="my-docker-pool",
        job_variables={"image_pull_policy": "Never"},
        image=DeploymentImage(
            name="my-first-deployment-image",
            tag="tutorial",
            dockerfile="Dockerfile"
        ),
        push=False
    )
"""

DOCKERFILE = """\
FROM {base}
ARG DOCKYARD_WHEEL
COPY ${{DOCKYARD_WHEEL}} /tmp/dockyard/
RUN python -m pip install --no-cache-dir /tmp/dockyard/*.whl && rm -rf /tmp/dockyard
COPY requirements.txt /tmp/requirements.txt
RUN python -m pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /opt/project
COPY . /opt/project/
"""


class RepoApi(BaseHTTPRequestHandler):
    """Answers ``GET /repos/OWNER/NAME`` as GitHub would, for one repository."""

    def do_GET(self) -> None:
        if self.path != f"/repos/{REPO['full_name']}":
            self.send_error(404)
            return
        body = json.dumps(REPO).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def repo_api() -> Iterator[str]:
    """The base URL of a GitHub stand-in on 127.0.0.1."""
    http = ThreadingHTTPServer(("127.0.0.1", 0), RepoApi)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}"
    finally:
        http.shutdown()
        http.server_close()


def pool_row(server: RunningServer) -> str:
    table = server.cli("work-pool", "ls").stdout
    return next(line for line in table.splitlines() if POOL in line)


def deploy(server: RunningServer, project: Path, base_image: str) -> str:
    """``python repo_info.py``: builds the image and registers the deployment."""
    env = {**server.env, "DOCKYARD_BASE_IMAGE": base_image}
    done = subprocess.run(
        [sys.executable, "repo_info.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def run_and_check(server: RunningServer, docker_client: Any) -> None:
    """``dockyard deployment run 'get_repo_info/my-first-deployment'`` COMPLETES, logged."""
    server.cli("deployment", "run", "get_repo_info/my-first-deployment")
    with server.client() as client:
        [run] = client.list_flow_runs(deployment_name="my-first-deployment", limit=1)
        done = wait_for_state(client, run.id, FINAL, 120)
        assert done.state == "COMPLETED", done.state_message
        messages = [log.message for log in client.read_logs(flow_run_id=run.id)]
    assert "PrefectHQ/prefect repository statistics 🤓:" in messages
    assert "Stars 🌠 : 42" in messages and "Forks 🍴 : 7" in messages
    wait_until(lambda: not containers_of(docker_client, run.id), 30, "the container to go")


def test_the_tutorial(
    server: RunningServer,
    workers: Workers,
    tmp_path: Path,
    repo_api: str,
    deps_image: str,
    docker_client: Any,
) -> None:
    server.cli("work-pool", "create", "--type", "docker", POOL)
    assert "NOT_READY" in pool_row(server)
    workers.start("--pool", POOL)
    assert "READY" in pool_row(server) and "NOT_READY" not in pool_row(server)

    project = tmp_path / "project"
    project.mkdir()
    flow = FLOW.replace("REPO_API", repo_api)
    (project / "repo_info.py").write_text(flow + DEPLOY_GENERATED)
    deploy(server, project, deps_image)
    assert docker_client.images.get(IMAGE)
    run_and_check(server, docker_client)

    (project / "Dockerfile").write_text(DOCKERFILE.format(base=deps_image))
    (project / "requirements.txt").write_text("six\n")
    (project / "repo_info.py").write_text(flow + DEPLOY_CUSTOM)
    deploy(server, project, deps_image)
    found = docker_client.containers.run(
        IMAGE, ["python", "-c", "import six, os; print(os.getcwd())"], remove=True
    )
    assert found.decode().strip() == "/opt/project"
    run_and_check(server, docker_client)
    assert sorted(p.name for p in project.iterdir()) == [
        "Dockerfile",
        "repo_info.py",
        "requirements.txt",
    ]
