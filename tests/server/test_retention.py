"""Retention: final runs that ended before the cutoff go, with their logs, task runs and
states; recent runs and runs that have not ended stay, however old; artifacts stay unlinked;
old evaluated events go. Deletes run in batches, and a server sweeps when it starts.

Rows are written straight into the database (a run cannot be made old through the API).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from _support import ServerFactory, wait_until
from dockyard.server import retention
from dockyard.server.db import Database
from dockyard.server.tables import (
    ArtifactRow,
    EventRow,
    FlowRow,
    FlowRunRow,
    FlowRunStateRow,
    LogRow,
    TaskRunRow,
    utcnow,
)
from dockyard.settings import Settings

NOW = utcnow()
OLD = NOW - timedelta(days=40)
CUTOFF = NOW - timedelta(days=30)
BATCH = 10  # small, so that a few dozen rows take several batches
LOGS_PER_RUN = 3


async def _seed(db: Database, runs: dict[str, tuple[str, datetime | None]]) -> dict[str, uuid.UUID]:
    """One flow and a run per entry (name -> state, end), each with states, a task run,
    logs and an artifact. Returns the runs' ids by name."""
    ids = {name: uuid.uuid4() for name in runs}
    flow_id = uuid.uuid4()
    rows: list[tuple[Any, list[dict[str, Any]]]] = [
        (FlowRow, [{"id": flow_id, "name": "f", "slug": "f"}]),
        (
            FlowRunRow,
            [
                {"id": ids[n], "name": n, "flow_id": flow_id, "state": s, "end_time": end}
                | {"created": OLD}
                for n, (s, end) in runs.items()
            ],
        ),
        (
            FlowRunStateRow,
            [
                {"flow_run_id": i, "type": t, "timestamp": OLD}
                for i in ids.values()
                for t in ("SCHEDULED", "RUNNING")
            ],
        ),
        (
            TaskRunRow,
            [
                {"id": uuid.uuid4(), "flow_run_id": i, "name": "t", "state": "COMPLETED"}
                for i in ids.values()
            ],
        ),
        (
            LogRow,
            [
                {"flow_run_id": i, "message": f"line {n}", "timestamp": OLD}
                for i in ids.values()
                for n in range(LOGS_PER_RUN)
            ],
        ),
        (
            ArtifactRow,
            [{"id": uuid.uuid4(), "type": "markdown", "flow_run_id": i} for i in ids.values()],
        ),
    ]
    async with db.write() as session:
        for table, values in rows:
            await session.execute(insert(table), values)
    return ids


async def _count(db: Database, table: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)))


async def test_old_final_runs_go_with_what_belongs_to_them(db: Database) -> None:
    recent = NOW - timedelta(days=1)
    old_final = {
        f"old-{n}": (("COMPLETED", "FAILED", "CANCELLED", "CRASHED")[n % 4], OLD) for n in range(25)
    }
    kept = {
        "recent": ("COMPLETED", recent),
        "running": ("RUNNING", None),
        "scheduled": ("SCHEDULED", None),
        # not final, whatever its end says (a paused run's old end, say)
        "paused": ("PAUSED", OLD),
    }
    ids = await _seed(db, old_final | kept)
    gone = [ids[name] for name in old_final]
    async with db.write() as session:  # a sub-run still running, of an old run
        table = FlowRunRow.__table__
        await session.execute(
            update(table).where(table.c.id == ids["running"]).values(parent_flow_run_id=gone[0])
        )

    swept = await retention.sweep(db, CUTOFF, batch=BATCH)

    assert (swept.runs, swept.task_runs, swept.logs) == (25, 25, 25 * LOGS_PER_RUN)
    for table, column in (
        (FlowRunRow, FlowRunRow.id),
        (FlowRunStateRow, FlowRunStateRow.flow_run_id),
        (TaskRunRow, TaskRunRow.flow_run_id),
        (LogRow, LogRow.flow_run_id),
        (ArtifactRow, ArtifactRow.flow_run_id),
    ):
        assert await _count(db, table, column.in_(gone)) == 0, table.__tablename__
    survivors = [ids[name] for name in kept]
    assert await _count(db, FlowRunRow, FlowRunRow.id.in_(survivors)) == len(kept)
    assert await _count(db, LogRow, LogRow.flow_run_id.in_(survivors)) == len(kept) * LOGS_PER_RUN
    assert (
        await _count(db, FlowRunStateRow, FlowRunStateRow.flow_run_id.in_(survivors))
        == len(kept) * 2
    )
    assert await _count(db, TaskRunRow) == len(kept)
    # every artifact stays; those of the deleted runs are unlinked
    assert await _count(db, ArtifactRow) == len(ids)
    assert await _count(db, ArtifactRow, ArtifactRow.flow_run_id.is_(None)) == 25
    # the sub-run stays, without its parent
    running = FlowRunRow.id == ids["running"]
    assert await _count(db, FlowRunRow, running, FlowRunRow.parent_flow_run_id.is_(None)) == 1
    # a second pass finds nothing
    assert not await retention.sweep(db, CUTOFF, batch=BATCH)


async def test_old_evaluated_events_go_in_batches(db: Database) -> None:
    def event(n: int, occurred: datetime, position: int | None) -> dict[str, Any]:
        resource = {"dockyard.resource.id": f"r{n}"}
        return {
            "event": "e",
            "resource_id": f"r{n}",
            "resource": resource,
            "occurred": occurred,
            "position": position,
        }

    rows = [event(n, OLD, n) for n in range(23)]
    rows += [event(100, NOW, 100), event(101, OLD, None)]  # recent; not evaluated yet
    async with db.write() as session:
        await session.execute(insert(EventRow), rows)

    assert await retention.delete_events_before(db, CUTOFF, batch=BATCH) == 23
    async with db.read() as session:
        left = set(await session.scalars(select(EventRow.resource_id)))
    assert left == {"r100", "r101"}


def test_events_are_never_kept_longer_than_runs() -> None:
    assert retention.events_kept(Settings()) == timedelta(hours=168)
    assert retention.events_kept(Settings(retention_days=2)) == timedelta(days=2)
    assert retention.events_kept(Settings(retention_days=30)) == timedelta(hours=168)
    assert retention.run_cutoff(Settings()) is None
    assert retention.run_cutoff(Settings(retention_days=1), NOW) == NOW - timedelta(days=1)


def test_a_server_with_retention_deletes_old_runs_when_it_starts(
    server_factory: ServerFactory, db_url: str
) -> None:
    async def seed() -> dict[str, uuid.UUID]:
        database = Database(db_url)
        try:
            await database.migrate()
            return await _seed(database, {"old": ("COMPLETED", OLD), "recent": ("COMPLETED", NOW)})
        finally:
            await database.dispose()

    ids = asyncio.run(seed())
    server = server_factory(DOCKYARD_RETENTION_DAYS="30")
    with server.http() as http:

        def old_gone() -> bool:
            return http.get(f"/flow-runs/{ids['old']}").status_code == 404

        wait_until(old_gone, 30, "the old run to be deleted")
        assert http.get(f"/flow-runs/{ids['recent']}").status_code == 200
        logs = http.get("/logs", params={"flow_run_id": str(ids["recent"])}).json()
        assert len(logs) == LOGS_PER_RUN


def test_zero_keeps_everything_and_negative_is_refused() -> None:
    from dockyard.settings import InvalidSetting, parse

    assert parse("retention_days", "0") == 0
    assert parse("retention_days", "0.5") == 0.5
    with pytest.raises(InvalidSetting, match="0 \\(off\\) or a positive number"):
        parse("retention_days", "-1", "env")
