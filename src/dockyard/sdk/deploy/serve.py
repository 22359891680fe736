"""``serve()``: one process registers deployments and runs their runs in subprocesses.

No work pool and no separate worker: the serving process claims its deployments' runs with
the same long-poll claims as a worker (filtered to its deployments), heartbeats like one
(its deployments are READY while it does), and starts each run as a subprocess running the
engine. It is a process worker built with ``deployment_ids`` instead of a pool, so stopping
it works the same: Ctrl-C stops claiming, hands back runs not yet started, and leaves
started runs to finish under their own lease.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

from dockyard import settings as settings_module
from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from dockyard import schemas
    from dockyard.sdk.deploy.deployments import Deployment
    from dockyard.settings import Settings

__all__ = ["serve"]

DEFAULT_API_URL = settings_module.Settings.api_url


def serve(*deployments: Deployment, limit: int | None = None) -> None:
    """Serve deployments: register them, then run their runs here until Ctrl-C.

    ::

        from dockyard import flow, serve

        serve(etl.to_deployment("nightly"), report.to_deployment("weekly"), limit=4)

    When no server answers at the API URL and that URL is on this machine (by default
    ``http://127.0.0.1:4200/api``), a server is started for the time of the call.

    Args:
        deployments: made with ``flow.to_deployment(name, ...)``.
        limit: most runs at once (default: no limit).

    Raises:
        DockyardError: no deployment given, or one with a work pool (use ``deploy`` for it).
        ServerUnreachable: no server answers at a URL on another machine.
        InvalidInput: the server refused a deployment.
    """
    from dockyard.sdk.deploy.local_server import ensure_server

    if not deployments:
        raise DockyardError("serve() needs at least one deployment: flow.to_deployment(name)")
    pooled = [d.full_name for d in deployments if d.work_pool_name]
    if pooled:
        raise DockyardError(
            f"serve() runs deployments without a work pool; {', '.join(pooled)} has one "
            "(deploy it with flow.deploy(...) and start a worker instead)"
        )
    if limit is not None and limit < 1:
        raise DockyardError(f"limit must be at least 1, got {limit}")
    settings = settings_module.load()
    with ensure_server(settings):
        _serve(settings, deployments, limit)


def _serve(settings: Settings, deployments: tuple[Deployment, ...], limit: int | None) -> None:
    from dockyard.client import Client
    from dockyard.sdk.deploy.deployments import register
    from dockyard.workers.process import ProcessWorker

    with Client(api_url=settings.api_url, api_key=settings.api_key) as client:
        client.check_compatible()
        registered = register(client, deployments)
    _announce(settings, registered)
    worker = ProcessWorker(
        deployment_ids=[d.id for d in registered], limit=limit, settings=settings
    )
    worker.run()


def _announce(settings: Settings, registered: list[schemas.Deployment]) -> None:
    from dockyard.sdk.deploy.deployments import quoted
    from dockyard.sdk.deploy.local_server import ui_url

    names = [f"{d.flow_name}/{d.name}" for d in registered]
    print(f"Serving {len(names)} deployment(s): {', '.join(names)}")
    env = ""
    if settings.api_url != DEFAULT_API_URL:
        env = f"DOCKYARD_API_URL={shlex.quote(settings.api_url)} "
    print("Trigger a run with:")
    for name in names:
        print(f"    {env}dockyard deployment run {quoted(name)}")
    print(f"UI: {ui_url(settings.api_url)}  (Ctrl-C stops serving)", flush=True)
