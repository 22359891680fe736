"""Events: what happened to what, as the server records it, and the triggers that react.

::

    from dockyard.events import emit_event

    emit_event(
        "acme.table.refreshed",
        resource={"dockyard.resource.id": "acme.table.orders", "rows": "1200"},
        payload={"took": 3.2},
    )

The server emits ``dockyard.flow-run.<State>`` for every state change of a flow run
(``dockyard.flow-run.Completed``, ``.Failed``, ...), and ``dockyard.work-pool.ready`` /
``not-ready`` and ``dockyard.worker.ready`` / ``not-ready`` when those change. An
:class:`EventTrigger` says which events fire an automation (``dockyard.automations``); a
:class:`DeploymentEventTrigger` given to ``flow.deploy(triggers=[...])`` runs that
deployment. See docs/automations.md.

:func:`emit_event` is one request to the server (inside a flow run, over the run's own
connection: no HTTP library and no pydantic are imported for it). The trigger classes are
pydantic models, loaded when first named.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from dockyard.sdk.server_calls import server_api as _api

if TYPE_CHECKING:
    from dockyard.schemas.events import DeploymentEventTrigger, EventTrigger

__all__ = ["DeploymentEventTrigger", "EventTrigger", "emit_event"]

_LAZY = frozenset({"DeploymentEventTrigger", "EventTrigger"})


def emit_event(
    event: str,
    resource: dict[str, str],
    payload: dict[str, Any] | None = None,
    related: list[dict[str, str]] | None = None,
) -> uuid.UUID:
    """Emit an event; return its id.

    Args:
        event: its name, e.g. ``acme.table.refreshed`` (not starting with ``dockyard.``:
            those are the server's own).
        resource: labels of what it is about; ``dockyard.resource.id`` is required.
        payload: any JSON object (up to 64 KiB).
        related: label dicts of other resources it concerns, each with
            ``dockyard.resource.id`` and usually ``dockyard.resource.role``.

    Raises:
        ValueError: ``resource`` has no ``dockyard.resource.id``.
        InvalidInput: the server refused it (the message names the field).
        ServerUnreachable: no server answered.
    """
    if not isinstance(resource, dict) or not resource.get("dockyard.resource.id"):
        raise ValueError(
            "resource must have the label 'dockyard.resource.id' (what the event is about, "
            "e.g. {'dockyard.resource.id': 'acme.table.orders'})"
        )
    stored = _api().emit_event(event, resource, payload, related)
    return uuid.UUID(stored["id"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from dockyard.schemas import events

        return getattr(events, name)
    raise AttributeError(f"module 'dockyard.events' has no attribute {name!r}")
