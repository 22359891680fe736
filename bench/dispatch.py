"""Dispatch: from triggering a deployment's run to RUNNING and COMPLETED, and draining a burst.

    python bench/dispatch.py [dockyard] [prefect] [--runs N] [--burst N]
                                         # default: both (Prefect if installed), 20 and 50

For each product: a server (temporary home, free port on 127.0.0.1), a process work pool, a
process worker, and a deployment of a one-line flow. Then:

- trigger → RUNNING and trigger → COMPLETED for runs triggered one after the other, read from
  the server's state timestamps (server and bench share the machine's clock);
- runs/s draining a burst of runs that all come due at the same moment (from that moment to
  the last run's end), and how many of them did not complete.

Dockyard also drains a burst whose runs use a stdlib stand-in for the engine: what the
worker and server manage when the run's own start costs next to nothing. Prefect (when
``bench/.venv-prefect`` exists) runs with its default settings. Every product gets the same
plan (as many runs in a row, the same burst), so each ratio compares like with like: the
reference's figure against Dockyard's, both measured in this run. Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from _common import DOCKYARD, PREFECT, clean_env, percentile, products, running_server
from _dispatch_rigs import DockyardRig, PrefectRig, Rig

WORKER_LIMIT = 8  # both workers run at most this many runs at once (2 cores here)


class Plan(NamedTuple):
    """What every product runs: the same counts, so that their figures compare."""

    sequential: int = 20
    # Prefect drains about twenty times slower than Dockyard: a burst of 200 would take it
    # minutes, so every product drains the same smaller burst.
    burst: int = 50

    def describe(self) -> str:
        return (
            f"{self.sequential} runs one after the other, then a burst of {self.burst} runs "
            f"(and for Dockyard, a burst of {self.burst} stand-in runs); "
            f"workers run at most {WORKER_LIMIT} at once"
        )


TARGETS = {"running_p50": 250.0, "running_p99": 500.0, "drain": 10.0, "not_completed": 0.0}
METRICS = [  # key, label, unit, higher is better
    ("pending_p50", "trigger -> PENDING (claimed), p50", "ms", False),
    ("running_p50", "trigger -> RUNNING, p50", "ms", False),
    ("running_p99", "trigger -> RUNNING, p99", "ms", False),
    ("completed_p50", "trigger -> COMPLETED, p50", "ms", False),
    ("completed_p99", "trigger -> COMPLETED, p99", "ms", False),
    ("drain", "draining a burst (engine)", "runs/s", True),
    ("not_completed", "  runs of the burst not COMPLETED", "runs", False),
    ("drain_standin", "draining a burst (stand-in command)", "runs/s", True),
    ("standin_not_completed", "  runs of that burst not COMPLETED", "runs", False),
]


def sequential(rig: Rig, count: int, values: dict[str, float]) -> None:
    """Trigger ``count`` runs one after the other; each is final before the next starts."""
    pending, running, completed = [], [], []
    for _ in range(count):
        started = time.time()
        run_id = rig.trigger()
        rig.wait_final([run_id], timeout=120)
        states = rig.states(run_id)
        pending.append((states["PENDING"] - started) * 1000)
        running.append((states["RUNNING"] - started) * 1000)
        completed.append((states.get("COMPLETED", float("nan")) - started) * 1000)
    values["pending_p50"] = percentile(pending, 50)
    values["running_p50"] = percentile(running, 50)
    values["running_p99"] = percentile(running, 99)
    values["completed_p50"] = percentile(completed, 50)
    values["completed_p99"] = percentile(completed, 99)
    values["sequential_runs"] = count


def burst(rig: Rig, count: int, *, standin: bool = False) -> tuple[float, int]:
    """Create ``count`` runs due at one moment; answer runs/s and how many did not complete."""
    lead = 5.0 + count * 0.05  # time to create them all before they come due
    due = datetime.now(UTC) + timedelta(seconds=lead)
    ids = [rig.trigger(due, standin=standin) for _ in range(count)]
    outcome = rig.wait_final(ids, timeout=lead + 60 + count * 5)
    last_end = max(end for _, end in outcome.values())
    not_completed = sum(1 for state, _ in outcome.values() if state != "COMPLETED")
    return count / (last_end - due.timestamp()), not_completed


def measure(rig: Rig, plan: Plan, values: dict[str, float]) -> None:
    runs, size = plan
    print(f"  {rig.product.name}: {runs} runs one after the other ...", flush=True)
    sequential(rig, runs, values)
    print(f"  {rig.product.name}: a burst of {size} runs ...", flush=True)
    values["drain"], values["not_completed"] = burst(rig, size)
    values["burst_runs"] = size
    if rig.has_standin:
        print(f"  {rig.product.name}: a burst of {size} stand-in runs ...", flush=True)
        values["drain_standin"], values["standin_not_completed"] = burst(rig, size, standin=True)


def print_table(figures: dict[str, dict[str, float]], plan: Plan) -> None:
    ours = figures.get(DOCKYARD.name, {})
    others = [name for name in figures if name != DOCKYARD.name]
    header = f"{'metric':<38} {'unit':>6} {'dockyard':>10} {'target':>10}     "
    header += "".join(f"{name:>15} {'ratio':>7}" for name in others)
    print(f"\n{header}\n{'-' * len(header)}")
    for key, label, unit, higher in METRICS:
        value = ours.get(key)
        line = f"{label:<38} {unit:>6} {_number(value):>10} {_target(key, value, higher)}"
        for name in others:
            theirs = figures[name].get(key)
            ratio = "n/a"
            if theirs and value and key not in ("not_completed", "standin_not_completed"):
                ratio = f"{(value / theirs) if higher else (theirs / value):.1f}x"
            line += f"{_number(theirs):>15} {ratio:>7}"
        print(line)
    print(f"\nevery product: {plan.describe()}.")
    if others:
        print("ratio: the reference's figure against Dockyard's, both measured in this run")
        print("with that plan; above 1 means Dockyard is faster.")
    else:
        print("no reference was measured in this run: no ratios.")
    for name, values in figures.items():
        done = (values.get("sequential_runs"), values.get("burst_runs"))
        if done != (plan.sequential, plan.burst):
            print(f"{name}: the measurement stopped early; its missing figures read n/a.")


def _target(key: str, value: float | None, higher: bool) -> str:
    target = TARGETS.get(key)
    if target is None:
        return " " * 15
    sign = ">=" if higher else "<="
    if value is None:
        verdict = "n/a "
    else:
        verdict = "ok  " if (value >= target if higher else value <= target) else "MISS"
    return f"{sign + ' ' + format(target, 'g'):>10} {verdict}"


def _number(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


@contextlib.contextmanager
def background(command: list[str], env: dict[str, str], log: Path) -> Iterator[Path]:
    """A process in its own session; Ctrl-C (then SIGKILL) to its group when the block ends."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_line(log: Path, text: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{text!r} not in {log} after {timeout} s:\n{log.read_text()[-2000:]}"
            )
        time.sleep(0.05)


def run_product(product: Any, tmp: Path, plan: Plan, values: dict[str, float]) -> None:
    """Measure ``product``; ``values`` keeps what was measured before a failure."""
    home = tmp / "home"
    with running_server(product, home) as server:
        env = clean_env(**_client_env(product, home, server.api_url))
        with httpx.Client(base_url=server.api_url, timeout=30.0, trust_env=False) as http:
            rig_class = DockyardRig if product is DOCKYARD else PrefectRig
            rig = rig_class(product, http, tmp, env)
            rig.deploy()
            with background(rig.worker_command(WORKER_LIMIT), env, tmp / "worker.log") as log:
                wait_for_line(log, rig.worker_ready_line)
                measure(rig, plan, values)


def _client_env(product: Any, home: Path, api_url: str) -> dict[str, str]:
    if product is DOCKYARD:
        return {"DOCKYARD_HOME": str(home), "DOCKYARD_API_URL": api_url}
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def parse_args(argv: list[str]) -> tuple[list[str], Plan]:
    default = Plan()
    parser = argparse.ArgumentParser(description="Dispatch latency and throughput.")
    parser.add_argument("products", nargs="*", metavar="PRODUCT", help="dockyard, prefect")
    parser.add_argument(
        "--runs", type=int, default=default.sequential, help="runs in a row, per product"
    )
    parser.add_argument(
        "--burst", type=int, default=default.burst, help="runs of each burst, per product"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.products) - {DOCKYARD.module, PREFECT.module})
    if unknown:
        parser.error(f"unknown product(s) {', '.join(unknown)}; choose dockyard, prefect")
    if args.runs < 1 or args.burst < 1:
        parser.error("--runs and --burst need at least 1 run")
    return args.products, Plan(args.runs, args.burst)


def main() -> int:
    names, plan = parse_args(sys.argv[1:])
    print(f"plan for every product: {plan.describe()}", flush=True)
    figures: dict[str, dict[str, float]] = {}
    status = 0
    for product in products(names):
        print(f"measuring {product.name} ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="dockyard-bench-dispatch-") as tmp:
            figures[product.name] = {}
            try:
                run_product(product, Path(tmp), plan, figures[product.name])
            except Exception:
                # Dockyard's own failure is a bug; the reference's only costs its column
                print(f"{product.name}: the measurement failed:\n{traceback.format_exc()}")
                status = 1 if product is DOCKYARD else status
    print_table(figures, plan)
    return status


if __name__ == "__main__":
    sys.exit(main())
