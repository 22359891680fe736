"""Artifacts: what runs publish for people (Markdown, tables, links, progress, images).

Each artifact has an id; one with a key is a version of that key, and ``/artifacts/latest``
answers the newest version of each key.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import _names
from dockyard.schemas.artifacts import Artifact, ArtifactCreate, ArtifactType, ArtifactUpdate
from dockyard.server.api.deps import DB, PARAMETERS, PARAMETERS_REFUSED, Limit, Offset
from dockyard.server.models import artifacts
from dockyard.server.openapi import answers

router = APIRouter(
    prefix="/artifacts", tags=["artifacts"], dependencies=[PARAMETERS], responses=PARAMETERS_REFUSED
)

KeyFilter = Annotated[
    str | None,
    Query(max_length=_names.MAX_ARTIFACT_KEY, description="Only the versions of this key."),
]
KeyPrefix = Annotated[
    str | None,
    Query(max_length=_names.MAX_ARTIFACT_KEY, description="Only keys that start with this."),
]
TypeFilter = Annotated[ArtifactType | None, Query(description="Only artifacts of this type.")]


@router.post("", status_code=201)
async def create_artifact(body: ArtifactCreate, db: DB) -> Artifact:
    """Create an artifact: with a ``key``, the newest version of that key (the older ones
    are kept). A ``flow_run_id`` that names no run answers 422."""

    async def work(session: AsyncSession) -> Artifact:
        return artifacts.artifact_schema(await artifacts.create_artifact(session, body))

    # a run deleted between the check and the insert fails the foreign key; the retry then
    # finds no run and answers 422
    return await db.write_retrying(work)


@router.get("")
async def list_artifacts(
    db: DB,
    key: KeyFilter = None,
    key_prefix: KeyPrefix = None,
    flow_run_id: Annotated[uuid.UUID | None, Query(description="Only this run's.")] = None,
    task_run_id: Annotated[uuid.UUID | None, Query(description="Only this task run's.")] = None,
    type: TypeFilter = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[Artifact]:
    """Artifacts newest first, every version (``key=K``: the history of K)."""
    async with db.read() as session:
        rows = await artifacts.list_artifacts(
            session,
            key=key,
            key_prefix=key_prefix,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            type=type,
            limit=limit,
            offset=offset,
        )
        return [artifacts.artifact_schema(row) for row in rows]


@router.get("/latest")
async def list_latest_artifacts(
    db: DB,
    key_prefix: KeyPrefix = None,
    type: TypeFilter = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> list[Artifact]:
    """The latest version of each key, most recently updated first (artifacts without a
    key are not listed; ``type`` filters on the latest version's type)."""
    async with db.read() as session:
        rows = await artifacts.list_latest(
            session, key_prefix=key_prefix, type=type, limit=limit, offset=offset
        )
        return [artifacts.artifact_schema(row) for row in rows]


@router.get("/latest/{key}")
async def read_latest_artifact(key: str, db: DB) -> Artifact:
    """The latest version of ``key``."""
    async with db.read() as session:
        return artifacts.artifact_schema(await artifacts.read_latest(session, key))


@router.delete("/key/{key}", status_code=204)
async def delete_artifact_key(key: str, db: DB) -> Response:
    """Delete every version of ``key``."""
    await db.write_retrying(lambda session: artifacts.delete_key(session, key))
    return Response(status_code=204)


# An id in a path is matched as a UUID, so that "/artifacts/latest" is never read as an id
# (a PATCH of it answers 405, not a 422 about a malformed id); a path that is no UUID is 404.
@router.get("/{artifact_id:uuid}")
async def read_artifact(artifact_id: uuid.UUID, db: DB) -> Artifact:
    async with db.read() as session:
        return artifacts.artifact_schema(await artifacts.read_artifact(session, artifact_id))


@router.patch("/{artifact_id:uuid}", responses=answers(409))
async def update_artifact(artifact_id: uuid.UUID, body: ArtifactUpdate, db: DB) -> Artifact:
    """Change a progress artifact in place (its progress, its description); any other type
    answers 409: create a new version of its key instead."""

    async def work(session: AsyncSession) -> Artifact:
        row = await artifacts.update_artifact(session, artifact_id, body)
        return artifacts.artifact_schema(row)

    return await db.write_retrying(work)


@router.delete("/{artifact_id:uuid}", status_code=204)
async def delete_artifact(artifact_id: uuid.UUID, db: DB) -> Response:
    """Delete one artifact (one version of its key)."""
    await db.write_retrying(lambda session: artifacts.delete_artifact(session, artifact_id))
    return Response(status_code=204)
