"""Fleet size: many simulated workers long-polling two server replicas on PostgreSQL.

    python bench/fleet.py [--workers N] [--pools N] [--triggers N] [--every S] [--idle S]
                          # default 1,000 workers, 50 pools, 20 runs 1.5 s apart, 20 s idle

A throwaway PostgreSQL cluster (on 127.0.0.1) and two ``dockyard server start`` replicas.
Each simulated worker is a pair of asyncio tasks on one shared connection pool per replica
(half the workers on each): a heartbeat every 5 s (``POST /workers/heartbeat``, the
workers' default period) and a claim long-poll (``POST /workers/claim``, ``wait`` 30 s,
asked again as soon as it answers). Printed:

- while idle (no runs): the replicas' resident memory and CPU (% of one core), the
  database connections held (``pg_stat_activity``, by state), and requests/s;
- then runs created one at a time, ``--every`` seconds apart, each for the deployment of
  another pool through alternate replicas: trigger -> claimed p50/p99 (from sending the
  create to the answer of the claim that took it, both seen by this process), and the
  replicas' CPU meanwhile.

The bench's own client shares the machine's cores with the replicas and PostgreSQL; its
CPU is printed too. Figures are printed, never asserted; without PostgreSQL it prints
"skipped: ...".
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import (
    DOCKYARD,
    PostgresMissing,
    Server,
    percentile,
    pg_fetch,
    postgres_cluster,
    raise_open_files_limit,
    running_server,
)

REPLICAS = 2
HEARTBEAT = 5.0  # seconds: the workers' default heartbeat period
WAIT = 30.0  # seconds a claim long-polls (the server's default cap)
RAMP = 10.0  # seconds over which the workers start


@dataclass
class Plan:
    workers: int = 1000
    pools: int = 50
    triggers: int = 20
    every: float = 1.5
    idle: float = 20.0


@dataclass
class Fleet:
    """The simulated workers' shared record: requests, errors, and when runs were claimed."""

    plan: Plan
    apis: list[str]
    clients: list[httpx.AsyncClient]  # the trigger's, one per replica
    requests: int = 0
    polling: int = 0  # workers with a claim in flight
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    claimed: dict[str, float] = field(default_factory=dict)
    stopping: bool = False

    async def call(self, http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
        try:
            answer = await http.post(path, json=body)
        except httpx.HTTPError as exc:
            self.errors[f"{path}: {type(exc).__name__}"] += 1
            await asyncio.sleep(1.0)
            return None
        self.requests += 1
        if answer.status_code >= 300:
            self.errors[f"{path}: HTTP {answer.status_code}"] += 1
            await asyncio.sleep(1.0)
            return None
        return answer.json()

    async def worker(self, n: int) -> None:
        # a client of its own, as a worker process has: one pool of connections shared by
        # 1,000 workers made the bench's own CPU the bottleneck (httpx's pool is scanned on
        # every request)
        http = client(self.apis[n % len(self.apis)], 2)
        name, pool = f"fleet-{n}", f"pool-{n % self.plan.pools}"
        await asyncio.sleep(random.uniform(0, RAMP))
        beating = asyncio.create_task(self.heartbeat(http, name, pool))
        ask = {"worker_name": name, "work_pool_name": pool, "limit": 1, "wait": WAIT}
        try:
            while not self.stopping:
                self.polling += 1
                runs = await self.call(http, "/workers/claim", ask)
                self.polling -= 1
                now = time.perf_counter()
                for run in runs or []:
                    self.claimed[run["flow_run"]["id"]] = now
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await http.aclose()

    async def heartbeat(self, http: httpx.AsyncClient, name: str, pool: str) -> None:
        beat = {"name": name, "work_pool_name": pool}
        while True:
            await self.call(http, "/workers/heartbeat", beat)
            await asyncio.sleep(HEARTBEAT)


def client(api: str, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=api, timeout=WAIT + 15, limits=limits, trust_env=False)


async def prepare(api: str, pools: int) -> list[str]:
    """``pools`` process pools with a deployment each; returns the deployments' ids."""
    async with httpx.AsyncClient(base_url=api, timeout=60.0, trust_env=False) as http:
        ids = []
        for n in range(pools):
            body = {"name": f"pool-{n}", "type": "process"}
            (await http.post("/work-pools", json=body)).raise_for_status()
            body = {
                "flow_name": "fleet",
                "name": f"d{n}",
                "entrypoint": "f.py:f",
                "path": "/tmp",
                "work_pool_name": f"pool-{n}",
            }
            ids.append((await http.post("/deployments", json=body)).raise_for_status().json())
        return [str(d["id"]) for d in ids]


def cpu_now(servers: list[Server]) -> tuple[float, float]:
    """(monotonic time, CPU seconds the replicas used so far)."""
    return time.monotonic(), sum(server.cpu_seconds() for server in servers)


def cpu_since(servers: list[Server], mark: tuple[float, float]) -> float:
    """The replicas' CPU since ``mark``, in % of one core."""
    now, used = cpu_now(servers)
    return (used - mark[1]) / (now - mark[0]) * 100


async def connections(url: str) -> str:
    rows = await pg_fetch(
        url,
        "SELECT coalesce(state, 'other') AS state, count(*) AS n FROM pg_stat_activity "
        "WHERE datname = current_database() GROUP BY 1 ORDER BY 2 DESC",
    )
    total = sum(int(row["n"]) for row in rows)
    parts = ", ".join(f"{row['n']} {row['state']}" for row in rows)
    return f"{total} ({parts})"


async def run_fleet(servers: list[Server], url: str, plan: Plan) -> None:
    deployments = await prepare(servers[0].api_url, plan.pools)
    apis = [s.api_url for s in servers]
    fleet = Fleet(plan, apis, [client(api, 10) for api in apis])
    client_cpu = _own_cpu()
    workers = [asyncio.create_task(fleet.worker(n)) for n in range(plan.workers)]
    try:
        print(f"  starting {plan.workers} workers over {RAMP:.0f} s ...", flush=True)
        await asyncio.sleep(RAMP + HEARTBEAT)
        print(f"  idle for {plan.idle:.0f} s ({fleet.polling} claims waiting) ...", flush=True)
        mark, requests, own = cpu_now(servers), fleet.requests, _own_cpu()
        await asyncio.sleep(plan.idle)
        idle_cpu = cpu_since(servers, mark)
        rate = (fleet.requests - requests) / plan.idle
        own_idle = (_own_cpu() - own) / plan.idle * 100
        held = await connections(url)
        rss = ", ".join(f"{s.rss_mib():.0f}" for s in servers)
        print(
            f"  idle: replicas' RSS {rss} MiB; CPU {idle_cpu:.0f} % of one core (both "
            f"replicas); {rate:.0f} requests/s; bench client CPU {own_idle:.0f} %"
        )
        print(f"  idle: database connections held: {held}")
        print(f"  creating {plan.triggers} runs, {plan.every} s apart ...", flush=True)
        latencies = await trigger(fleet, servers, deployments)
        print(
            f"  trigger -> claimed: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
            f"p99 {percentile(latencies, 99) * 1000:.0f} ms over {len(latencies)} runs"
        )
        print(
            f"  errors: {dict(fleet.errors) or 'none'}; bench client CPU over the whole run "
            f"{_own_cpu() - client_cpu:.0f} s"
        )
    finally:
        fleet.stopping = True
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.gather(*(c.aclose() for c in fleet.clients))


async def trigger(fleet: Fleet, servers: list[Server], deployments: list[str]) -> list[float]:
    sent: dict[str, float] = {}
    mark = cpu_now(servers)
    for n in range(fleet.plan.triggers):
        http = fleet.clients[n % len(fleet.clients)]
        started = time.perf_counter()
        path = f"/deployments/{deployments[n % len(deployments)]}/runs"
        # a key makes sending it again safe when a kept-alive connection was closed under it
        for attempt in range(3):
            try:
                answer = await http.post(path, json={"idempotency_key": f"fleet-{n}"})
                break
            except httpx.TransportError:
                fleet.errors["creating a run: connection lost, sent again"] += 1
                if attempt == 2:
                    raise
        sent[answer.raise_for_status().json()["id"]] = started
        await asyncio.sleep(fleet.plan.every)
    deadline = time.monotonic() + 60
    while not set(sent) <= set(fleet.claimed) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    print(f"  while triggering: CPU {cpu_since(servers, mark):.0f} % of one core (both replicas)")
    missing = len(set(sent) - set(fleet.claimed))
    if missing:
        print(f"  {missing} runs not claimed within 60 s")
    return [fleet.claimed[i] - t for i, t in sent.items() if i in fleet.claimed]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(tmp: Path, plan: Plan) -> None:
    with postgres_cluster() as cluster, contextlib.ExitStack() as stack:
        url = cluster.new_database()
        env = {"DOCKYARD_DATABASE_URL": url}
        servers = [
            stack.enter_context(running_server(DOCKYARD, tmp / f"replica-{n}", env))
            for n in range(REPLICAS)
        ]
        asyncio.run(run_fleet(servers, url, plan))


def main() -> int:
    default = Plan()
    parser = argparse.ArgumentParser(description="Many workers long-polling two replicas.")
    parser.add_argument("--workers", type=int, default=default.workers)
    parser.add_argument("--pools", type=int, default=default.pools)
    parser.add_argument("--triggers", type=int, default=default.triggers)
    parser.add_argument("--every", type=float, default=default.every, help="seconds")
    parser.add_argument("--idle", type=float, default=default.idle, help="seconds")
    args = parser.parse_args()
    plan = Plan(args.workers, args.pools, args.triggers, args.every, args.idle)
    if min(plan.workers, plan.pools, plan.triggers) < 1 or plan.idle <= 0:
        parser.error("--workers, --pools, --triggers need at least 1, --idle more than 0")
    files = raise_open_files_limit()
    print(
        f"fleet: {plan.workers} workers, {plan.pools} pools, {REPLICAS} replicas on "
        f"PostgreSQL (open files limit {files})",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-fleet-") as tmp:
        try:
            measure(Path(tmp), plan)
        except PostgresMissing as missing:
            print(f"  skipped: {missing}")
        except Exception:
            print(f"  the measurement failed:\n{traceback.format_exc()}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
