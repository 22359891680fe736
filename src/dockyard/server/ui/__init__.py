"""The web UI: server-rendered pages (Jinja2) with htmx for the parts that update live.

Pages read and write the database directly through ``dockyard.server.models``, with the same
validation as the API. Nothing of the UI is imported when the server starts: the UI's app is
built at its first request, and Jinja2 is imported when the first page is rendered.
See docs/ui.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.datastructures import State

    from dockyard.settings import Settings

__all__ = ["mount"]


class LazyUi:
    """An ASGI app that builds the UI (:func:`dockyard.server.ui.app.build`) when first called."""

    def __init__(self, state: State, settings: Settings) -> None:
        self.state = state
        self.settings = settings
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None:
            from dockyard.server.ui.app import build

            self.app = build(self.state, self.settings)
        await self.app(scope, receive, send)


def mount(app: FastAPI, settings: Settings) -> None:
    """Serve the UI at ``/`` on ``app``; routes added to ``app`` before this one win (``/api``)."""
    app.mount("/", LazyUi(app.state, settings), name="ui")
