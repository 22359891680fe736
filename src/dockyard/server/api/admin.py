"""Health, readiness and version.

- ``GET /api/health`` always answers 200 while the process runs, and says whether the
  database answers a ``SELECT 1`` within :data:`CHECK_SECONDS` and, on PostgreSQL, whether
  this process's LISTEN connection is up (``status`` is ``degraded`` otherwise). A liveness
  probe: an outage of the database is no reason to restart the server.
- ``GET /api/ready`` is for load balancers: 200 when the database answers and its schema is
  at this server's revision, 503 with ``Retry-After`` otherwise, so traffic goes to other
  replicas meanwhile.

Both need no API key (``security.OPEN_PATHS``) and cost one short query.
"""

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dockyard import schemas
from dockyard._version import __version__
from dockyard.server.api.deps import DB, Config
from dockyard.server.errors import RETRY_AFTER_SECONDS
from dockyard.server.migrations import HEAD_REVISION

router = APIRouter(tags=["admin"])
CHECK_SECONDS = 2.0


class ListenerHealth(BaseModel):
    """This process's LISTEN connection (PostgreSQL): up or not, since when, and how many
    times it reconnected since the server started."""

    connected: bool
    since: datetime
    reconnects: int


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    database_error: str | None = None
    listener: ListenerHealth | None = None


class Readiness(BaseModel):
    ready: Literal[True]
    detail: str


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": schemas.ErrorBody,
        "description": "The database does not answer, or its schema is not at this server's "
        "revision: try another replica, or again after Retry-After seconds",
    }
}


@router.get("/health")
async def health(db: DB) -> Health:
    error = None
    try:
        await db.ping(CHECK_SECONDS)
    except Exception as exc:  # whatever it is, the answer is "unreachable", and why
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    state = db.listener
    listener = None
    if state is not None:
        listener = ListenerHealth(
            connected=state.connected, since=state.since, reconnects=state.reconnects
        )
    ok = error is None and (listener is None or listener.connected)
    return Health(
        status="ok" if ok else "degraded",
        database="ok" if error is None else "unreachable",
        database_error=error,
        listener=listener,
    )


@router.get("/ready", response_model=Readiness, responses=NOT_READY)
async def ready(db: DB) -> Readiness | JSONResponse:
    try:
        revision = await db.revision(CHECK_SECONDS)
    except Exception as exc:
        return _not_ready(f"the database does not answer ({type(exc).__name__}: {exc})")
    if revision != HEAD_REVISION:
        return _not_ready(
            f"the database's schema is at revision {revision!r}, this server needs "
            f"{HEAD_REVISION!r}: a server starting on it migrates it"
        )
    return Readiness(ready=True, detail="the database answers and its schema is current")


def _not_ready(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": f"not ready: {detail}; retry after {RETRY_AFTER_SECONDS} s"},
        status_code=503,
        headers={"retry-after": str(RETRY_AFTER_SECONDS)},
    )


@router.get("/version")
async def version(settings: Config) -> schemas.ServerVersion:
    return schemas.ServerVersion(
        server_version=__version__,
        api_version=schemas.API_VERSION,
        lease_seconds=settings.lease_seconds,
    )
