"""Health and version."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard import schemas
from dockyard._version import __version__
from dockyard.server.api.deps import Config

router = APIRouter(tags=["admin"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/version")
async def version(settings: Config) -> schemas.ServerVersion:
    return schemas.ServerVersion(
        server_version=__version__,
        api_version=schemas.API_VERSION,
        lease_seconds=settings.lease_seconds,
    )
