"""Server replicas on one PostgreSQL database: a lost LISTEN connection comes back, and the
scheduler's pass is done by one replica at a time."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from _support import RunningServer, wait_until
from dockyard import schemas
from dockyard.server import leadership, scheduler
from dockyard.server.automations import evaluation
from dockyard.server.db import Database
from dockyard.server.models import flows, pools
from dockyard.server.notify import CHANNEL, wake
from dockyard.server.tables import FlowRunRow
from dockyard.settings import Settings

POLL = 25  # the claim's wait, shorter than the server's long-poll limit (30 s)
LEASE = 30.0  # the server's default lease: a claim's time is lease_expires minus it


def _terminate_listener(database_url: str, pid: int) -> int:
    """Terminate the backend of process ``pid``'s LISTEN on the runs' channel; return how
    many backends were terminated."""
    import asyncpg

    url = make_url(database_url).set(drivername="postgresql")

    async def terminate() -> int:
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            return len(
                await conn.fetch(
                    # its last query is the LISTEN, or the listener's liveness check
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1",
                    f"dockyard listen {CHANNEL} pid {pid}",
                )
            )
        finally:
            await conn.close()

    return asyncio.run(terminate())


def _listener(server: RunningServer) -> dict[str, Any]:
    with server.http() as http:
        answer = http.get("/health")
    assert answer.status_code == 200, answer.text
    listener: dict[str, Any] = answer.json()["listener"]
    return listener


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_lost_listen_connection_comes_back_and_wakes_claims(server_factory) -> None:
    a, b = server_factory(), server_factory()
    assert _listener(b)["connected"] is True
    assert _terminate_listener(b.database_url, b.process.pid) == 1
    reconnected = wait_until(
        lambda: (state := _listener(b))["connected"] and state["reconnects"] >= 1 and state,
        30,
        "replica B's listener to reconnect",
    )
    assert reconnected["reconnects"] == 1

    with a.http() as first, b.http(timeout=POLL + 10) as second:
        assert first.post("/work-pools", json={"name": "pool", "type": "process"}).is_success
        body = {"flow_name": "f", "name": "d", "work_pool_name": "pool"}
        deployment = first.post("/deployments", json=body).json()["id"]
        answers: list[httpx.Response] = []
        request = {"worker_name": "w", "work_pool_name": "pool", "limit": 1, "wait": POLL}
        claiming = threading.Thread(
            target=lambda: answers.append(second.post("/workers/claim", json=request))
        )
        claiming.start()
        try:
            # the claim's first look found nothing once its worker exists: it is waiting
            workers = wait_until(
                lambda: first.get("/work-pools/pool/workers").json(), 30, "the claim to wait"
            )
            run = first.post(f"/deployments/{deployment}/runs", json={}).json()
        finally:
            claiming.join()
    assert answers[0].status_code == 200, answers[0].text
    claimed = answers[0].json()
    assert [c["flow_run"]["id"] for c in claimed] == [run["id"]]
    # woken before its poll ended: without a wake-up the claim would have looked again only
    # at its end, POLL seconds after its worker's first look
    claimed_at = _time(claimed[0]["flow_run"]["lease_expires"]) - timedelta(seconds=LEASE)
    assert claimed_at < _time(workers[0]["created"]) + timedelta(seconds=POLL)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_change_in_one_pool_wakes_that_pools_claims_on_every_replica(
    replicas: tuple[Database, Database],
) -> None:
    """The NOTIFY names the pool: the other replica wakes the claims waiting on that pool
    and every waiter on no pool (a paused engine, a concurrency slot), not those on other
    pools; a change of anything else wakes everyone."""
    first, second = replicas
    pool, other = uuid.uuid4(), uuid.uuid4()
    mine, theirs, anyone = (
        second.notifier.arm(pool),
        second.notifier.arm(other),
        second.notifier.arm(),
    )
    async with first.write() as session:
        wake(session, pool)
    await asyncio.wait_for(mine.wait(), 10)
    assert anyone.is_set() and not theirs.is_set()

    async with first.write() as session:
        wake(session)  # no pool: everyone
    await asyncio.wait_for(theirs.wait(), 10)


# ---------------------------------------------------------------- one scheduler at a time


@pytest.fixture
async def replicas(db_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two databases on one URL: the state two server processes would hold."""
    first, second = Database(db_url), Database(db_url)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


async def _scheduled_deployment(db: Database) -> None:
    async with db.write() as session:
        await pools.create_pool(session, schemas.WorkPoolCreate(name="pool", type="process"))
    async with db.write() as session:
        body = schemas.DeploymentCreate(
            flow_name="f", name="d", work_pool_name="pool", schedules=[{"interval": 3600}]
        )
        await flows.upsert_deployment(session, body)


async def _runs(db: Database) -> tuple[int, int]:
    """(runs, distinct slots)"""
    async with db.read() as session:
        total = await session.scalar(select(func.count(FlowRunRow.id)))
        slots = await session.scalar(select(func.count(func.distinct(FlowRunRow.idempotency_key))))
    return int(total or 0), int(slots or 0)


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_one_replica_schedules_while_another_holds_the_lock(
    replicas: tuple[Database, Database],
) -> None:
    first, second = replicas
    settings = Settings(scheduler_max_runs=5)
    await _scheduled_deployment(first)
    async with first.write() as holding:
        assert await leadership.try_lead(holding, leadership.Job.SCHEDULE)
        # the other replica's pass skips while this transaction holds the lock
        assert await scheduler.schedule_runs(second, settings) == 0
        assert await _runs(second) == (0, 0)
    made = await asyncio.gather(
        scheduler.schedule_runs(first, settings), scheduler.schedule_runs(second, settings)
    )
    again = await scheduler.schedule_runs(second, settings)
    assert sum(made) + again == 5
    assert await _runs(first) == (5, 5)  # no slot has two runs


async def test_sqlite_always_leads(tmp_path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}")
    await db.start()
    try:
        async with db.write() as session:
            assert await leadership.try_lead(session, leadership.Job.SCHEDULE)
    finally:
        await db.dispose()


def test_every_job_has_its_own_key() -> None:
    keys = [int(job) for job in leadership.Job]
    assert len(set(keys)) == len(keys)
    assert evaluation.ADVISORY_KEY == leadership.Job.EVALUATE
