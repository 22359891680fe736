"""Automations: when a trigger fires, the server does the actions.

::

    from dockyard.automations import Automation
    from dockyard.events import EventTrigger
    from dockyard.events.actions import CallWebhook

    Automation(
        name="etl-keeps-failing",
        trigger=EventTrigger(
            expect={"dockyard.flow-run.Failed"},
            match_related={"dockyard.resource.role": "deployment", "dockyard.resource.name": "etl"},
            threshold=3,
            within=600,
        ),
        actions=[CallWebhook(url="https://hooks.example.com/dockyard")],
    ).create()

The server evaluates every event against the enabled automations, once (also with several
server processes), and does each action of a firing, retrying those that fail for now. See
docs/automations.md. Each method is one request to the server the settings name.
"""

from __future__ import annotations

import uuid

from dockyard.schemas.events import Automation as _Stored
from dockyard.schemas.events import AutomationCreate

__all__ = ["Automation"]


class Automation(AutomationCreate):
    """An automation: ``name``, ``trigger``, ``actions``, ``enabled``, ``description``;
    ``id`` once created or read."""

    id: uuid.UUID | None = None

    def create(self) -> Automation:
        """Create it on the server; return it with its id.

        Raises:
            Conflict: an automation has its name.
            InvalidInput: the server refused it (the message names the field).
        """
        from dockyard.client import Client

        with Client() as client:
            return _from(client.create_automation(self._spec()))

    def update(self) -> Automation:
        """Replace the stored automation (found by id, else by name) with this one."""
        from dockyard.client import Client

        with Client() as client:
            return _from(client.replace_automation(self.id or self.name, self._spec()))

    def delete(self) -> None:
        """Delete it (found by id, else by name)."""
        from dockyard.client import Client

        with Client() as client:
            client.delete_automation(self.id or self.name)

    def enable(self) -> Automation:
        return self._set_enabled(True)

    def disable(self) -> Automation:
        return self._set_enabled(False)

    @classmethod
    def read(cls, name_or_id: str | uuid.UUID) -> Automation:
        """Read an automation by name or id.

        Raises:
            NotFound: none has that name or id.
        """
        from dockyard.client import Client

        with Client() as client:
            return _from(client.read_automation(name_or_id))

    def _set_enabled(self, enabled: bool) -> Automation:
        from dockyard.client import Client

        with Client() as client:
            return _from(client.set_automation_enabled(self.id or self.name, enabled))

    def _spec(self) -> AutomationCreate:
        return AutomationCreate(**self.model_dump(exclude={"id"}))


def _from(stored: _Stored) -> Automation:
    return Automation(
        id=stored.id,
        name=stored.name,
        description=stored.description,
        enabled=stored.enabled,
        trigger=stored.trigger,
        actions=stored.actions,
    )
