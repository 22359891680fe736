"""The ASGI application: the REST API under /api (and the UI at /)."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.routing import BaseRoute, Match, Mount, Route

from dockyard._version import __version__
from dockyard.server import api_docs, errors, openapi, retention, scheduler, security, services, ui
from dockyard.server import automations as automations_loops
from dockyard.server import metrics as server_metrics
from dockyard.server.access import Access, Keys
from dockyard.server.api import (
    admin,
    api_keys,
    artifacts,
    automations,
    concurrency_limits,
    deployments,
    dispatch,
    events,
    flow_runs,
    flows,
    records,
    secrets,
    variables,
    work_pools,
)
from dockyard.server.db import Database, PoolSize
from dockyard.server.encryption import Keyring
from dockyard.server.models import runs
from dockyard.server.notify import ListenerTimers
from dockyard.server.rate_limits import Buckets
from dockyard.settings import Settings

# The schemas build their validators when first used (defer_build: a faster start). FastAPI
# silences pydantic's warning that the alias it gives a body or parameter field has no
# effect on a validator it builds at once; one built later warns the same, as harmlessly.
warnings.filterwarnings(
    "ignore",
    message="The 'alias' attribute with value",
    category=UserWarning,
)


def create_app(settings: Settings, *, bind_host: str = "127.0.0.1") -> FastAPI:
    """Build the app. The database is opened (and migrated) when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(
            settings.effective_database_url,
            pool=PoolSize(
                settings.database_pool_size,
                settings.database_max_overflow,
                settings.database_pool_timeout_seconds,
                settings.database_statement_timeout_seconds,
            ),
            listener_timers=ListenerTimers(fallback=settings.server_listen_fallback_seconds),
        )
        await db.start()
        app.state.db = db
        app.state.metrics.watch(db)  # claims, lease expiries; runs by state at /metrics
        reaper = asyncio.create_task(
            services.reaper_loop(
                db,
                interval=min(2.0, settings.lease_seconds / 5),
                grace=settings.lease_seconds,
            )
        )
        scheduling = asyncio.create_task(scheduler.scheduler_loop(db, settings))
        retaining = asyncio.create_task(retention.retention_loop(db, settings))
        automation_loops = await automations_loops.start(db, settings)  # events, automations
        try:
            yield
        finally:
            for task in (reaper, scheduling, retaining):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await automation_loops.stop()
            await db.dispose()

    app = FastAPI(
        title="Dockyard",
        version=__version__,
        openapi_url=None,  # served by openapi.install: it follows the keys made
        docs_url=None,  # our own page below: FastAPI's loads its files from a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keyring = Keyring(settings)
    runs.LATE_AFTER = timedelta(seconds=settings.late_threshold_seconds)
    errors.install(app)
    routers = (admin, flows, deployments, flow_runs, records, work_pools, dispatch, variables)
    features = (secrets, artifacts, concurrency_limits, events, automations, api_keys)
    for module in (*routers, *features):
        app.include_router(module.router, prefix="/api")
    limited = settings.server_rate_limit_per_second > 0
    openapi.install(app, key_required=bool(settings.server_api_key), rate_limited=limited)
    app.router.routes.append(Route("/api/{rest:path}", ApiFallback(app.router.routes)))
    app.add_api_route("/docs", api_docs.docs_page(settings.server_api_key), include_in_schema=False)
    figures = server_metrics.install(app, cache_seconds=settings.server_metrics_cache_seconds)
    ui.mount(app, settings)  # after the API: its routes match first
    # the last added runs first: errors, Host header, key, then what a request may carry
    app.add_middleware(security.RequestGuard, max_body_bytes=settings.server_max_body_bytes)
    app.state.api_keys = Keys(app.state, settings.server_api_key)
    rate = settings.server_rate_limit_per_second
    buckets = Buckets(rate, settings.server_rate_limit_burst) if rate > 0 else None
    app.add_middleware(Access, keys=app.state.api_keys, routes=app.router.routes, buckets=buckets)
    app.add_middleware(
        security.HostAllowList,
        allowed=security.allowed_hosts(bind_host, settings.server_allowed_hosts),
    )
    # outside the guards, to time what they refuse too; inside the errors' answer, to see it
    app.add_middleware(server_metrics.HttpLatency, metrics=figures)
    app.add_middleware(errors.UnexpectedErrors)
    return app


class ApiFallback:
    """Answers a request under ``/api`` that no route took (the UI, mounted at ``/``, would
    otherwise): 405 with ``Allow`` when its path is a route's but not its method (``TRACE``,
    ``DELETE`` of a list), 404 when no route has its path."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.routes = routes

    async def __call__(self, scope: security.Scope, receive: Any, send: Any) -> None:
        # asked of the routes as they are, whatever FastAPI nests them in (its routes take
        # no HEAD: a HEAD answers 405 too)
        allowed = {
            method
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
            for route in self.routes
            if not isinstance(route, Mount)
            and getattr(route, "endpoint", None) is not self
            and route.matches({**scope, "method": method})[0] is Match.FULL
        }
        method, path = scope["method"], scope["path"]
        if allowed:
            listed = ", ".join(sorted(allowed))
            response = JSONResponse(
                {"detail": f"{path} does not take {method}; it takes {listed}"},
                status_code=405,
                headers={"allow": listed},
            )
        else:
            response = JSONResponse(
                {"detail": f"no API route at {path}: see the OpenAPI schema, /api/openapi.json"},
                status_code=404,
            )
        await response(scope, receive, send)
