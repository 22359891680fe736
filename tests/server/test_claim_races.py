"""Claims racing cancels, catch-up and other claims: forced interleavings on a real database.

These tests run the server's own code in this process against real SQLite and PostgreSQL, so
that a test can stop a claim between its read and its write and commit a cancel right
there. A history is valid when each step is allowed by ``orchestration.ALLOWED``.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server import dispatch, orchestration
from dockyard.server.api import dispatch as dispatch_api
from dockyard.server.db import Database
from dockyard.server.models import flows, pools, runs
from dockyard.server.tables import DeploymentRow, FlowRunRow, FlowRunStateRow, utcnow
from dockyard.settings import Settings

LEASE = 30.0


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    await database.start()
    try:
        yield database
    finally:
        await database.dispose()


async def _seed(db: Database, runs_wanted: int = 1, **deployment: Any) -> list[uuid.UUID]:
    async with db.write() as session:
        await pools.create_pool(session, schemas.WorkPoolCreate(name="pool", type="process"))
    async with db.write() as session:
        body = schemas.DeploymentCreate(
            flow_name="f", name="d", work_pool_name="pool", **deployment
        )
        row = await flows.upsert_deployment(session, body)
        made = [
            await runs.create_deployment_run(session, row, schemas.DeploymentRunCreate())
            for _ in range(runs_wanted)
        ]
        return [run.id for run in made]


async def _claim(
    db: Database, limit: int = 10, worker: str = "w", **body: Any
) -> list[schemas.ClaimedRun]:
    request = schemas.ClaimRequest(worker_name=worker, work_pool_name="pool", limit=limit, **body)

    async def work(session: Any) -> list[schemas.ClaimedRun]:
        return (await dispatch.claim(session, request, lease_seconds=LEASE)).runs

    return await db.write_retrying(work)


async def _cancel(db: Database, run_id: uuid.UUID) -> None:
    async def work(session: Any) -> None:
        orchestration.cancel(session, await runs.read_run(session, run_id, lock=True))

    await db.write_retrying(work)


async def _history(db: Database, run_id: uuid.UUID) -> list[str]:
    async with db.read() as session:
        rows = await session.scalars(
            select(FlowRunStateRow.type)
            .where(FlowRunStateRow.flow_run_id == run_id)
            .order_by(FlowRunStateRow.id)
        )
        return list(rows)


def forbidden(history: list[str]) -> list[tuple[str, str]]:
    """The steps of a run's history that the state rules do not allow."""
    return [
        (before, after)
        for before, after in itertools.pairwise(history)
        if S(after) not in orchestration.ALLOWED[S(before)]
    ]


def _between_read_and_write(
    monkeypatch: pytest.MonkeyPatch, step: Callable[[], Awaitable[None]]
) -> None:
    """Run ``step`` once inside the next claim, after it chose its runs, before it binds them."""
    bind = dispatch._bind
    done = False

    async def hooked(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        if not done:
            done = True
            await step()
        return await bind(*args, **kwargs)

    monkeypatch.setattr(dispatch, "_bind", hooked)


async def test_a_cancel_committed_during_a_claim_is_never_overwritten(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel comes between the claim's read of its candidates and its write: either it
    waits for the claim (the run was locked) and then asks the claimed run to cancel, or it
    wins and the claim takes nothing. Never SCHEDULED → CANCELLED → PENDING."""
    (run_id,) = await _seed(db)
    cancelling: list[asyncio.Task[None]] = []

    async def cancel_now() -> None:
        task = asyncio.create_task(_cancel(db, run_id))
        cancelling.append(task)
        # give it every chance to commit before the claim writes (it cannot: it waits)
        await asyncio.wait([task], timeout=0.5)

    _between_read_and_write(monkeypatch, cancel_now)
    claimed = await _claim(db)
    await cancelling[0]
    history = await _history(db, run_id)
    assert forbidden(history) == [], history
    assert history in (["SCHEDULED", "PENDING", "CANCELLING"], ["SCHEDULED", "CANCELLED"])
    assert bool(claimed) == (history[-1] == "CANCELLING")


async def test_a_write_decided_from_a_stale_state_loses(db: Database) -> None:
    """The compare-and-set itself: a run changed after it was read cannot be overwritten by
    what was decided from the old state (the loser's transaction fails and rolls back)."""
    from sqlalchemy.orm.exc import StaleDataError

    (run_id,) = await _seed(db)
    async with db.read() as session:
        stale = await session.get(FlowRunRow, run_id)
        assert stale is not None and stale.state == S.SCHEDULED
        await _cancel(db, run_id)  # committed meanwhile by another transaction
        with pytest.raises(StaleDataError):
            async with db.write() as writer:
                mine = await writer.merge(stale, load=False)
                orchestration.grant_lease(mine, LEASE)
                orchestration.record(writer, mine, S.PENDING, "claimed from a stale read")
    assert await _history(db, run_id) == ["SCHEDULED", "CANCELLED"]


async def test_catch_up_never_cancels_a_run_a_claim_holds(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catch-up (the scheduler's, which holds no pool lock) running while a claim holds a
    run it is about to take leaves that run alone."""
    from dockyard.server.scheduler import apply_catchup

    (run_id,) = await _seed(db, max_lateness_seconds=1)
    async with db.write() as session:
        run = await session.get(FlowRunRow, run_id)
        assert run is not None
        run.scheduled_start = utcnow() - timedelta(minutes=5)
    catching_up: list[asyncio.Task[Any]] = []

    async def catch_up_now() -> None:
        async def scheduler_pass() -> None:
            async with db.write() as session:
                await apply_catchup(session, utcnow() + timedelta(minutes=10))

        task = asyncio.create_task(scheduler_pass())
        catching_up.append(task)
        await asyncio.wait([task], timeout=0.5)

    # The claim's own catch-up must not cancel it first: a lateness bound it has not passed.
    async with db.write() as session:
        row = await session.get(FlowRunRow, run_id)
        assert row is not None
        row.scheduled_start = utcnow() - timedelta(milliseconds=10)
    _between_read_and_write(monkeypatch, catch_up_now)
    claimed = await _claim(db)
    await catching_up[0]
    history = await _history(db, run_id)
    assert forbidden(history) == [], history
    assert [c.flow_run.id for c in claimed] == [run_id]
    assert history == ["SCHEDULED", "PENDING"]


async def test_many_claims_and_cancels_at_once_keep_every_history_valid(db: Database) -> None:
    """Hundreds of claim/cancel pairs, all at once: no run is taken twice, none after it was
    cancelled, and no history holds a forbidden step."""
    run_ids = await _seed(db, runs_wanted=200)
    claims = [_claim(db, limit=5) for _ in range(60)]
    cancels = [_cancel(db, run_id) for run_id in run_ids[::2]]
    results = await asyncio.gather(*claims, *cancels)
    taken = [c.flow_run.id for batch in results[: len(claims)] for c in batch or []]
    assert len(taken) == len(set(taken))
    for run_id in run_ids:
        history = await _history(db, run_id)
        assert forbidden(history) == [], (run_id, history)
        assert (run_id in taken) == ("PENDING" in history), (run_id, history)


async def test_claims_without_limits_go_side_by_side_and_never_share_a_run(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no limit anywhere, claims on one pool hold its row together (FOR KEY SHARE on
    PostgreSQL): a claim stopped before it binds its run does not hold up the others, and
    FOR UPDATE SKIP LOCKED alone keeps any two from taking one run."""
    run_ids = await _seed(db, runs_wanted=40)
    await _claim(db, limit=1, worker="w")  # the pool is ready: no claim announces it now
    await _claim(db, limit=1, worker="other")
    if not db.is_sqlite:
        others: list[list[schemas.ClaimedRun]] = []

        async def others_claim_meanwhile() -> None:
            # on the pool-row lock they would wait for this claim; side by side they end
            claiming = _claim(db, limit=1, worker="other")
            others.append(await asyncio.wait_for(claiming, timeout=60))

        _between_read_and_write(monkeypatch, others_claim_meanwhile)
        first = await _claim(db, limit=1)
        assert len(first) == len(others[0]) == 1
        assert first[0].flow_run.id != others[0][0].flow_run.id
    batches = await asyncio.gather(*(_claim(db, limit=1, worker=f"w{n}") for n in range(60)))
    taken = [c.flow_run.id for batch in batches for c in batch]
    assert len(taken) == len(set(taken))
    async with db.read() as session:
        pending = await session.scalars(
            select(FlowRunStateRow.flow_run_id).where(FlowRunStateRow.type == "PENDING")
        )
        entered = list(pending)
    assert len(entered) == len(set(entered)) == len(run_ids)


@pytest.mark.parametrize("where", ["pool", "queue", "deployment"])
async def test_a_limit_set_while_unlimited_claims_are_in_flight_waits_for_them(
    db: Database, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """A claim that found no limit takes its run without counting. A limit of 1 set while
    it is in flight waits for it to commit (on PostgreSQL; SQLite has one writer), so the
    next claim counts its run and takes nothing: the limit is never exceeded."""
    await _seed(db, runs_wanted=3)

    async def set_limit(session: Any) -> None:
        if where == "pool":
            await pools.update_pool(session, "pool", schemas.WorkPoolUpdate(concurrency_limit=1))
        elif where == "queue":
            pool = await pools.read_pool(session, "pool")
            update = schemas.WorkQueueUpdate(concurrency_limit=1)
            await pools.update_queue(session, pool, "default", update)
        else:
            deployment = await session.scalar(select(DeploymentRow))
            update = schemas.DeploymentUpdate(concurrency_limit=1)
            await flows.update_deployment(session, deployment, update)

    setting: list[asyncio.Task[None]] = []

    async def limit_meanwhile() -> None:
        task = asyncio.create_task(db.write_retrying(set_limit))
        setting.append(task)
        await asyncio.wait([task], timeout=0.5)
        if not db.is_sqlite:
            assert not task.done(), "the limit was set while a claim that counted on none ran"

    _between_read_and_write(monkeypatch, limit_meanwhile)
    first = await _claim(db, limit=1)
    await setting[0]
    assert len(first) == 1
    assert await _claim(db, limit=1) == []


class _OpenServer:
    """The API keys of a server that needs none: claims carry no runner key."""

    async def with_runner_keys(self, claimed: list[schemas.ClaimedRun]) -> list[schemas.ClaimedRun]:
        return claimed


class _Request:
    """What the claim route reads of its request: whether the worker went away (never), and
    its app's API keys."""

    app = SimpleNamespace(state=SimpleNamespace(api_keys=_OpenServer()))

    async def is_disconnected(self) -> bool:
        return False


@pytest.mark.parametrize(
    "block",
    ["pool limit", "queue limit", "deployment limit", "paused deployment", "paused queue"],
)
async def test_a_long_poll_on_runs_it_cannot_take_does_not_spin(
    db: Database, monkeypatch: pytest.MonkeyPatch, block: str
) -> None:
    """Due runs that cannot be handed out (a limit reached, a pause) do not wake a waiting
    claim: it looks once, then waits for a change or its deadline."""
    await _seed(db, runs_wanted=3)
    async with db.write() as session:
        pool = await pools.read_pool(session, "pool")
        deployment = await flows.read_deployment_by_name(session, "f", "d")
        queue = await pools.read_queue(session, pool, "default")
        if block == "pool limit":
            pool.concurrency_limit = 0
        elif block == "queue limit":
            queue.concurrency_limit = 0
        elif block == "deployment limit":
            deployment.concurrency_limit = 1
        elif block == "paused deployment":
            deployment.paused = True
        else:
            queue.paused = True
    if block == "deployment limit":
        assert len(await _claim(db)) == 1  # its one slot is taken: the rest must wait
    looks = 0
    claim = dispatch.claim

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal looks
        looks += 1
        return await claim(*args, **kwargs)

    monkeypatch.setattr(dispatch, "claim", counted)
    body = schemas.ClaimRequest(worker_name="w", work_pool_name="pool", limit=5, wait=1.0)
    settings = Settings(long_poll_seconds=1.0)
    answer = await dispatch_api.claim(body, db, settings, _Request())  # type: ignore[arg-type]
    assert answer == []
    assert looks == 2  # when it came, and once more at its deadline: nothing in between


async def test_a_run_created_while_a_long_poll_looks_wakes_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run committed after the long-poll's look found nothing, before it began to wait,
    must wake it: it arms its wake-up before it looks. (Waiting only for wake-ups after the
    look, it slept out its whole wait: here 300 s, caught by the guard below.)"""
    await _seed(db, runs_wanted=0)
    look = db.write_retrying
    looks = 0

    async def create_a_run_after_the_first_look(work: Any) -> Any:
        nonlocal looks
        looks += 1
        answer = await look(work)
        if looks == 1:
            async with db.write() as session:
                row = (await session.scalars(select(DeploymentRow))).one()
                await runs.create_deployment_run(session, row, schemas.DeploymentRunCreate())
        return answer

    monkeypatch.setattr(db, "write_retrying", create_a_run_after_the_first_look)
    request = schemas.ClaimRequest(worker_name="w", work_pool_name="pool", limit=1, wait=300)
    claimed = await asyncio.wait_for(
        dispatch_api.claim(request, db, Settings(long_poll_seconds=300), _Request()),  # type: ignore[arg-type]
        timeout=60,
    )
    assert len(claimed) == 1 and looks == 2


async def test_runs_of_another_pool_do_not_wake_a_waiting_claim(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiting claim is woken by changes in its own pool (or of everything), not by runs
    made in the others: a fleet across many pools pays one claim per worker of the pool a
    run lands in. (Woken by every run, it looked again once per run made below.)"""
    await _seed(db, runs_wanted=0)
    async with db.write() as session:
        await pools.create_pool(session, schemas.WorkPoolCreate(name="idle", type="process"))
    look = db.write_retrying
    looks = 0

    async def counted(work: Any) -> Any:
        nonlocal looks
        looks += 1
        return await look(work)

    monkeypatch.setattr(db, "write_retrying", counted)
    request = schemas.ClaimRequest(worker_name="w", work_pool_name="idle", limit=1, wait=3)
    waiting = asyncio.create_task(
        dispatch_api.claim(request, db, Settings(long_poll_seconds=3), _Request())  # type: ignore[arg-type]
    )
    while looks == 0:
        await asyncio.sleep(0.01)
    for _ in range(5):  # runs in the pool "pool"
        async with db.write() as session:
            row = (await session.scalars(select(DeploymentRow))).one()
            await runs.create_deployment_run(session, row, schemas.DeploymentRunCreate())
        await asyncio.sleep(0.1)
    assert await waiting == []
    # the first look (its pool unknown, it waits on any change: the first run wakes it), the
    # look after that wake-up, and the last at its deadline; not one per run
    assert looks <= 3, looks


async def test_a_transaction_postgres_ended_for_a_deadlock_is_tried_again(db: Database) -> None:
    """PostgreSQL ends one of two deadlocked transactions (SQLSTATE 40P01): rolled back
    whole, it is tried again like a lost race, never answered with a 500."""
    from sqlalchemy.exc import DBAPIError

    class Deadlock(Exception):
        sqlstate = "40P01"

    tries = 0

    async def work(session: Any) -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise DBAPIError("UPDATE flow_runs …", None, Deadlock("deadlock detected"))
        return "done"

    assert await db.write_retrying(work) == "done" and tries == 2

    async def broken(session: Any) -> None:
        raise DBAPIError("SELECT …", None, Exception("syntax error"))

    with pytest.raises(DBAPIError):  # anything else is not retried
        await db.write_retrying(broken)
