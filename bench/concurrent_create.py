"""50 flow runs created at once by 50 clients, on each product's embedded SQLite database.

    python bench/concurrent_create.py [dockyard] [prefect]   # default: both (Prefect if installed)

Prints, per round, how many creations succeeded and failed, how long the burst took, and the
slowest request; then checks how many runs the server really stored. Requests go out once,
with no retries: a 503 ("try again") counts as a failure even where a product's own client
would retry it.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import Product, percentile, products, running_server

CLIENTS = 50
ROUNDS = 3


@dataclass
class Round:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    example: str = ""  # one failed answer's body, to tell why


async def burst(product: Product, api_url: str, context: dict[str, Any]) -> Round:
    """Open CLIENTS connections, then have every client create one run at the same moment."""
    path, body = product.create_request(context)
    go = asyncio.Event()
    clients = [
        httpx.AsyncClient(base_url=api_url, timeout=120.0, trust_env=False) for _ in range(CLIENTS)
    ]

    examples: list[str] = []

    async def one(client: httpx.AsyncClient) -> float | str:
        await client.get("/health")  # connect before the burst
        await go.wait()
        started = time.perf_counter()
        try:
            answer = await client.post(path, json=body)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if answer.status_code >= 300:
            examples.append(answer.text[:200])
            return f"HTTP {answer.status_code}"
        return time.perf_counter() - started

    try:
        tasks = [asyncio.create_task(one(client)) for client in clients]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        go.set()
        outcomes = await asyncio.gather(*tasks)
        result = Round(seconds=time.perf_counter() - started, example=next(iter(examples), ""))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    for outcome in outcomes:
        if isinstance(outcome, str):
            result.failures[outcome] += 1
        else:
            result.latencies.append(outcome)
    return result


def measure(product: Product) -> None:
    print(f"\n{product.name}: {CLIENTS} concurrent creations x {ROUNDS} rounds, SQLite")
    with (
        tempfile.TemporaryDirectory(prefix="dockyard-bench-") as tmp,
        running_server(product, Path(tmp) / "home") as server,
        httpx.Client(base_url=server.api_url, timeout=30.0, trust_env=False) as http,
    ):
        context = product.prepare(http)
        succeeded = 0
        for number in range(1, ROUNDS + 1):
            result = asyncio.run(burst(product, server.api_url, context))
            succeeded += len(result.latencies)
            failures = ", ".join(f"{n} x {why}" for why, n in result.failures.items()) or "none"
            slowest = max(result.latencies, default=0.0) * 1000
            p50 = percentile(result.latencies, 50) * 1000 if result.latencies else 0.0
            print(
                f"  round {number}: {len(result.latencies):>2} ok, failures: {failures}; "
                f"burst {result.seconds * 1000:.0f} ms, p50 {p50:.0f} ms, slowest {slowest:.0f} ms"
            )
            if result.example:
                print(f"    e.g. {result.example}")
        stored = product.count_runs(http, context)
        verdict = "as expected" if stored == succeeded else f"but {succeeded} were acknowledged"
        print(f"  runs stored: {stored} ({verdict})")


def main() -> int:
    status = 0
    for product in products():
        try:
            measure(product)
        except Exception:
            print(f"{product.name}: the measurement failed:\n{traceback.format_exc()}")
            if product.name == "dockyard":
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
