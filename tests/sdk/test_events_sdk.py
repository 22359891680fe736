"""``dockyard.events`` and ``dockyard.automations`` against a real server: emitting events from
Python and from a flow (over the lean transport, no pydantic), and managing automations."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from pydantic import ValidationError

from _support import RunningServer, wait_until
from dockyard import flow
from dockyard.automations import Automation
from dockyard.events import DeploymentEventTrigger, EventTrigger, emit_event
from dockyard.events.actions import CallWebhook, PauseWorkPool
from dockyard.exceptions import Conflict, InvalidInput, NotFound

ID = "dockyard.resource.id"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_emit_events_and_manage_automations(tracked: RunningServer) -> None:
    event_id = emit_event(
        "acme.table.refreshed",
        resource={ID: "acme.table.orders"},
        payload={"rows": 12},
        related=[{ID: "acme.db.main", "dockyard.resource.role": "database"}],
    )

    @flow
    def refresher() -> str:
        return str(emit_event("acme.flow.said", resource={ID: "acme.from-a-flow"}))

    from_flow = uuid.UUID(refresher())
    with pytest.raises(ValueError, match=r"dockyard\.resource\.id"):
        emit_event("acme.x", resource={"name": "no id"})
    with pytest.raises(InvalidInput, match="server's own"):
        emit_event("dockyard.flow-run.Completed", resource={ID: "x"})

    with tracked.client() as client:

        def stored() -> set[uuid.UUID]:
            page = client.read_events(after=0, event="acme.")
            return {e.id for e in page.events} if len(page.events) == 2 else set()

        assert wait_until(stored, 30, "both events") == {event_id, from_flow}

    made = Automation(
        name="tables",
        trigger=EventTrigger(expect={"acme.table.*"}, threshold=2, within=60),
        actions=[CallWebhook(url="http://127.0.0.1:9/hook"), PauseWorkPool(work_pool_id=None)],
    ).create()
    assert made.id is not None and made.trigger.expect == ["acme.table.*"]
    with pytest.raises(Conflict, match="already exists"):
        Automation(
            name="tables", trigger=EventTrigger(), actions=[CallWebhook(url="http://x.y/z")]
        ).create()
    read = Automation.read("tables")
    assert read == made
    assert read.disable().enabled is False and Automation.read(made.id).enable().enabled is True
    made.delete()
    with pytest.raises(NotFound):
        Automation.read("tables")

    with pytest.raises(ValidationError, match="needs a window"):
        EventTrigger(expect={"acme.x"}, threshold=3)
    trigger = DeploymentEventTrigger(expect={"dockyard.flow-run.Completed"}, parameters={"n": 1})
    assert trigger.event_trigger().model_dump()["expect"] == ["dockyard.flow-run.Completed"]


def test_emitting_an_event_loads_no_pydantic() -> None:
    code = (
        "import sys; from dockyard.events import emit_event; "
        "assert 'pydantic' not in sys.modules and 'httpx' not in sys.modules, 'heavy'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
