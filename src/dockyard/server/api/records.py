"""Task runs and logs: written in batches, read with filters."""

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Limit, Offset
from dockyard.server.errors import Invalid, NotFound
from dockyard.server.tables import Base, FlowRunRow, LogRow, TaskRunRow, insert_for

router = APIRouter(
    tags=["task runs and logs"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)

# The most records one call writes (422 beyond, naming the limit): the engine sends task runs
# by 500 and log lines by 1000, a worker its runs' output by 500 lines. Their bytes are
# bounded by the server's request size limit (DOCKYARD_SERVER_MAX_BODY_BYTES, 413 beyond).
MAX_BATCH = 1000
TaskRunBatch = Annotated[list[schemas.TaskRunRecord], Field(max_length=MAX_BATCH)]
LogBatch = Annotated[list[schemas.LogCreate], Field(max_length=MAX_BATCH)]


async def _check_runs(session: Any, run_ids: set[uuid.UUID]) -> None:
    # FOR KEY SHARE (on PostgreSQL), the lock the foreign key itself takes: a run deleted
    # meanwhile waits for this write, and never turns it into a foreign key violation
    query = select(FlowRunRow.id).where(FlowRunRow.id.in_(run_ids))
    found = set(await session.scalars(query.with_for_update(read=True, key_share=True)))
    missing = run_ids - found
    if missing:
        raise Invalid(
            f"flow run(s) not found: {', '.join(sorted(map(str, missing)))}",
            field="flow_run_id",
        )


@router.post("/task-runs")
async def create_task_runs(body: TaskRunBatch, db: DB) -> dict[str, int]:
    """Upsert final task runs by id (a run sent twice is written once)."""
    if body:
        async with db.write() as session:
            await _check_runs(session, {r.flow_run_id for r in body})
            await _write_batch(session, TaskRunRow, body, upsert=True)
    return {"count": len(body)}


async def _write_batch(
    session: AsyncSession,
    table: type[Base],
    records: Sequence[schemas.Model],
    *,
    upsert: bool = False,
) -> None:
    """Insert ``records`` (models whose fields are columns of ``table``) in one executemany."""
    connection = await session.connection()
    sql, columns = _batch_statement(connection.dialect, table, type(records[0]), upsert)
    rows = [tuple([convert(getattr(r, name)) for name, convert in columns]) for r in records]
    await connection.exec_driver_sql(sql, rows)


@functools.cache
def _batch_statement(
    dialect: Any, table: type[Base], model: type[schemas.Model], upsert: bool
) -> tuple[str, list[tuple[str, Callable[[Any], Any]]]]:
    """The insert (or upsert by id) of ``model``'s fields into ``table``, compiled once for
    ``dialect``, with the fields its parameters take in order, each with the conversion its
    column's type makes for the database.

    This is what Core's executemany does for every row, less its bookkeeping per row (a
    batch of a thousand task runs, in process: 32 ms through Core, 29 ms like this).
    """
    stmt = insert_for(dialect.name)(table)
    if upsert:
        update = {name: stmt.excluded[name] for name in model.model_fields if name != "id"}
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=update)
    compiled = stmt.compile(dialect=dialect, column_keys=list(model.model_fields))
    columns = table.__table__.columns
    converters = []
    for name in compiled.positiontup or ():
        process = columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        converters.append((name, process or _same))
    return compiled.string, converters


def _same(value: Any) -> Any:
    return value


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
async def create_logs(body: LogBatch, db: DB) -> dict[str, int]:
    if not body:
        return {"count": 0}
    async with db.write() as session:
        await _check_runs(session, {r.flow_run_id for r in body})
        await _write_batch(session, LogRow, body)
    return {"count": len(body)}


@router.get("/logs")
async def read_logs(
    db: DB,
    flow_run_id: uuid.UUID | None = None,
    after_id: Annotated[schemas.NonNegativeInt64 | None, Query(strict=False)] = None,
    min_level: Annotated[schemas.Int32 | None, Query(strict=False)] = None,
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
