"""Four workers drain one pool: every run exactly once, no limit ever exceeded, priority kept.

Most runs use the fake engine (a stdlib script: the suite runs on two shared cores); a few go
through the real engine. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from worker_support import Workers, fake_command, flow_deployment, make_deployment, trigger

from _support import RunningServer
from dockyard import schemas

POOL_LIMIT, QUEUE_LIMIT, DEPLOYMENT_LIMIT = 6, 2, 2
FAKE_RUNS = {"urgent": 40, "limited": 40, "bulk": 80, "capped": 40}  # 200 in all
ENGINE_RUNS = 6
LIVE = ["PENDING", "RUNNING", "CANCELLING", "AWAITING_RETRY"]
DRAIN_TIMEOUT = 150.0


class Sampler(threading.Thread):
    """Counts the pool's live runs every few milliseconds while the workers drain it."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.done = threading.Event()
        self.peaks: Counter[str] = Counter()
        self.samples = 0

    def run(self) -> None:
        with self.server.client() as client:
            while not self.done.is_set():
                live = client.list_flow_runs(work_pool_name="stress", state=LIVE, limit=1000)
                self.samples += 1
                counts = Counter({"pool": len(live)})
                counts.update(f"queue:{r.work_queue_name}" for r in live)
                counts.update(f"deployment:{r.deployment_name}" for r in live)
                for key, value in counts.items():
                    self.peaks[key] = max(self.peaks[key], value)
                time.sleep(0.05)


def _setup(client: Any, tmp_path: Path, ids_file: Path) -> dict[str, list[schemas.FlowRun]]:
    client.create_work_pool(
        schemas.WorkPoolCreate(name="stress", type="process", concurrency_limit=POOL_LIMIT)
    )
    client.create_work_queue("stress", schemas.WorkQueueCreate(name="urgent", priority=1))
    client.create_work_queue(
        "stress", schemas.WorkQueueCreate(name="capped", concurrency_limit=QUEUE_LIMIT)
    )
    command = fake_command("--append", str(ids_file), "--sleep", "0.05")
    queues = {"urgent": "urgent", "limited": "default", "bulk": "default", "capped": "capped"}
    runs: dict[str, list[schemas.FlowRun]] = {}
    for name, count in FAKE_RUNS.items():
        deployment = make_deployment(
            client,
            pool="stress",
            name=name,
            work_queue_name=queues[name],
            job_variables={"command": command, "stream_output": False},
            concurrency_limit=DEPLOYMENT_LIMIT if name == "limited" else None,
        )
        runs[name] = [trigger(client, deployment) for _ in range(count)]
    engine = flow_deployment(client, tmp_path, pool="stress", name="engine")
    parameters = {"append": str(ids_file)}
    runs["engine"] = [trigger(client, engine, parameters=parameters) for _ in range(ENGINE_RUNS)]
    return runs


def _pending_times(client: Any, run: schemas.FlowRun) -> list[Any]:
    states = client.read_flow_run_states(run.id)
    assert [s.type for s in states].count("RUNNING") == 1, states
    return [s.timestamp for s in states if s.type == "PENDING"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_four_workers_drain_a_pool(server: RunningServer, workers: Workers, tmp_path: Path) -> None:
    ids_file = tmp_path / "ran.txt"
    with server.client() as client:
        runs = _setup(client, tmp_path, ids_file)
        every = [run for group in runs.values() for run in group]
        sampler = Sampler(server)
        sampler.start()
        try:
            for limit in (None, None, "2", "2"):
                workers.start("--pool", "stress", *(["--limit", limit] if limit else []))
            deadline = time.monotonic() + DRAIN_TIMEOUT
            while True:
                done = client.list_flow_runs(
                    work_pool_name="stress", state=["COMPLETED"], limit=1000
                )
                if len(done) == len(every):
                    break
                assert time.monotonic() < deadline, f"{len(done)} of {len(every)} completed"
                time.sleep(0.5)
        finally:
            sampler.done.set()
            sampler.join(10)

        assert sampler.samples > 10 and sampler.peaks["pool"] > 1, sampler.peaks
        assert sampler.peaks["pool"] <= POOL_LIMIT, sampler.peaks
        assert sampler.peaks["queue:capped"] <= QUEUE_LIMIT, sampler.peaks
        assert sampler.peaks["deployment:limited"] <= DEPLOYMENT_LIMIT, sampler.peaks

        ran = ids_file.read_text().split()
        assert Counter(ran).most_common(1)[0][1] == 1, "a run ran twice"
        assert sorted(ran) == sorted(str(run.id) for run in every)

        claimed = {run.id: _pending_times(client, run) for run in every}
        assert all(len(times) == 1 for times in claimed.values())
        last_urgent = max(claimed[run.id][0] for run in runs["urgent"])
        others = [run for name, group in runs.items() if name != "urgent" for run in group]
        assert last_urgent <= min(claimed[run.id][0] for run in others)
