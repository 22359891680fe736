"""Artifacts: what runs publish for people, each by id, and by key as versions.

Every create of a key adds a version; the key's latest is its newest version by creation
time (ties, which need two creates in one microsecond, go to the greater id). Only a
progress artifact changes in place.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard._names import artifact_key_problem
from dockyard.schemas.artifacts import Artifact, ArtifactCreate, ArtifactType, ArtifactUpdate
from dockyard.server.errors import Conflict, Invalid, NotFound
from dockyard.server.tables import ArtifactRow, FlowRunRow, utcnow

NEWEST_FIRST = (ArtifactRow.created.desc(), ArtifactRow.id.desc())


def artifact_schema(row: ArtifactRow) -> Artifact:
    return Artifact(
        id=row.id,
        key=row.key,
        type=ArtifactType(row.type),
        description=row.description,
        data=row.data,
        flow_run_id=row.flow_run_id,
        task_run_id=row.task_run_id,
        created=row.created,
        updated=row.updated,
    )


async def create_artifact(session: AsyncSession, body: ArtifactCreate) -> ArtifactRow:
    """Add an artifact (a new version of its key, if it has one)."""
    if body.flow_run_id is not None:
        await _check_run(session, body.flow_run_id)
    now = utcnow()
    row = ArtifactRow(
        key=body.key,
        type=body.type.value,
        description=body.description,
        data=body.data,
        flow_run_id=body.flow_run_id,
        task_run_id=body.task_run_id,
        created=now,
        updated=now,
    )
    session.add(row)
    await session.flush()
    return row


async def _check_run(session: AsyncSession, run_id: uuid.UUID) -> None:
    """Refuse a run that does not exist, rather than let the foreign key fail. FOR KEY SHARE
    (PostgreSQL) is the lock the key takes itself: a run deleted meanwhile waits for this."""
    query = select(FlowRunRow.id).where(FlowRunRow.id == run_id)
    if await session.scalar(query.with_for_update(read=True, key_share=True)) is None:
        raise Invalid(
            f"flow run {run_id} not found",
            field="flow_run_id",
            hint="name a run that exists, or leave flow_run_id out to store the artifact unlinked",
        )


async def read_artifact(session: AsyncSession, artifact_id: uuid.UUID) -> ArtifactRow:
    row = await session.get(ArtifactRow, artifact_id)
    if row is None:
        raise NotFound(
            f"artifact {artifact_id} not found", hint="list artifacts with `dockyard artifact ls`"
        )
    return row


def _unknown_key(key: str) -> NotFound:
    # a key that could never be created gets no advice to look for it
    problem = artifact_key_problem(key)
    return NotFound(
        f"no artifact has the key '{key}'",
        hint=f"{key!r} {problem}" if problem else "list keys with `dockyard artifact ls`",
    )


async def read_latest(session: AsyncSession, key: str) -> ArtifactRow:
    """The newest version of ``key``."""
    query = select(ArtifactRow).where(ArtifactRow.key == key).order_by(*NEWEST_FIRST).limit(1)
    row = await session.scalar(query)
    if row is None:
        raise _unknown_key(key)
    return row


async def list_artifacts(
    session: AsyncSession,
    *,
    key: str | None = None,
    key_prefix: str | None = None,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
    type: ArtifactType | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ArtifactRow]:
    """Artifacts newest first, those that match every filter given (all versions)."""
    query = select(ArtifactRow).order_by(*NEWEST_FIRST).limit(limit).offset(offset)
    if key is not None:
        query = query.where(ArtifactRow.key == key)
    if key_prefix:
        query = query.where(ArtifactRow.key.startswith(key_prefix, autoescape=True))
    if flow_run_id is not None:
        query = query.where(ArtifactRow.flow_run_id == flow_run_id)
    if task_run_id is not None:
        query = query.where(ArtifactRow.task_run_id == task_run_id)
    if type is not None:
        query = query.where(ArtifactRow.type == type.value)
    return list(await session.scalars(query))


def latest_query(
    *, key_prefix: str | None = None, type: ArtifactType | None = None
) -> Select[ArtifactRow]:
    """The latest version of each key (keys starting with ``key_prefix``; whose latest is of
    ``type``), most recently updated first."""
    rank = func.row_number().over(partition_by=ArtifactRow.key, order_by=NEWEST_FIRST)
    ranked = select(ArtifactRow.id, rank.label("rank")).where(ArtifactRow.key.is_not(None))
    if key_prefix:
        ranked = ranked.where(ArtifactRow.key.startswith(key_prefix, autoescape=True))
    newest = ranked.subquery()
    query = (
        select(ArtifactRow)
        .join(newest, newest.c.id == ArtifactRow.id)
        .where(newest.c.rank == 1)
        .order_by(ArtifactRow.updated.desc(), ArtifactRow.key)
    )
    if type is not None:
        query = query.where(ArtifactRow.type == type.value)
    return query


async def list_latest(
    session: AsyncSession,
    *,
    key_prefix: str | None = None,
    type: ArtifactType | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ArtifactRow]:
    query = latest_query(key_prefix=key_prefix, type=type).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def count_versions(session: AsyncSession, keys: list[str]) -> dict[str, int]:
    """How many versions each of ``keys`` has."""
    if not keys:
        return {}
    query = (
        select(ArtifactRow.key, func.count())
        .where(ArtifactRow.key.in_(keys))
        .group_by(ArtifactRow.key)
    )
    return {key: count for key, count in (await session.execute(query)).tuples() if key}


async def update_artifact(
    session: AsyncSession, artifact_id: uuid.UUID, body: ArtifactUpdate
) -> ArtifactRow:
    """Set the fields sent in ``body`` on a progress artifact (409 for other types)."""
    row = await read_artifact(session, artifact_id)
    if row.type != ArtifactType.PROGRESS:
        again = f" with the key '{row.key}'" if row.key else ""
        raise Conflict(
            f"artifact {artifact_id} is a {row.type} artifact: only a progress artifact "
            "changes in place",
            hint=f"create a new artifact{again} instead (its key keeps every version)",
        )
    if "data" in body.model_fields_set:
        if body.data is None:
            raise Invalid("the progress must be a number from 0 to 100, not null", field="data")
        row.data = body.data
    if "description" in body.model_fields_set:
        row.description = body.description
    row.updated = utcnow()
    await session.flush()
    return row


async def delete_artifact(session: AsyncSession, artifact_id: uuid.UUID) -> None:
    await session.delete(await read_artifact(session, artifact_id))


async def delete_key(session: AsyncSession, key: str) -> int:
    """Delete every version of ``key``; return how many there were (404 for none)."""
    result = await session.execute(delete(ArtifactRow).where(ArtifactRow.key == key))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count == 0:
        raise _unknown_key(key)
    return count
