"""Dispatch to Docker: from triggering a deployment's run to RUNNING and COMPLETED in a
container, next to the floor: a bare ``docker run --rm IMAGE true`` measured in the same run.

    python bench/dispatch_docker.py

A server (temporary home, free port on 127.0.0.1), a docker work pool, a docker worker, and
a deployment of a one-line flow in an image built with ``build_image`` (on
``DOCKYARD_BASE_IMAGE``, else ``dockyard-test/python:3.11`` when present, else the default
``python:X.Y-slim``). Runs are triggered one after the other; times come from the server's
state timestamps. Containers use host networking, like the worker's runs. Figures are
printed, never asserted. Without a running Docker daemon the measurement is skipped.

The docker type is measured here rather than in ``dispatch.py``: it has no reference product
to compare with, its floor is Docker's own, and it needs an image built first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import DOCKYARD, clean_env, percentile, running_server
from dispatch import background, wait_for_line

RUNS = 20
FLOOR_RUNS = 20
TEST_BASE_IMAGE = "dockyard-test/python:3.11"
FLOW = (
    "from dockyard import flow\n\n\n@flow(log_prints=True)\n"
    "def my_flow(greeting: str = 'hello'):\n    print(f'{greeting} from a container')\n"
)
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def base_image() -> str:
    """The base image of the bench's flow image."""
    if os.environ.get("DOCKYARD_BASE_IMAGE"):
        return os.environ["DOCKYARD_BASE_IMAGE"]
    found = subprocess.run(["docker", "image", "inspect", TEST_BASE_IMAGE], capture_output=True)
    return TEST_BASE_IMAGE if found.returncode == 0 else ""


def build_flow_image(tmp: Path) -> str:
    from dockyard import settings
    from dockyard.sdk.deploy.images import DeploymentImage, build_image

    project = tmp / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOW)
    image = DeploymentImage("dockyard-bench/flows")
    chosen = settings.load(base_image=base_image())
    return build_image(image, project, entrypoint_file=project / "flows.py", settings=chosen)


def floor(image: str) -> list[float]:
    """Seconds of ``docker run --rm --network host IMAGE true``, one after the other."""
    times = []
    for _ in range(FLOOR_RUNS):
        began = time.perf_counter()
        command = ["docker", "run", "--rm", "--network", "host", image, "true"]
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - began)
    return times


def dockyard_runs(image: str, tmp: Path) -> tuple[list[float], list[float]]:
    """Seconds from trigger to RUNNING and to COMPLETED for :data:`RUNS` runs in a row."""
    home = tmp / "home"
    with running_server(DOCKYARD, home) as server:
        env = clean_env(DOCKYARD_HOME=str(home), DOCKYARD_API_URL=server.api_url)
        with httpx.Client(base_url=server.api_url, timeout=30.0, trust_env=False) as http:
            http.post("/work-pools", json={"name": "bench", "type": "docker"}).raise_for_status()
            body = {
                "flow_name": "bench-flow",
                "name": "docker",
                "entrypoint": "flows.py:my_flow",
                "work_pool_name": "bench",
                "job_variables": {"image": image, "image_pull_policy": "Never"},
            }
            deployment = http.post("/deployments", json=body).raise_for_status().json()["id"]
            worker = [*DOCKYARD.cli, "worker", "start", "--pool", "bench", "--limit", "4"]
            with background(worker, env, tmp / "worker.log") as log:
                wait_for_line(log, "waiting for runs")
                return _sequential(http, deployment)


def _sequential(http: httpx.Client, deployment: str) -> tuple[list[float], list[float]]:
    running, completed = [], []
    for _ in range(RUNS):
        started = time.time()
        run = http.post(f"/deployments/{deployment}/runs", json={}).raise_for_status().json()
        states = _wait_final(http, run["id"])
        if "COMPLETED" not in states:
            raise RuntimeError(f"run {run['id']} ended {sorted(states)}")
        running.append(states["RUNNING"] - started)
        completed.append(states["COMPLETED"] - started)
    return running, completed


def _wait_final(http: httpx.Client, run_id: str, timeout: float = 120.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = http.get(f"/flow-runs/{run_id}/states").raise_for_status().json()
        found: dict[str, float] = {}
        for state in states:
            stamp = state["timestamp"].replace("Z", "+00:00")
            found.setdefault(state["type"], _timestamp(stamp))
        if FINAL & set(found):
            return found
        time.sleep(0.02)
    raise RuntimeError(f"run {run_id} not final after {timeout} s")


def _timestamp(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def main() -> int:
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        print("Docker is not running: the docker dispatch measurement is skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-docker-") as tmp:
        print("building the flow image ...", flush=True)
        image = build_flow_image(Path(tmp))
        print(f"floor: {FLOOR_RUNS} x docker run --rm {image} true ...", flush=True)
        bare = floor(image)
        print(f"dockyard: {RUNS} runs one after the other in containers ...", flush=True)
        running, completed = dockyard_runs(image, Path(tmp))
    floor_p50 = percentile(bare, 50) * 1000
    print(f"\n{'metric':<44} {'ms':>8} {'x floor':>8}\n{'-' * 62}")
    rows = [
        ("floor: docker run --rm IMAGE true, p50", percentile(bare, 50)),
        ("floor: docker run --rm IMAGE true, p99", percentile(bare, 99)),
        ("trigger -> RUNNING (docker), p50", percentile(running, 50)),
        ("trigger -> RUNNING (docker), p99", percentile(running, 99)),
        ("trigger -> COMPLETED (docker), p50", percentile(completed, 50)),
        ("trigger -> COMPLETED (docker), p99", percentile(completed, 99)),
    ]
    for label, seconds in rows:
        print(f"{label:<44} {seconds * 1000:>8.0f} {seconds * 1000 / floor_p50:>8.1f}")
    print(f"\n{RUNS} runs in a row; the floor is {FLOOR_RUNS} bare containers, same image.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
