"""Chaos at scale: the rig of tests/scale/test_chaos.py with 5,000 runs, and its figures.

    python bench/chaos.py [--runs N] [--seconds S] [--budget S]   # default 5,000 runs

Two ``dockyard server start`` replicas on a throwaway PostgreSQL cluster (127.0.0.1), six
process workers split across them, a pool, a queue and a deployment with concurrency limits,
crash retries on the deployments. While the workers drain the pool a seeded loop SIGKILLs
random workers (started again at once) and random run processes, and restarts one replica.
Prints runs/s, the faults injected, the crash retries seen, and the peak live counts beside
their limits; then checks what the test asserts (printed, never raised).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import ROOT, PostgresMissing, postgres_cluster

sys.path.insert(0, str(ROOT / "tests"))
from _support.rigs import Chaos, iter_limits  # after the path to tests/

RUNS = 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--seconds", type=float, default=0.3, help="each run's own work")
    parser.add_argument("--budget", type=float, default=1800.0, help="most seconds of faults")
    args = parser.parse_args()
    try:
        with postgres_cluster() as cluster, tempfile.TemporaryDirectory() as tmp:
            measure(Chaos(Path(tmp) / "chaos", cluster.new_database()), args)
    except PostgresMissing as exc:
        print(f"skipped: {exc}")


def measure(rig: Chaos, args: argparse.Namespace) -> None:
    with rig:
        print(f"creating {args.runs} runs ...", flush=True)
        rig.create_runs(args.runs, seconds=args.seconds)
        sampler = rig.start_sampler()
        started = time.monotonic()
        rig.start_workers()
        rig.run_chaos(until_left=max(1, args.runs // 20), budget=args.budget)
        left = rig.wait_finished(timeout=600.0)
        elapsed = time.monotonic() - started
        sampler.stop()
        runs = rig.all_runs()
    states = Counter(r["state"] for r in runs)
    ledger = Counter(rig.ledger_lines())
    retries = sum(max(0, int(r.get("attempt") or 1) - 1) for r in runs)
    finished = len(runs) - left
    print(f"runs:            {len(runs)} ({dict(states)}), {left} not final")
    print(f"throughput:      {finished / elapsed:.1f} runs/s over {elapsed:.0f} s")
    print(
        f"faults:          {rig.faults.workers_killed} workers killed, "
        f"{rig.faults.runs_killed} run processes killed, "
        f"{rig.faults.replica_restarts} replica restart(s)"
    )
    print(f"crash retries:   {retries} (attempts beyond the first)")
    for key, limit in iter_limits(rig.limits):
        print(f"max live {key:<20} {sampler.peaks[key]:>3} (limit {limit})")
    print(f"samples:         {sampler.samples} ({sampler.errors} failed during the restart)")
    twice = sum(1 for times in ledger.values() if times > 1)
    ran = {run_id for run_id, _ in ledger}
    missing = sum(1 for r in runs if r["state"] == "COMPLETED" and r["id"] not in ran)
    over = [k for k, limit in iter_limits(rig.limits) if sampler.peaks[k] > limit]
    print(f"attempts run twice: {twice}; COMPLETED missing from the ledger: {missing}")
    print(f"limits exceeded: {over or 'none'}")
    for problem in rig.problems():
        # the first line says who, the last what; the whole traceback is in the rig's logs
        lines = problem.splitlines()
        print(f"problem: {lines[0]} ... {lines[-1]}")


if __name__ == "__main__":
    main()
