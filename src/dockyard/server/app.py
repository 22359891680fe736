"""The ASGI application: the REST API under /api (and the UI at /)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from dockyard._version import __version__
from dockyard.server import errors, scheduler, security, services, ui
from dockyard.server.api import (
    admin,
    deployments,
    dispatch,
    flow_runs,
    flows,
    records,
    work_pools,
)
from dockyard.server.db import Database
from dockyard.server.models import runs
from dockyard.settings import Settings


def create_app(settings: Settings, *, bind_host: str = "127.0.0.1") -> FastAPI:
    """Build the app. The database is opened (and migrated) when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.effective_database_url)
        await db.start()
        app.state.db = db
        reaper = asyncio.create_task(
            services.reaper_loop(
                db,
                interval=min(2.0, settings.lease_seconds / 5),
                grace=settings.lease_seconds,
            )
        )
        scheduling = asyncio.create_task(scheduler.scheduler_loop(db, settings))
        try:
            yield
        finally:
            for task in (reaper, scheduling):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await db.dispose()

    app = FastAPI(
        title="Dockyard",
        version=__version__,
        openapi_url="/api/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    runs.LATE_AFTER = timedelta(seconds=settings.late_threshold_seconds)
    errors.install(app)
    for module in (admin, flows, deployments, flow_runs, records, work_pools, dispatch):
        app.include_router(module.router, prefix="/api")
    ui.mount(app, settings)  # after the API: its routes match first
    if settings.server_api_key:
        app.add_middleware(security.ApiKey, key=settings.server_api_key)
    app.add_middleware(
        security.HostAllowList,
        allowed=security.allowed_hosts(bind_host, settings.server_allowed_hosts),
    )
    return app
