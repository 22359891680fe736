"""Claim throughput: workers claiming from one pool through two server replicas on PostgreSQL.

    python bench/claims.py [--runs N] [--workers N]      # default 2,000 runs, 8 workers

A throwaway PostgreSQL cluster (the system's binaries, on 127.0.0.1) and two ``dockyard
server start`` replicas on it. A pool gets ``--runs`` due runs; then the workers (light async
clients speaking the claim protocol, half on each replica) claim until all are taken or 120 s
have passed (``POST /workers/claim``, no wait): one run per request, the worst case, and then
as many as a worker with room asks for at once (``dockyard.workers.base.BATCH``); claims/s
counts runs claimed, whatever the requests that took them.
Measured both ways a claim can lock the pool: a pool with no concurrency limit (claims side
by side, ``FOR KEY SHARE`` on the pool's row, ``FOR UPDATE SKIP LOCKED`` on the runs), and
one with a limit (as high as the runs: claims take turns on ``FOR UPDATE``).
Prints claims/s, claim latency p50/p99, and the double claims, checked twice: run ids
answered to more than one claim, and runs that entered PENDING more than once in the
database. The target is >= 500 claims/s with 0 double claims. Figures are printed, never
asserted; without PostgreSQL the measurement prints "skipped: ...".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import httpx
from _common import (
    DOCKYARD,
    PostgresMissing,
    percentile,
    pg_fetch,
    postgres_cluster,
    running_server,
)

from dockyard.workers.base import BATCH

RUNS = 2000
WORKERS = 8
REPLICAS = 2
CREATING = 16  # creations in flight at once
TARGET = 500.0  # claims/s
DEADLINE = 120.0  # seconds of claiming, at most: the figures then cover what was claimed


async def create_runs(apis: list[str], count: int, limit: int | None = None) -> None:
    """A pool (with concurrency ``limit``), a deployment, and ``count`` runs of it, due now
    (created through both)."""
    clients = [httpx.AsyncClient(base_url=api, timeout=60.0, trust_env=False) for api in apis]
    try:
        first = clients[0]
        pool = {"name": "claims", "type": "process", "concurrency_limit": limit}
        await first.post("/work-pools", json=pool)
        body = {
            "flow_name": "claims",
            "name": "claims",
            "entrypoint": "f.py:f",
            "path": "/tmp",
            "work_pool_name": "claims",
        }
        deployment = (await first.post("/deployments", json=body)).raise_for_status().json()
        slots = asyncio.Semaphore(CREATING)

        async def one(n: int) -> None:
            async with slots:
                answer = await clients[n % len(clients)].post(
                    f"/deployments/{deployment['id']}/runs", json={}
                )
            answer.raise_for_status()

        await asyncio.gather(*(one(n) for n in range(count)))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def claim_all(apis: list[str], workers: int, count: int, batch: int) -> dict[str, Any]:
    """Have ``workers`` claim up to ``batch`` runs per request until ``count`` are claimed."""
    claimed: list[str] = []
    latencies: list[float] = []
    empty = 0
    clients = [
        httpx.AsyncClient(base_url=apis[n % len(apis)], timeout=DEADLINE, trust_env=False)
        for n in range(workers)
    ]
    go = asyncio.Event()
    stop = float("inf")

    async def worker(n: int, http: httpx.AsyncClient) -> None:
        nonlocal empty
        await http.get("/health")  # connect before the start
        await go.wait()
        ask = {"worker_name": f"bench-{n}", "work_pool_name": "claims", "limit": batch, "wait": 0}
        while len(claimed) < count and time.perf_counter() < stop:
            sent = time.perf_counter()
            answer = await http.post("/workers/claim", json=ask)
            latencies.append(time.perf_counter() - sent)
            runs = answer.raise_for_status().json()
            claimed.extend(run["flow_run"]["id"] for run in runs)
            if not runs:
                empty += 1
                await asyncio.sleep(0.01)  # the last runs are another worker's by now

    try:
        tasks = [asyncio.create_task(worker(n, c)) for n, c in enumerate(clients)]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        stop = started + DEADLINE
        go.set()
        await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return {"claimed": claimed, "latencies": latencies, "seconds": seconds, "empty": empty}


async def pending_entries(url: str) -> collections.Counter[int]:
    """How many runs entered PENDING once, twice, ...: by the database's state history."""
    rows = await pg_fetch(
        url,
        "SELECT count(*) AS n FROM flow_run_states WHERE type = 'PENDING' GROUP BY flow_run_id",
    )
    return collections.Counter(int(row["n"]) for row in rows)


def measure(tmp: Path, runs: int, workers: int, limit: int | None, batch: int) -> None:
    with postgres_cluster() as cluster, contextlib.ExitStack() as stack:
        url = cluster.new_database()
        env = {"DOCKYARD_DATABASE_URL": url}
        servers = [
            stack.enter_context(running_server(DOCKYARD, tmp / f"replica-{n}", env))
            for n in range(REPLICAS)
        ]
        apis = [server.api_url for server in servers]
        print(f"  creating {runs} due runs through {REPLICAS} replicas ...", flush=True)
        asyncio.run(create_runs(apis, runs, limit))
        print(f"  {workers} workers claiming, up to {batch} run(s) per claim ...", flush=True)
        result = asyncio.run(claim_all(apis, workers, runs, batch))
        entries = asyncio.run(pending_entries(url))
    report(result, entries, runs, workers)


def report(
    result: dict[str, Any], entries: collections.Counter[int], runs: int, workers: int
) -> None:
    claimed, latencies = result["claimed"], result["latencies"]
    rate = len(claimed) / result["seconds"]
    duplicates = len(claimed) - len(set(claimed))
    twice = sum(n for times, n in entries.items() if times > 1)
    verdict = "ok" if rate >= TARGET else "MISS"
    print(
        f"  claimed {len(claimed)} of {runs} runs in {result['seconds']:.2f} s: "
        f"{rate:.0f} claims/s (target >= {TARGET:.0f}: {verdict})"
    )
    print(
        f"  claim latency: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms over {len(latencies)} requests "
        f"({result['empty']} answered empty)"
    )
    print(
        f"  double claims: {duplicates} in the answers, {twice} runs PENDING more than once "
        f"in the database ({sum(entries.values())} runs entered PENDING) "
        f"[{'ok' if duplicates == twice == 0 else 'MISS'}]"
    )
    print(f"  ({workers} workers, {REPLICAS} replicas, one PostgreSQL, all on this machine)")


def main() -> int:
    parser = argparse.ArgumentParser(description="Claims/s on PostgreSQL with two replicas.")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs to claim ({RUNS})")
    parser.add_argument("--workers", type=int, default=WORKERS, help=f"workers ({WORKERS})")
    args = parser.parse_args()
    if args.runs < 1 or args.workers < 1:
        parser.error("--runs and --workers need at least 1")
    print(f"claims: {args.workers} workers, {REPLICAS} replicas on PostgreSQL", flush=True)
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-claims-") as tmp:
        try:
            for batch in (1, BATCH):
                for limit, how in ((None, "side by side"), (args.runs, "taking turns")):
                    print(
                        f"- a pool with {'no' if limit is None else 'a'} limit: claims {how}, "
                        f"up to {batch} run(s) each"
                    )
                    where = Path(tmp) / f"{how.replace(' ', '-')}-{batch}"
                    measure(where, args.runs, args.workers, limit, batch)
        except PostgresMissing as missing:
            print(f"  skipped: {missing}")
        except Exception:
            print(f"  the measurement failed:\n{traceback.format_exc()}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
