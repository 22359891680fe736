"""The API's calls about events and automations.

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

import uuid

from pydantic import TypeAdapter

from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import Id, seg
from dockyard.schemas import events as schemas

AUTOMATIONS = TypeAdapter(list[schemas.Automation])
# a long-poll's answer comes after its wait: the call waits that much longer
WAIT_MARGIN = 10.0


def emit_event(event: schemas.EventCreate) -> Call[schemas.Event]:
    """Emit an event (an ``id`` makes a retry harmless: the stored event is answered)."""
    idempotent = event.id is not None
    return Call("POST", "/events", p.one(schemas.Event), body=p.body(event), idempotent=idempotent)


def read_events(
    *,
    after: int | None = None,
    before: int | None = None,
    event: str | None = None,
    resource_id: str | None = None,
    wait: float = 0.0,
    limit: int = 100,
) -> Call[schemas.EventPage]:
    """Past events newest first; or, with ``after`` (a cursor), the events after it oldest
    first, waiting up to ``wait`` seconds for one. ``event``: a name prefix."""
    params = {
        "after": after,
        "before": before,
        "event": event,
        "resource_id": resource_id,
        "wait": wait or None,
        "limit": limit,
    }
    timeout = wait + WAIT_MARGIN if wait else None
    return Call("GET", "/events", p.one(schemas.EventPage), params=params, timeout=timeout)


def create_automation(automation: schemas.AutomationCreate) -> Call[schemas.Automation]:
    """Create an automation.

    Raises:
        Conflict: an automation has that name.
        InvalidInput: the spec is refused (the message names the field).
    """
    body = p.body(automation)
    return Call("POST", "/automations", p.one(schemas.Automation), body=body, idempotent=False)


def read_automation(name_or_id: Id) -> Call[schemas.Automation]:
    """Read an automation by name or id, with its latest action results."""
    return Call("GET", f"/automations/{seg(name_or_id)}", p.one(schemas.Automation))


def list_automations(*, limit: int = 200, offset: int = 0) -> Call[list[schemas.Automation]]:
    """List automations by name."""
    params = {"limit": limit, "offset": offset}
    return Call("GET", "/automations", p.many(AUTOMATIONS), params=params)


def replace_automation(
    name_or_id: Id, automation: schemas.AutomationCreate
) -> Call[schemas.Automation]:
    """Replace an automation whole."""
    path = f"/automations/{seg(name_or_id)}"
    return Call("PUT", path, p.one(schemas.Automation), body=p.body(automation))


def set_automation_enabled(name_or_id: Id, enabled: bool) -> Call[schemas.Automation]:
    """Enable or disable an automation."""
    body = {"enabled": enabled}
    return Call("PATCH", f"/automations/{seg(name_or_id)}", p.one(schemas.Automation), body=body)


def delete_automation(name_or_id: Id) -> Call[None]:
    """Delete an automation.

    Raises:
        NotFound: none has that name or id.
    """
    return Call("DELETE", f"/automations/{seg(name_or_id)}", p.nothing)


def set_deployment_automations(
    deployment_id: uuid.UUID, automations: list[schemas.AutomationCreate]
) -> Call[list[schemas.Automation]]:
    """Make these the deployment's own automations (its triggers), in place of its others."""
    body = [p.body(a) for a in automations]
    path = f"/deployments/{deployment_id}/automations"
    return Call("PUT", path, p.many(AUTOMATIONS), body=body)
