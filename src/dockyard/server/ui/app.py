"""The UI as an ASGI app of its own, built at its first request (see ``mount``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from starlette.datastructures import State
from starlette.staticfiles import StaticFiles

from dockyard.server.ui import web
from dockyard.server.ui.auth import Guard
from dockyard.server.ui.pages import (
    artifacts,
    auth_pages,
    automations,
    concurrency_limits,
    custom_run,
    dashboard,
    deployment_edit,
    deployments,
    flows,
    pool_create,
    pool_edit,
    pools,
    queue_forms,
    run_list,
    run_logs,
    runs,
    schedule_forms,
    secrets,
    task_runs,
    variables,
    worker_forms,
)
from dockyard.settings import Settings

STATIC = Path(__file__).parent / "static"


def build(state: State, settings: Settings) -> FastAPI:
    """The UI's pages and static files; ``state`` is the server app's (its database)."""
    ui = FastAPI(
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(web.stored_text_only)],
    )
    ui.state = state
    state.ui_guard = Guard.from_api_key(settings.server_api_key, getattr(state, "api_keys", None))
    web.install(ui)
    ui.mount("/static", StaticFiles(directory=STATIC), name="static")
    ui.include_router(auth_pages.router)
    # the create form's route comes before the pool pages' `/work-pools/{name}`
    pages = (dashboard, pool_create, pools, custom_run, deployments, run_list, run_logs, runs)
    more = (task_runs, flows, variables, secrets, artifacts, concurrency_limits, automations)
    # the edit forms' routes come before `/work-pools/{name}/{tab}` and the like
    editing = (pool_edit, queue_forms, worker_forms, deployment_edit, schedule_forms)
    for module in (*editing, *pages, *more):
        ui.include_router(module.router)
    return ui
