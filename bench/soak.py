"""Soak: many runs through one server, the whole way a worker and an engine take them.

    python bench/soak.py [--runs N]          # default 10,000 runs

Each run is created for a deployment of a process pool, claimed (``POST /workers/claim``,
up to 50 at a time), moved to RUNNING, given two log lines and moved to COMPLETED, over the
REST API by a light client (a few requests in flight at once): what a worker and an engine
send, without their processes. Prints the server's resident memory at the start, after
1,000 runs and at the end (the target: flat within 10 %, printed as a ratio), the runs/s,
and the database's growth per 1,000 runs: the SQLite file, and PostgreSQL's
``pg_database_size`` when ``BENCH_POSTGRES_URL`` names an empty database
(``postgresql+asyncpg://USER@HOST:PORT/NAME``). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from _common import DOCKYARD, pg_fetch, running_server

RUNS = 10_000
FIRST = 1_000  # the checkpoint after the first runs
CHUNK = 50  # runs created, then claimed, per round: the most one claim takes
PARALLEL = 8  # requests in flight at once
POSTGRES_URL = "BENCH_POSTGRES_URL"
MIB = 1024 * 1024


class Client:
    """The requests of a worker and an engine, a few at a time."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.slots = asyncio.Semaphore(PARALLEL)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.slots:
            answer = await self.http.request(method, path, json=body)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    async def prepare(self) -> str:
        await self.call("POST", "/work-pools", {"name": "soak", "type": "process"})
        body = {
            "flow_name": "soak",
            "name": "soak",
            "entrypoint": "f.py:f",
            "path": "/tmp",
            "work_pool_name": "soak",
        }
        return str((await self.call("POST", "/deployments", body))["id"])

    async def round(self, deployment: str, count: int) -> None:
        """Create ``count`` runs, claim them all, and take each to COMPLETED."""
        create = [self.call("POST", f"/deployments/{deployment}/runs", {}) for _ in range(count)]
        await asyncio.gather(*create)
        claimed: list[dict[str, Any]] = []
        while len(claimed) < count:
            ask = {
                "worker_name": "soak",
                "work_pool_name": "soak",
                "wait": 0,
                "limit": min(CHUNK, count - len(claimed)),
            }
            got = await self.call("POST", "/workers/claim", ask)
            if not got:
                raise RuntimeError(f"claimed {len(claimed)} of {count} runs; none left to claim")
            claimed.extend(got)
        await asyncio.gather(*(self.finish(run) for run in claimed))

    async def finish(self, claimed: dict[str, Any]) -> None:
        run_id, token = claimed["flow_run"]["id"], claimed["lease_token"]
        await self.call(
            "POST", f"/flow-runs/{run_id}/state", {"state": "RUNNING", "lease_token": token}
        )
        lines = [
            {"flow_run_id": run_id, "message": f"soak line {n} of run {run_id}"} for n in range(2)
        ]
        await self.call("POST", "/logs", lines)
        await self.call(
            "POST", f"/flow-runs/{run_id}/state", {"state": "COMPLETED", "lease_token": token}
        )


def sqlite_size(home: Path) -> Callable[[], Awaitable[int]]:
    path = home / "dockyard.db"

    async def size() -> int:
        # fold the write-ahead log into the file first (PASSIVE: never waits for the server)
        with sqlite3.connect(path, timeout=30) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.close()
        return path.stat().st_size

    return size


def postgres_size(url: str) -> Callable[[], Awaitable[int]]:
    async def size() -> int:
        rows = await pg_fetch(url, "SELECT pg_database_size(current_database())")
        return int(rows[0][0])

    return size


async def soak(api_url: str, runs: int, rss: Callable[[], float], size: Any) -> dict[str, float]:
    figures: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=api_url, timeout=60.0, trust_env=False) as http:
        client = Client(http)
        deployment = await client.prepare()
        figures["rss_start"], figures["size_start"] = rss(), await size()
        started, done = time.perf_counter(), 0
        while done < runs:
            count = min(CHUNK, runs - done, FIRST - done if done < FIRST else CHUNK)
            await client.round(deployment, count)
            done += count
            if done == FIRST:
                figures["rss_first"], figures["size_first"] = rss(), await size()
            if done % 2000 == 0:
                print(
                    f"    {done} runs, {done / (time.perf_counter() - started):.0f} runs/s",
                    flush=True,
                )
        figures["seconds"] = time.perf_counter() - started
        figures["rss_end"], figures["size_end"] = rss(), await size()
    return figures


def report(name: str, runs: int, f: dict[str, float]) -> None:
    print(f"  {name}: {runs} runs in {f['seconds']:.0f} s ({runs / f['seconds']:.0f} runs/s)")
    first = "rss_first" in f
    line = f"  server RSS: start {f['rss_start']:.0f} MiB"
    if first:
        line += f", after {FIRST} runs {f['rss_first']:.0f} MiB"
    line += f", after {runs} runs {f['rss_end']:.0f} MiB"
    print(line)
    if first and runs > FIRST:
        ratio = f["rss_end"] / f["rss_first"]
        verdict = "ok" if ratio <= 1.10 else "MISS"
        print(f"  RSS end / after {FIRST}: {ratio:.3f} (target <= 1.10: {verdict})")
    per_k = (f["size_end"] - f["size_start"]) / MIB / (runs / 1000)
    print(
        f"  database: {f['size_start'] / MIB:.1f} MiB empty, {f['size_end'] / MIB:.1f} MiB "
        f"after {runs} runs: {per_k:.2f} MiB per 1,000 runs"
    )


def measure(name: str, runs: int, env: dict[str, str], size: Any, home: Path) -> None:
    print(
        f"\n{name}: {runs} runs, create -> claim -> RUNNING -> 2 log lines -> COMPLETED", flush=True
    )
    with running_server(DOCKYARD, home, env) as server:
        figures = asyncio.run(soak(server.api_url, runs, server.rss_mib, size))
    report(name, runs, figures)


def main() -> int:
    parser = argparse.ArgumentParser(description="Memory and database growth over many runs.")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"runs (default {RUNS})")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs needs at least 1 run")
    status = 0
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-soak-") as tmp:
        home = Path(tmp) / "sqlite"
        try:
            measure("SQLite", args.runs, {}, sqlite_size(home), home)
        except Exception:
            print(f"SQLite: the measurement failed:\n{traceback.format_exc()}")
            status = 1
        url = os.environ.get(POSTGRES_URL, "")
        if not url:
            print(
                f"\nPostgreSQL: skipped: set {POSTGRES_URL} to an empty database's URL "
                "(postgresql+asyncpg://USER@HOST:PORT/NAME) to measure it"
            )
            return status
        try:
            env = {"DOCKYARD_DATABASE_URL": url}
            measure("PostgreSQL", args.runs, env, postgres_size(url), Path(tmp) / "postgres")
        except Exception:
            print(f"PostgreSQL: the measurement failed:\n{traceback.format_exc()}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
