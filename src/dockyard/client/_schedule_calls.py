"""The API's calls on deployment schedules.

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from dockyard import schemas
from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import Id, seg

SCHEDULES = TypeAdapter(list[schemas.Schedule])


def list_schedules(deployment_id: Id) -> Call[list[schemas.Schedule]]:
    """The schedules of a deployment."""
    return Call("GET", f"/deployments/{seg(deployment_id)}/schedules", p.many(SCHEDULES))


def create_schedule(deployment_id: Id, schedule: schemas.ScheduleCreate) -> Call[schemas.Schedule]:
    """Add a schedule to a deployment; the server makes its runs at once."""
    path = f"/deployments/{seg(deployment_id)}/schedules"
    return Call("POST", path, p.one(schemas.Schedule), body=p.body(schedule))


def update_schedule(
    deployment_id: Id, schedule_id: Id, update: schemas.ScheduleUpdate
) -> Call[schemas.Schedule]:
    """Pause (``active=False``) or resume a schedule; a paused one's waiting runs go."""
    path = f"/deployments/{seg(deployment_id)}/schedules/{seg(schedule_id)}"
    return Call("PATCH", path, p.one(schemas.Schedule), body=p.patch(update))


def delete_schedule(deployment_id: Id, schedule_id: Id) -> Call[None]:
    """Delete a schedule and its runs that have not started."""
    path = f"/deployments/{seg(deployment_id)}/schedules/{seg(schedule_id)}"
    return Call("DELETE", path, p.nothing)
