"""Chaos: two replicas on one PostgreSQL, six workers, runs under SIGKILLs and a restart.

While the workers drain the pool, a seeded loop SIGKILLs random workers (and starts them
again) and random run processes, and restarts one replica (SIGTERM, then the same port).
Afterwards every run is final, no attempt ran twice (the flow writes "RUN_ID ATTEMPT" to a
ledger), every COMPLETED run is in the ledger, and live counts sampled through the API never
exceeded the pool's, the queue's or the deployment's limit. ``bench/chaos.py`` runs the same
rig with 5,000 runs and prints its figures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from _support import PostgresCluster
from _support.rigs import FINAL, Chaos, iter_limits

# 500 runs take about 2 minutes on a quiet 2-core machine (a real engine per run costs about
# half a CPU-second) and up to 7 when other tests load it. bench/chaos.py runs 5,000.
RUNS = 500
CHAOS_BUDGET = 90.0  # seconds of faults at most; then the rest drains in peace
DRAIN_TIMEOUT = 300.0


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_runs_survive_chaos(postgres_cluster: PostgresCluster, tmp_path: Path) -> None:
    rig = Chaos(tmp_path / "chaos", postgres_cluster.new_database())
    with rig:
        ids = rig.create_runs(RUNS, seconds=0.3)
        sampler = rig.start_sampler()
        rig.start_workers()
        # faults while at least a fifth of the runs are still to go
        rig.run_chaos(until_left=RUNS // 5, budget=CHAOS_BUDGET)
        left = rig.wait_finished(DRAIN_TIMEOUT)
        sampler.stop()
        runs = rig.all_runs()
    assert left == 0, f"{left} runs not final after {DRAIN_TIMEOUT} s"

    faults = rig.faults
    assert faults.workers_killed > 0 and faults.runs_killed > 0, faults
    assert faults.replica_restarts == 1, faults

    assert sorted(r["id"] for r in runs) == sorted(ids)
    states = Counter(r["state"] for r in runs)
    assert set(states) <= set(FINAL), states
    # a killed run is retried; only one killed more often than its crash retries stays down
    assert states["COMPLETED"] >= RUNS - faults.runs_killed - faults.workers_killed, states

    ledger = Counter(rig.ledger_lines())
    twice = [entry for entry, times in ledger.items() if times > 1]
    assert not twice, f"attempts that ran twice: {twice[:10]}"
    ran = {run_id for run_id, _ in ledger}
    missing = [r["id"] for r in runs if r["state"] == "COMPLETED" and r["id"] not in ran]
    assert not missing, f"COMPLETED runs that never wrote to the ledger: {missing[:10]}"
    assert any(attempt > 1 for _, attempt in ledger), "no crash was retried"

    assert sampler.samples > 20, sampler
    for key, limit in iter_limits(rig.limits):
        assert 0 < sampler.peaks[key] <= limit, (key, sampler.peaks)

    # last, so that a traceback does not hide whether the invariants held
    problems = rig.problems()
    assert not problems, "\n\n".join(problems)
