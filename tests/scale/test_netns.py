"""Workers on other hosts: network namespaces, and a worker cut off for longer than a lease.

The server listens on the host side of namespace A's veth (198.18.x.1, never 0.0.0.0) on the
test's PostgreSQL; worker A runs inside namespace A, worker B inside namespace B. Worker A
starts two runs, then A's link goes down for longer than a lease: the server declares both
runs CRASHED once and retries them, worker B runs the retries, and when the link comes back
worker A notices it lost the runs and their first attempts stop (fenced by their lease
token) without ever finishing. Needs root and ``ip``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from netns_support import Network

from _support import PostgresCluster, require, wait_until
from _support.rigs import CLI, Replica, Worker, free_port, kill_pids, runs_of

LEASE_SECONDS = 3.0

FLOW_FILE = """\
from dockyard import flow, get_run_context, task


@task
def tick():
    return None


@flow
def far_flow(ledger: str, first: float = 120.0, later: float = 0.2):
    import os
    import time

    attempt = get_run_context().flow_run.run_count
    run = os.environ["DOCKYARD_FLOW_RUN_ID"]

    def note(what):
        with open(ledger, "a") as file:
            file.write(f"{run} {attempt} {what} {os.getpid()}\\n")

    note("start")
    # the first attempt outlasts the cut; its retry is quick. A fenced run stops at its
    # next task call, so the work is a loop of small tasks.
    deadline = time.monotonic() + (first if attempt == 1 else later)
    while time.monotonic() < deadline:
        tick()
        time.sleep(0.1)
    note("end")
"""


def _ledger(path: Path) -> list[tuple[str, int, str, int]]:
    rows = [line.split() for line in path.read_text().splitlines() if line]
    return [(run, int(attempt), what, int(pid)) for run, attempt, what, pid in rows]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _setup(http: httpx.Client, base: Path, ledger: Path) -> list[str]:
    (base / "far_flows.py").write_text(FLOW_FILE)
    http.post("/work-pools", json={"name": "far", "type": "process"}).raise_for_status()
    body: dict[str, Any] = {
        "flow_name": "far-flow",
        "name": "far",
        "entrypoint": "far_flows.py:far_flow",
        "path": str(base),
        "work_pool_name": "far",
        "crash_retries": 1,
        "parameters": {"ledger": str(ledger)},
        "job_variables": {"stream_output": True},
    }
    deployment = http.post("/deployments", json=body).raise_for_status().json()
    runs = [http.post(f"/deployments/{deployment['id']}/runs", json={}) for _ in range(2)]
    return [answer.raise_for_status().json()["id"] for answer in runs]


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_cut_worker_loses_its_runs_once(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    require(
        os.geteuid() == 0 and shutil.which("ip"), "needs root and `ip` to make network namespaces"
    )
    database_url = postgres_cluster.new_database()
    ledger = tmp_path / "ledger.txt"
    ledger.touch()
    with Network() as network:
        near, far = network.add(), network.add()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(
            DOCKYARD_HOME=str(tmp_path),
            DOCKYARD_LEASE_SECONDS=str(LEASE_SECONDS),
            DOCKYARD_HEARTBEAT_SECONDS="0.5",
            PYTHONUNBUFFERED="1",
        )
        # A non-loopback address needs a key: the bootstrap admin key here, from which each
        # worker hands its engines scoped keys. The bind address is an allowed Host by itself.
        key = secrets.token_urlsafe(24)
        server_env = {**env, "DOCKYARD_DATABASE_URL": database_url, "DOCKYARD_SERVER_API_KEY": key}
        server = Replica(tmp_path / "server", server_env, host=near.host_ip)
        server.port = free_port(near.host_ip)
        workers: list[Worker] = []
        try:
            server.start()
            worker_env = {**env, "DOCKYARD_API_URL": server.api_url, "DOCKYARD_API_KEY": key}
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.api_url, trust_env=False, headers=headers) as http:
                _run_the_cut(http, near, far, workers, worker_env, tmp_path, ledger)
        finally:
            for worker in workers:
                worker.stop()
            kill_pids(runs_of([server.api_url]))
            server.stop(signal.SIGINT)
    problems = [w.tracebacks() for w in workers] + [server.tracebacks()]
    assert not any(problems), "\n\n".join(p for p in problems if p)


def _start_worker(ns: Any, name: str, env: dict[str, str], base: Path) -> Worker:
    command = [*ns.prefix, *CLI, "worker", "start", "--pool", "far", "--name", name]
    worker = Worker(base / f"worker-{name}.log", [*command, "--limit", "2"], env)
    worker.start()
    return worker


def _run_the_cut(
    http: httpx.Client,
    near: Any,
    far: Any,
    workers: list[Worker],
    env: dict[str, str],
    base: Path,
    ledger: Path,
) -> None:
    ids = _setup(http, base, ledger)

    def states() -> dict[str, dict[str, Any]]:
        return {i: http.get(f"/flow-runs/{i}").raise_for_status().json() for i in ids}

    workers.append(_start_worker(near, "a", env, base))
    wait_until(
        lambda: (
            all(r["state"] == "RUNNING" for r in states().values()) and len(_ledger(ledger)) == 2
        ),
        60,
        "both runs RUNNING on worker a",
    )
    first_pids = {pid for _, _, _, pid in _ledger(ledger)}
    near.cut()
    try:
        workers.append(_start_worker(far, "b", env, base))
        wait_until(
            lambda: all(r["state"] == "COMPLETED" for r in states().values()),
            60,
            "both runs crashed, retried and COMPLETED on worker b",
        )
        assert all(_alive(pid) for pid in first_pids), "a first attempt stopped while cut off"
    finally:
        near.restore()
    wait_until(
        lambda: not any(_alive(pid) for pid in first_pids),
        30,
        "the first attempts to stop once worker a is reachable again",
    )
    log = workers[0].log_path
    # told by a heartbeat, or finding out when the fenced process exits, whichever is first
    noticed = ("is no longer this worker's", "moved on to attempt 2")

    def told(run_id: str) -> bool:
        lines = log.read_text(errors="replace").splitlines()
        return any(run_id in line and any(n in line for n in noticed) for line in lines)

    wait_until(lambda: all(told(i) for i in ids), 30, "worker a to notice it lost both runs")

    for run_id, run in states().items():
        assert run["state"] == "COMPLETED" and run["attempt"] == 2, run
        history = http.get(f"/flow-runs/{run_id}/states").raise_for_status().json()
        assert [s["type"] for s in history].count("CRASHED") == 1, history
    rows = _ledger(ledger)
    assert Counter((run, attempt, what) for run, attempt, what, _ in rows) == Counter(
        {(i, 1, "start"): 1 for i in ids}
        | {(i, 2, "start"): 1 for i in ids}
        | {(i, 2, "end"): 1 for i in ids}
    ), rows
    # losing its runs is no reason for a worker to stop
    assert all(w.process is not None and w.process.poll() is None for w in workers), "exited"
