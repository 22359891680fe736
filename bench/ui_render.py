"""The UI's pages at 100,000 flow runs beside 1,000: how flat their render time stays.

    python bench/ui_render.py

For each size, a fresh SQLite database is seeded through the tables (bulk inserts, not the
API): flows, deployments on work pools with two queues each, and flow runs one every
:data:`EVERY` back from now with their state history, a few running, late and upcoming. Both
sizes hold the same runs in their last 24 hours, so a page that reads only its time range costs
the same at both. No ``ANALYZE``: the planner has no statistics, as on users' databases.

A real server is started on each, and each page is asked for :data:`REQUESTS` times after
:data:`WARMUP`, timed from request to the last byte over loopback, the two servers in turn
(so that whatever else the machine does weighs on both alike): the dashboard (its default
24 h charts, and its 30-day charts, whose range holds far more runs at 100,000), a deployment's
page, a work pool's page (its queue and slot charts) and a flow run's page. Prints p50 and p99
per page at each size and the ratio of the p50s. Figures are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from _common import DOCKYARD, percentile, running_server
from sqlalchemy import create_engine, insert

from dockyard.server.db import Database
from dockyard.server.tables import (
    DeploymentRow,
    FlowRow,
    FlowRunRow,
    FlowRunStateRow,
    LogRow,
    TaskRunRow,
    WorkPoolRow,
    WorkQueueRow,
    utcnow,
)

SIZES = (1_000, 100_000)
EVERY = timedelta(minutes=2)
POOLS, QUEUES_PER_POOL, FLOWS, DEPLOYMENTS = 4, 2, 10, 20
RUNNING, LATE, UPCOMING = 3, 5, 50
FINALS = ("COMPLETED",) * 85 + ("FAILED",) * 8 + ("CRASHED",) * 3 + ("CANCELLED",) * 4
CHUNK = 5_000
REQUESTS = 40
WARMUP = 3


def seed(home: Path, runs: int) -> dict[str, str]:
    """A database in ``home`` (where the server looks) with ``runs`` flow runs; returns the
    paths of the pages to time."""
    path = home / "dockyard.db"
    database = Database(f"sqlite+aiosqlite:///{path}")

    async def create() -> None:
        await database.migrate()
        await database.dispose()

    asyncio.run(create())
    engine = create_engine(f"sqlite:///{path}")
    rng = random.Random(runs)
    now = utcnow()
    # executemany: every row names the same columns
    pools: list[dict[str, Any]] = [
        {"id": uuid.uuid4(), "name": f"pool-{i}", "type": "process", "concurrency_limit": None}
        for i in range(POOLS)
    ]
    pools[0]["concurrency_limit"] = 10
    queues = [
        {"id": uuid.uuid4(), "work_pool_id": p["id"], "name": name, "priority": n + 1}
        for p in pools
        for n, name in enumerate(["default", "urgent"][:QUEUES_PER_POOL])
    ]
    flows = [{"id": uuid.uuid4(), "name": f"flow-{i}", "slug": f"flow-{i}"} for i in range(FLOWS)]
    deployments = []
    for i in range(DEPLOYMENTS):
        queue = queues[i % len(queues)]
        deployments.append(
            {
                "id": uuid.uuid4(),
                "flow_id": flows[i % FLOWS]["id"],
                "name": f"deployment-{i}",
                "entrypoint": "flows.py:work",
                "work_pool_id": queue["work_pool_id"],
                "work_queue_id": queue["id"],
            }
        )
    run_rows, state_rows = _runs(rng, now, runs, flows, deployments)
    watched = next(r for r in run_rows if r["state"] == "COMPLETED")
    with engine.begin() as conn:
        for table, rows in (
            (WorkPoolRow, pools),
            (WorkQueueRow, queues),
            (FlowRow, flows),
            (DeploymentRow, deployments),
            (FlowRunRow, run_rows),
            (FlowRunStateRow, state_rows),
            (TaskRunRow, _task_runs(watched)),
            (LogRow, _logs(watched)),
        ):
            for start in range(0, len(rows), CHUNK):
                conn.execute(insert(table), rows[start : start + CHUNK])
    engine.dispose()
    return {
        "dashboard": "/",
        "dashboard, 30 days": "/?chart=30d",
        "deployment": f"/deployments/{deployments[0]['id']}",
        "work pool": "/work-pools/pool-0",
        "flow run": f"/runs/{watched['id']}",
    }


def _runs(
    rng: random.Random,
    now: Any,
    count: int,
    flows: list[dict[str, Any]],
    deployments: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Runs one every :data:`EVERY` back from now (the newest running, then late ones), and
    :data:`UPCOMING` due in the next hours; with their state history."""
    runs, states = [], []
    for i in range(count):
        deployment = deployments[i % len(deployments)]
        row: dict[str, Any] = {
            "id": uuid.uuid4(),
            "name": f"run-{i:06d}",
            "flow_id": deployment["flow_id"],
            "deployment_id": deployment["id"],
            "work_pool_id": deployment["work_pool_id"],
            "work_queue_id": deployment["work_queue_id"],
            "start_time": None,
            "end_time": None,
            "lease_expires": None,
        }
        if i < UPCOMING:
            due = now + EVERY * (i + 1)
            row.update(state="SCHEDULED", scheduled_start=due, created=now - timedelta(hours=1))
        elif i < UPCOMING + LATE:
            due = now - timedelta(minutes=7 * (i - UPCOMING + 1))
            row.update(state="SCHEDULED", scheduled_start=due, created=due - timedelta(hours=1))
        else:
            due = now - EVERY * (i - UPCOMING - LATE) - timedelta(seconds=30)
            start = due + timedelta(seconds=rng.uniform(0.5, 5))
            running = i < UPCOMING + LATE + RUNNING
            end = (
                None if running else start + timedelta(seconds=min(rng.lognormvariate(4, 1), 7200))
            )
            row.update(
                state="RUNNING" if running else rng.choice(FINALS),
                scheduled_start=due,
                start_time=start,
                end_time=end,
                created=due - timedelta(minutes=5),
                lease_expires=now + timedelta(days=1) if running else None,
            )
        runs.append(row)
        states += _history(row)
    return runs, states


def _history(run: dict[str, Any]) -> list[dict[str, Any]]:
    steps = [("SCHEDULED", run["created"])]
    if run.get("start_time"):
        steps += [
            ("PENDING", run["start_time"] - timedelta(seconds=1)),
            ("RUNNING", run["start_time"]),
        ]
    if run.get("end_time"):
        steps.append((run["state"], run["end_time"]))
    return [{"flow_run_id": run["id"], "type": t, "timestamp": at} for t, at in steps]


def _task_runs(run: dict[str, Any]) -> list[dict[str, Any]]:
    start, end = run["start_time"], run["end_time"]
    step = (end - start) / 30
    return [
        {
            "id": uuid.uuid4(),
            "flow_run_id": run["id"],
            "name": f"task-{i}",
            "task_key": f"flows.task_{i % 5}",
            "state": "COMPLETED",
            "start_time": start + step * i,
            "end_time": start + step * (i + 1),
        }
        for i in range(30)
    ]


def _logs(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"flow_run_id": run["id"], "message": f"line {i}", "timestamp": run["start_time"]}
        for i in range(200)
    ]


def time_pages(sites: list[tuple[str, dict[str, str]]]) -> list[dict[str, list[float]]]:
    """Each page of each site (base URL, pages by name), the sites in turn request by
    request; the seconds each request took, by site and page."""
    clients = [httpx.Client(base_url=url, timeout=60.0, trust_env=False) for url, _ in sites]
    seconds: list[dict[str, list[float]]] = [{} for _ in sites]
    try:
        for name in sites[0][1]:
            for _ in range(WARMUP):
                for http, (_, pages) in zip(clients, sites, strict=True):
                    http.get(pages[name]).raise_for_status()
            for _ in range(REQUESTS):
                for site, (http, (_, pages)) in enumerate(zip(clients, sites, strict=True)):
                    began = time.perf_counter()
                    http.get(pages[name]).raise_for_status()
                    seconds[site].setdefault(name, []).append(time.perf_counter() - began)
    finally:
        for http in clients:
            http.close()
    return seconds


def measure(work: Path) -> dict[int, dict[str, list[float]]]:
    """Seed a database of each size, start a server on each, and time their pages."""
    sites = []
    for runs in SIZES:
        home = work / f"home-{runs}"
        home.mkdir()
        began = time.perf_counter()
        sites.append((home, seed(home, runs)))
        print(f"  seeded {runs:,} runs in {time.perf_counter() - began:.1f} s")
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running_server(DOCKYARD, home)) for home, _ in sites]
        urls = [server.api_url.removesuffix("/api") for server in servers]
        timed = time_pages([(url, pages) for url, (_, pages) in zip(urls, sites, strict=True)])
    return dict(zip(SIZES, timed, strict=True))


def main() -> int:
    print(f"UI pages: server time per page (ms), {REQUESTS} requests each after {WARMUP}")
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-ui-") as tmp:
        try:
            results = measure(Path(tmp))
        except Exception as exc:
            print(f"  failed: {exc}")
            return 1
    small, large = SIZES
    print(f"  {'page':<20} {small:>9,} runs p50 / p99 {large:>9,} runs p50 / p99  ratio p50")
    for name in results[small]:
        a, b = results[small][name], results[large][name]
        a50, a99, b50, b99 = (percentile(v, q) * 1e3 for v in (a, b) for q in (50, 99))
        print(
            f"  {name:<20} {a50:>13.1f} / {a99:6.1f} {b50:>15.1f} / {b99:6.1f}  {b50 / a50:8.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
