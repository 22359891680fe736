"""Task runners side by side: threads, Dask and Ray, beside Prefect's threads and prefect-dask.

    python bench/task_runners.py [dockyard] [prefect]     # default: both (Prefect if installed)

Two flows, each timed from its call to its return while a local server tracks it:

- ``trivial``: 1,000 runs of a task that returns its argument (``.map``): the cost of a task
  run on each runner;
- ``cpu``: 64 runs of a task that spends 50 ms of CPU (its own thread's): what a runner
  gains from more than one core.

Dask is a ``LocalCluster`` of 2 worker processes (one thread each), Ray a local instance
with 2 CPUs, both started once before the timed runs and listening on 127.0.0.1 only. The
tasks are defined in the flow's script, so on Dask and Ray they travel by value. Prefect
is measured on the same flows when ``bench/.venv-prefect`` exists: with its thread runner,
and with prefect-dask's ``DaskTaskRunner`` when ``pip install prefect-dask`` works there.
Figures are printed, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from _common import (
    DOCKYARD,
    PREFECT_VERSION,
    Product,
    clean_env,
    measure_each,
    median,
    running_server,
)

TRIVIAL = 1000
CPU_TASKS = 64
CPU_SECONDS = 0.05
# Prefect's flows on Dask take minutes each: one timed run of each
REPEATS = {"dockyard": 3, "prefect": 1}
WORKLOAD_TIMEOUT = 1800

# What both workloads share: the tasks, the flows, the engines, the timing. Each prints one
# JSON line per runner: {"runner": name, "trivial": [s, ...], "cpu": [s, ...]} or
# {"runner": name, "error": text}.
COMMON = """
import json, sys, time, traceback

TRIVIAL, CPU_TASKS, CPU_SECONDS, REPEATS = (int(sys.argv[1]), int(sys.argv[2]),
                                            float(sys.argv[3]), int(sys.argv[4]))
RUNNERS = sys.argv[5:]

def spin(i):
    end = time.thread_time() + CPU_SECONDS
    while time.thread_time() < end:
        pass
    return i

def timed(flow, n):
    start = time.perf_counter()
    got = flow(n)
    elapsed = time.perf_counter() - start
    assert got == n * (n - 1) // 2, got
    return elapsed

def measure(name, make_runner):
    try:
        runner = make_runner()
        trivial = trivial_flow.with_options(task_runner=runner)
        cpu = cpu_flow.with_options(task_runner=runner)
        timed(trivial, 20)  # warm up: imports, connections, the workers' first calls
        figures = {"runner": name, "trivial": [], "cpu": []}
        for _ in range(REPEATS):
            figures["trivial"].append(timed(trivial, TRIVIAL))
            figures["cpu"].append(timed(cpu, CPU_TASKS))
    except Exception:
        figures = {"runner": name, "error": traceback.format_exc(limit=3)}
    print(json.dumps(figures), flush=True)

def local_cluster():
    from distributed import LocalCluster

    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address="127.0.0.1:0")
"""

# the end of the script's main in Dockyard's workload alone
RAY_RUNNER = """\
    if "ray" in RUNNERS:
        import ray
        from dockyard_ray import RayTaskRunner

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            measure("ray", RayTaskRunner)
        finally:
            ray.shutdown()
"""


def workload(package: str, more_runners: str = "") -> str:
    """A workload's script: the two flows written with ``package`` (dockyard or prefect),
    measured on its thread runner and its Dask runner, then as ``more_runners`` says."""
    return f"""
from {package} import flow, task
from {package}.task_runners import ThreadPoolTaskRunner

@task
def noop(i: int) -> int:
    return i

@task
def burn(i: int) -> int:
    return spin(i)

@flow
def trivial_flow(n: int) -> int:
    return sum(noop.map(range(n)).result())

@flow
def cpu_flow(n: int) -> int:
    return sum(burn.map(range(n)).result())

if __name__ == "__main__":
    if "threads" in RUNNERS:
        measure("threads", ThreadPoolTaskRunner)
    if "dask" in RUNNERS:
        from {package}_dask import DaskTaskRunner

        with local_cluster() as cluster:
            measure("dask", lambda: DaskTaskRunner(address=cluster.scheduler_address))
{more_runners}"""


DOCKYARD_WORKLOAD = workload("dockyard", RAY_RUNNER)
PREFECT_WORKLOAD = workload("prefect")

LABELS = {"threads": "threads", "dask": "dask, 2 processes", "ray": "ray, 2 CPUs"}


def run_workload(
    product: Product, script: str, runners: list[str], env: dict[str, str], work: Path
) -> dict[str, Any]:
    path = work / f"runners_{product.module}.py"
    path.write_text(textwrap.dedent(COMMON) + textwrap.dedent(script))
    arguments = [str(TRIVIAL), str(CPU_TASKS), str(CPU_SECONDS), str(REPEATS[product.module])]
    result = subprocess.run(
        [str(product.python), str(path), *arguments, *runners],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=WORKLOAD_TIMEOUT,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 and not lines:
        raise RuntimeError(f"{product.name} workload failed:\n{result.stderr[-3000:]}")
    return {line["runner"]: line for line in lines}


def prefect_dask_installs(product: Product) -> bool:
    """Whether prefect-dask is (or could now be) installed beside Prefect, not moving it."""
    command = [str(product.python), "-m", "pip", "install", "-q", "prefect-dask"]
    done = subprocess.run(
        [*command, f"prefect=={PREFECT_VERSION}"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        print(f"prefect-dask did not install ({done.stderr.strip()[-300:]}): skipped")
    return done.returncode == 0


def measure(product: Product, work: Path) -> dict[str, Any]:
    """Start the product's server, run its workload against it, return the figures."""
    home = work / f"{product.module}-home"
    if product is DOCKYARD:
        runners = ["threads", "dask", "ray"]
    else:
        runners = ["threads", "dask"] if prefect_dask_installs(product) else ["threads"]
    with running_server(product, home) as server:
        if product is DOCKYARD:
            # a Ray instance alone on this machine binds 127.0.0.1 (read when ray is imported)
            env = clean_env(
                DOCKYARD_HOME=str(home),
                DOCKYARD_API_URL=server.api_url,
                RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
            )
            return run_workload(product, DOCKYARD_WORKLOAD, runners, env, work)
        env = clean_env(
            PREFECT_HOME=str(home),
            PREFECT_API_URL=server.api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
        )
        return run_workload(product, PREFECT_WORKLOAD, runners, env, work)


def report(product: Product, figures: dict[str, Any]) -> None:
    for runner, found in figures.items():
        label = f"{product.module:9s}{LABELS[runner]:19s}"
        if "error" in found:
            print(f"{label} failed: {found['error'].strip().splitlines()[-1]}")
            continue
        print(f"{label}{median(found['trivial']):10.2f} s{median(found['cpu']):16.2f} s")


def main() -> int:
    print(
        f"task runners: {TRIVIAL} trivial tasks, and {CPU_TASKS} tasks of "
        f"{CPU_SECONDS * 1000:g} ms CPU each (.map), tracked by a local server"
    )
    print(f"seconds per flow run: median of {REPEATS['dockyard']} (Prefect: one run)")
    columns = (f"{TRIVIAL} trivial", f"{CPU_TASKS} x {CPU_SECONDS * 1000:g} ms CPU")
    print(f"{'':28s}{columns[0]:>12s}{columns[1]:>18s}")
    results = measure_each("dockyard-bench-runners-", measure, report)
    ours, theirs = results.get("dockyard", {}), results.get("prefect", {})
    for runner in ("threads", "dask"):
        if "trivial" in ours.get(runner, {}) and "trivial" in theirs.get(runner, {}):
            ratios = [
                median(theirs[runner][flow]) / median(ours[runner][flow])
                for flow in ("trivial", "cpu")
            ]
            print(
                f"ratio prefect / dockyard on {runner}: trivial {ratios[0]:.1f}x, "
                f"cpu {ratios[1]:.1f}x (above 1: Dockyard is faster)"
            )
    return 0 if ours and all("error" not in found for found in ours.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
