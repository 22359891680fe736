"""The API's calls about artifacts (what runs publish: Markdown, tables, links, progress,
images).

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

import uuid

from pydantic import TypeAdapter

from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import Id, seg
from dockyard.schemas.artifacts import Artifact, ArtifactCreate, ArtifactType, ArtifactUpdate

ARTIFACTS = TypeAdapter(list[Artifact])


def create_artifact(artifact: ArtifactCreate) -> Call[Artifact]:
    """Create an artifact (with a key: the newest version of that key).

    Raises:
        InvalidInput: a value was refused (a key, the data's shape or size, a run that does
            not exist).
    """
    # not retried once sent: a retry of a creation that succeeded would add a version
    return Call("POST", "/artifacts", p.one(Artifact), body=p.body(artifact), idempotent=False)


def read_artifact(id: Id) -> Call[Artifact]:
    """Read an artifact by id.

    Raises:
        NotFound: no artifact has that id.
    """
    return Call("GET", f"/artifacts/{seg(id)}", p.one(Artifact))


def read_latest_artifact(key: str) -> Call[Artifact]:
    """Read the latest version of ``key``.

    Raises:
        NotFound: no artifact has that key.
    """
    return Call("GET", f"/artifacts/latest/{seg(key)}", p.one(Artifact))


def list_artifacts(
    *,
    key: str | None = None,
    key_prefix: str | None = None,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
    type: ArtifactType | str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Call[list[Artifact]]:
    """List artifacts newest first, every version; ``key`` gives the history of a key."""
    params = {
        "key": key,
        "key_prefix": key_prefix,
        "flow_run_id": str(flow_run_id) if flow_run_id else None,
        "task_run_id": str(task_run_id) if task_run_id else None,
        "type": ArtifactType(type).value if type else None,
        "limit": limit,
        "offset": offset,
    }
    return Call("GET", "/artifacts", p.many(ARTIFACTS), params=params)


def list_latest_artifacts(
    *,
    key_prefix: str | None = None,
    type: ArtifactType | str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Call[list[Artifact]]:
    """List the latest version of each key, most recently updated first."""
    params = {
        "key_prefix": key_prefix,
        "type": ArtifactType(type).value if type else None,
        "limit": limit,
        "offset": offset,
    }
    return Call("GET", "/artifacts/latest", p.many(ARTIFACTS), params=params)


def update_artifact(id: Id, update: ArtifactUpdate) -> Call[Artifact]:
    """Change a progress artifact: the fields set in ``update``.

    Raises:
        Conflict: the artifact is not a progress artifact.
    """
    return Call("PATCH", f"/artifacts/{seg(id)}", p.one(Artifact), body=p.patch(update))


def delete_artifact(id: Id) -> Call[None]:
    """Delete one artifact (one version of its key).

    Raises:
        NotFound: no artifact has that id.
    """
    return Call("DELETE", f"/artifacts/{seg(id)}", p.nothing)


def delete_artifact_key(key: str) -> Call[None]:
    """Delete every version of ``key``.

    Raises:
        NotFound: no artifact has that key.
    """
    return Call("DELETE", f"/artifacts/key/{seg(key)}", p.nothing)
