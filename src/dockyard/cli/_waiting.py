"""Why a deployment's due runs wait, as ``deployment ls`` tells it.

Computed here from the deployment, its pool and queue, and the runs alive now, with the
rules the server claims by (docs/states.md): paused things are skipped, a pool needs a
worker, a served deployment its serve process, and limits count live runs.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dockyard._states import ACTIVE_STATES

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import Deployment, FlowRun, WorkPool, WorkQueue

__all__ = ["Facts", "gather", "waiting", "why"]

LIVE = sorted(ACTIVE_STATES)
RUNS_READ = 1000


@dataclass
class Facts:
    """What the reasons are computed from."""

    pools: dict[str, WorkPool] = field(default_factory=dict)
    queues: dict[tuple[str, str], WorkQueue] = field(default_factory=dict)
    due: Counter[uuid.UUID] = field(default_factory=Counter)
    live_deployment: Counter[uuid.UUID] = field(default_factory=Counter)
    live_pool: Counter[str] = field(default_factory=Counter)
    live_queue: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count_live(self, runs: list[FlowRun]) -> None:
        for run in runs:
            if run.deployment_id is not None:
                self.live_deployment[run.deployment_id] += 1
            if run.work_pool_name:
                self.live_pool[run.work_pool_name] += 1
                if run.work_queue_name:
                    self.live_queue[(run.work_pool_name, run.work_queue_name)] += 1


def gather(client: Client, deployments: list[Deployment], *, every: bool = False) -> Facts:
    """Read what :func:`waiting` and :func:`why` need about ``deployments``.

    Pools, queues and live runs are read for the deployments with due runs, or for all of
    them with ``every``.
    """
    facts = Facts()
    now = datetime.now(UTC)
    wanted = {d.id for d in deployments}
    for run in client.list_flow_runs(state=["SCHEDULED"], limit=RUNS_READ):
        due = run.scheduled_start is None or run.scheduled_start <= now
        if due and run.deployment_id in wanted:
            facts.due[run.deployment_id] += 1
    if not facts.due and not every:
        return facts
    facts.count_live(client.list_flow_runs(state=LIVE, limit=RUNS_READ))
    pools = {
        d.work_pool_name for d in deployments if d.work_pool_name and (every or facts.due[d.id])
    }
    for pool in client.list_work_pools(limit=1000):
        if pool.name in pools:
            facts.pools[pool.name] = pool
            for queue in client.list_work_queues(pool.name):
                facts.queues[(pool.name, queue.name)] = queue
    return facts


def waiting(deployment: Deployment, facts: Facts) -> str:
    """``3 runs waiting: <why>``, or "" when none of its runs is due."""
    count = facts.due[deployment.id]
    if not count:
        return ""
    runs = "1 run" if count == 1 else f"{count} runs"
    return f"{runs} waiting: {why(deployment, facts)}"


def why(d: Deployment, facts: Facts) -> str:
    """Why runs of ``d`` that are due would wait now."""
    if d.paused:
        return "the deployment is paused"
    blocked = _pool_why(d, facts) if d.work_pool_name else _served_why(d)
    if blocked:
        return blocked
    live = facts.live_deployment[d.id]
    if d.concurrency_limit is not None and live >= d.concurrency_limit:
        return f"its concurrency limit is reached ({live}/{d.concurrency_limit} running)"
    return _limits_why(d, facts) or "waiting for a worker with a free slot"


def _served_why(d: Deployment) -> str:
    if str(d.status) != "READY":
        return "its serve process is not running (start it again: flow.serve(...))"
    return ""


def _pool_why(d: Deployment, facts: Facts) -> str:
    name = d.work_pool_name or ""
    pool = facts.pools.get(name)
    if pool is None:
        return f"work pool '{name}' is gone"
    if pool.paused:
        return f"work pool '{name}' is paused (dockyard work-pool resume {name})"
    queue = facts.queues.get((name, d.work_queue_name or ""))
    if queue is not None and queue.paused:
        resume = f"dockyard work-queue resume {queue.name} --pool {name}"
        return f"work queue '{queue.name}' is paused ({resume})"
    if str(pool.status) != "READY":
        return f"no worker is online for work pool '{name}' (dockyard worker start --pool {name})"
    return ""


def _limits_why(d: Deployment, facts: Facts) -> str:
    name = d.work_pool_name or ""
    pool = facts.pools.get(name)
    if pool is not None and pool.concurrency_limit is not None:
        live = facts.live_pool[name]
        if live >= pool.concurrency_limit:
            return (
                f"work pool '{name}' is at its concurrency limit ({live}/{pool.concurrency_limit})"
            )
    queue = facts.queues.get((name, d.work_queue_name or ""))
    if queue is not None and queue.concurrency_limit is not None:
        live = facts.live_queue[(name, queue.name)]
        if live >= queue.concurrency_limit:
            return (
                f"work queue '{queue.name}' is at its concurrency limit "
                f"({live}/{queue.concurrency_limit})"
            )
    return ""
