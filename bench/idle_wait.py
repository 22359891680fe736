"""What waiting costs: the server's CPU while workers wait on runs they cannot take.

Three real workers long-poll a pool whose due runs are all blocked (the pool is at its
concurrency limit: one run holds its only slot, twenty more are due). A waiting claim must
cost nothing until something could unblock it, so the server should be as idle as a server
nobody talks to. Both are measured in the same run, on the embedded SQLite database, as the
CPU time (user + system, from /proc) the server process used over the same window, in % of
one core. Target: under 2 %.

    .venv/bin/python bench/idle_wait.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from _common import Dockyard, clean_env, products, running_server

WORKERS = 3
BLOCKED_RUNS = 20
TARGET_PERCENT = 2.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def busy_percent(pid: int, seconds: float) -> float:
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / seconds


def block_the_pool(http: httpx.Client) -> None:
    """A pool at its limit: one run holds its only slot, the others are due and wait."""
    answer = http.post("/work-pools", json={"name": "idle", "type": "process"})
    answer.raise_for_status()
    deployment = http.post(
        "/deployments", json={"flow_name": "idle", "name": "d", "work_pool_name": "idle"}
    ).raise_for_status()
    runs = f"/deployments/{deployment.json()['id']}/runs"
    http.post(runs, json={}).raise_for_status()
    claim = {"worker_name": "holder", "work_pool_name": "idle", "limit": 1}
    (held,) = http.post("/workers/claim", json=claim).raise_for_status().json()
    token = held["lease_token"]
    run_id = held["flow_run"]["id"]
    http.post(f"/flow-runs/{run_id}/state", json={"state": "RUNNING", "lease_token": token})
    http.patch("/work-pools/idle", json={"concurrency_limit": 1}).raise_for_status()
    for _ in range(BLOCKED_RUNS):
        http.post(runs, json={}).raise_for_status()


def start_workers(product: Dockyard, api_url: str, home: Path) -> list[subprocess.Popen[bytes]]:
    env = clean_env(DOCKYARD_API_URL=api_url, DOCKYARD_HOME=str(home))
    log = (home / "workers.log").open("ab")
    return [
        subprocess.Popen(
            [*product.cli, "worker", "start", "--pool", "idle", "--name", f"waiting-{n}"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for n in range(WORKERS)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each window")
    args = parser.parse_args()
    (product,) = [p for p in products(["dockyard"]) if isinstance(p, Dockyard)]
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        home = Path(tmp)
        with running_server(product, home / "server") as server:
            time.sleep(2)  # the start's own work settles
            idle = busy_percent(server.process.pid, args.seconds)
            with httpx.Client(base_url=server.api_url, timeout=30, trust_env=False) as http:
                block_the_pool(http)
                workers = start_workers(product, server.api_url, home)
                try:
                    time.sleep(3)  # every worker has started and is waiting
                    waiting = busy_percent(server.process.pid, args.seconds)
                    polled = http.get("/work-pools/idle").json()["status"]
                finally:
                    for worker in workers:
                        os.killpg(worker.pid, signal.SIGINT)
                    for worker in workers:
                        worker.wait(30)
    print(f"server CPU over {args.seconds:g} s windows, % of one core (SQLite)")
    print(f"  nobody talking to it:                    {idle:6.2f} %")
    print(
        f"  {WORKERS} workers waiting on {BLOCKED_RUNS} blocked due runs: "
        f"{waiting:6.2f} %   (pool {polled})"
    )
    print(f"  ratio waiting / idle: {waiting / idle if idle else float('inf'):.1f}x")
    verdict = "met" if waiting < TARGET_PERCENT else "MISSED"
    print(f"  target: under {TARGET_PERCENT:g} % of one core: {verdict}")


if __name__ == "__main__":
    main()
