"""Task runs and logs: written in batches, read with filters."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from fastapi import APIRouter
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server.api.deps import DB, Limit, Offset
from dockyard.server.errors import Invalid, NotFound
from dockyard.server.tables import FlowRunRow, LogRow, TaskRunRow, insert_for

router = APIRouter(tags=["task runs and logs"])


async def _check_runs(session: Any, run_ids: set[uuid.UUID]) -> None:
    found = set(await session.scalars(select(FlowRunRow.id).where(FlowRunRow.id.in_(run_ids))))
    missing = run_ids - found
    if missing:
        raise Invalid(
            f"flow run(s) not found: {', '.join(sorted(map(str, missing)))}",
            field="flow_run_id",
        )


@router.post("/task-runs")
async def create_task_runs(body: list[schemas.TaskRunRecord], db: DB) -> dict[str, int]:
    if not body:
        return {"count": 0}
    rows = [record.model_dump() for record in body]
    async with db.write() as session:
        await _check_runs(session, {r.flow_run_id for r in body})
        await _executemany(session, _upsert_task_runs(db.is_sqlite), rows)
    return {"count": len(rows)}


@functools.cache
def _upsert_task_runs(is_sqlite: bool) -> Any:
    stmt = insert_for("sqlite" if is_sqlite else "postgresql")(TaskRunRow)
    table = TaskRunRow.__table__
    columns = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != "id"}
    return stmt.on_conflict_do_update(index_elements=["id"], set_=columns)


async def _executemany(session: AsyncSession, stmt: Any, rows: list[dict[str, Any]]) -> None:
    """One statement, executed for every row, on the session's connection: Core's
    executemany, without the ORM's per-row bookkeeping."""
    connection = await session.connection()
    await connection.execute(stmt, rows)


@router.get("/task-runs")
async def list_task_runs(
    db: DB, flow_run_id: uuid.UUID | None = None, limit: Limit = 1000, offset: Offset = 0
) -> list[schemas.TaskRun]:
    query = select(TaskRunRow).order_by(TaskRunRow.start_time, TaskRunRow.id)
    if flow_run_id:
        query = query.where(TaskRunRow.flow_run_id == flow_run_id)
    async with db.read() as session:
        rows = await session.scalars(query.limit(limit).offset(offset))
        return [schemas.TaskRun.model_validate(r) for r in rows]


@router.get("/task-runs/{task_run_id}")
async def read_task_run(task_run_id: uuid.UUID, db: DB) -> schemas.TaskRun:
    async with db.read() as session:
        row = await session.get(TaskRunRow, task_run_id)
        if row is None:
            raise NotFound(f"task run {task_run_id} not found")
        return schemas.TaskRun.model_validate(row)


@router.post("/logs")
async def create_logs(body: list[schemas.LogCreate], db: DB) -> dict[str, int]:
    if not body:
        return {"count": 0}
    async with db.write() as session:
        await _check_runs(session, {r.flow_run_id for r in body})
        await _executemany(session, _insert_logs(), [r.model_dump() for r in body])
    return {"count": len(body)}


@functools.cache
def _insert_logs() -> Any:
    return insert(LogRow)


@router.get("/logs")
async def read_logs(
    db: DB,
    flow_run_id: uuid.UUID | None = None,
    after_id: int | None = None,
    min_level: int | None = None,
    limit: Limit = 1000,
) -> list[schemas.Log]:
    query = select(LogRow).order_by(LogRow.id).limit(limit)
    if flow_run_id:
        query = query.where(LogRow.flow_run_id == flow_run_id)
    if after_id is not None:
        query = query.where(LogRow.id > after_id)
    if min_level is not None:
        query = query.where(LogRow.level >= min_level)
    async with db.read() as session:
        return [schemas.Log.model_validate(r) for r in await session.scalars(query)]
