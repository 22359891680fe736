"""Per-task overhead of a tracked flow: Dockyard beside Prefect, measured in one run.

    python bench/task_overhead.py [dockyard] [prefect]     # default: both (Prefect if installed)

A flow calls a trivial task 1,000 times in sequence while a local server tracks it. The
overhead per task is (time of the flow with 1,000 tasks - time with 0 tasks) / 1,000, the
flow's call timed from start to return (Dockyard flushes every task run and log before it
returns; each measured run is checked to have all 1,000 task runs on the server). Prefect is
measured on the same work when ``bench/.venv-prefect`` exists, under its own interpreter and
server, with the time its server needs to show all task runs after the flow returned.
Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from _common import DOCKYARD, Product, clean_env, measure_each, median, running_server

TASKS = 1000
REPEATS = {"dockyard": 7, "prefect": 3}
TARGET_US = 50.0

# Each workload runs the flows under its product's interpreter and prints one JSON line:
# {"zero": [s, ...], "full": [s, ...], "recorded": [n, ...], "lag": s | null}.
DOCKYARD_WORKLOAD = """
import json, sys, time
from dockyard import flow, task, get_run_context
from dockyard.client import Client

N, REPEATS = int(sys.argv[1]), int(sys.argv[2])

@task
def noop(i: int) -> int:
    return i

@flow
def tasks(n: int) -> str:
    for i in range(n):
        noop(i)
    return str(get_run_context().flow_run_id)

def timed(n):
    start = time.perf_counter()
    run_id = tasks(n)
    return time.perf_counter() - start, run_id

client = Client()
timed(10)  # warm up: imports, connections
zero, full, recorded = [], [], []
for _ in range(REPEATS):
    zero.append(timed(0)[0])
    elapsed, run_id = timed(N)
    full.append(elapsed)
    recorded.append(len(client.list_task_runs(flow_run_id=run_id, limit=N)))
print(json.dumps({"zero": zero, "full": full, "recorded": recorded, "lag": 0.0}))
"""

PREFECT_WORKLOAD = """
import json, os, sys, time
import httpx
from prefect import flow, task
from prefect.runtime import flow_run

N, REPEATS = int(sys.argv[1]), int(sys.argv[2])

@task
def noop(i: int) -> int:
    return i

@flow
def tasks(n: int) -> str:
    for i in range(n):
        noop(i)
    return str(flow_run.id)

def timed(n):
    start = time.perf_counter()
    run_id = tasks(n)
    return time.perf_counter() - start, run_id

def count(http, run_id):
    body = {"flow_runs": {"id": {"any_": [run_id]}}}
    return int(http.post("/task_runs/count", json=body).raise_for_status().json())

http = httpx.Client(base_url=os.environ["PREFECT_API_URL"], timeout=30)
timed(10)
zero, full, recorded, lag = [], [], [], None
for index in range(REPEATS):
    zero.append(timed(0)[0])
    elapsed, run_id = timed(N)
    returned = time.perf_counter()
    full.append(elapsed)
    recorded.append(count(http, run_id))
    if index == 0:
        while count(http, run_id) < N and time.perf_counter() - returned < 120:
            time.sleep(0.1)
        if count(http, run_id) >= N:
            lag = time.perf_counter() - returned
print(json.dumps({"zero": zero, "full": full, "recorded": recorded, "lag": lag}))
"""


def run_workload(product: Product, script: str, env: dict[str, str], work: Path) -> dict[str, Any]:
    path = work / f"workload_{product.module}.py"
    path.write_text(textwrap.dedent(script))
    repeats = REPEATS[product.module]
    result = subprocess.run(
        [str(product.python), str(path), str(TASKS), str(repeats)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{product.name} workload failed:\n{result.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def measure(product: Product, work: Path) -> dict[str, Any]:
    """Start the product's server, run its workload against it, return the figures."""
    home = work / f"{product.module}-home"
    with running_server(product, home) as server:
        if product is DOCKYARD:
            env = clean_env(DOCKYARD_HOME=str(home), DOCKYARD_API_URL=server.api_url)
            script = DOCKYARD_WORKLOAD
        else:
            env = clean_env(
                PREFECT_HOME=str(home),
                PREFECT_API_URL=server.api_url,
                PREFECT_SERVER_ANALYTICS_ENABLED="false",
            )
            script = PREFECT_WORKLOAD
        return run_workload(product, script, env, work)


def per_task_us(figures: dict[str, Any]) -> float:
    return (median(figures["full"]) - median(figures["zero"])) / TASKS * 1e6


def report(product: Product, figures: dict[str, Any]) -> None:
    zero, full = median(figures["zero"]) * 1e3, median(figures["full"]) * 1e3
    complete = sum(1 for n in figures["recorded"] if n >= TASKS)
    print(f"{product.name}:")
    print(f"  flow with 0 tasks        {zero:9.1f} ms (median of {len(figures['zero'])})")
    print(f"  flow with {TASKS} tasks     {full:9.1f} ms")
    print(f"  overhead per task        {per_task_us(figures):9.1f} us", end="")
    print(f"  (target <= {TARGET_US:g} us)" if product is DOCKYARD else "")
    print(
        f"  runs with all {TASKS} task runs on the server when the flow returned: "
        f"{complete} of {len(figures['recorded'])}"
    )
    if figures.get("lag") is not None and product is not DOCKYARD:
        print(f"  all task runs on the server {figures['lag']:.1f} s after the flow returned")


def main() -> int:
    print(f"task overhead: a flow calling {TASKS} trivial tasks in sequence, tracked")
    results = measure_each("dockyard-bench-tasks-", measure, report)
    if "dockyard" in results and "prefect" in results:
        ratio = per_task_us(results["prefect"]) / per_task_us(results["dockyard"])
        print(f"ratio prefect / dockyard per task: {ratio:.1f}x (above 1: Dockyard is faster)")
    return 0 if "dockyard" in results else 1


if __name__ == "__main__":
    sys.exit(main())
