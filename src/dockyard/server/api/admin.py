"""Health and version."""

from __future__ import annotations

from fastapi import APIRouter

from dockyard import schemas
from dockyard._version import __version__

router = APIRouter(tags=["admin"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/version")
async def version() -> schemas.ServerVersion:
    return schemas.ServerVersion(server_version=__version__, api_version=schemas.API_VERSION)
