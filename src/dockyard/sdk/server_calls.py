"""What the SDK's named objects (variables, secrets) share: the server calls to make, and
whether the caller is async code (then their methods return an awaitable)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = ["in_async_code", "server_api"]


def server_api() -> ServerApi:
    """The server calls: inside a run, to its server (sharing the run's connections);
    elsewhere, to the server the settings name."""
    from dockyard.sdk.api import ServerApi
    from dockyard.sdk.runtime.context import FLOW_RUN

    context = FLOW_RUN.get()
    if context is not None:
        settings = context.settings
    else:
        from dockyard.settings import load

        settings = load()
    return ServerApi(settings.api_url, settings.api_key)


def in_async_code() -> bool:
    """Whether the caller is async code: inside a run, an ``async def`` flow or task;
    elsewhere, a thread that runs an event loop."""
    from dockyard.sdk.runtime.context import TaskRunContext, get_run_context

    run = get_run_context()
    if run is not None:
        owner = run.task if isinstance(run, TaskRunContext) else run.flow
        return bool(owner.isasync)
    asyncio = sys.modules.get("asyncio")  # not imported: no loop can be running
    if asyncio is None:
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
