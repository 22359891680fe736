"""Automations: the list (trigger, actions, enabled, last result) with the form that creates
one from a YAML or JSON spec, enable/disable and delete; and the recent events, which are
what triggers see.

The API's own checks decide (``AutomationCreate``, then the model's); a refusal is shown
next to the spec, and the text typed is kept.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from dockyard.schemas.events import AutomationCreate
from dockyard.server.errors import ApiError
from dockyard.server.models import automations, events
from dockyard.server.ui.web import UI, Posted, Ui, found, redirect

router = APIRouter(include_in_schema=False)

EXAMPLE = """name: etl-failing
trigger:
  expect: [dockyard.flow-run.Failed]
  match_related:
    dockyard.resource.role: deployment
    dockyard.resource.name: etl
  threshold: 3
  within: 600
actions:
  - type: call-webhook
    url: https://hooks.example.com/dockyard
"""
NOTICES = {"created": "Automation created.", "deleted": "Automation deleted."}
EVENTS_SHOWN = 100


async def _list_page(ui: Ui, spec: str = "", error: str = "", status: int = 200) -> Response:
    async with ui.db.read() as session:
        rows = await automations.list_automations(session, limit=500)
        shown = [await automations.automation_schema(session, row) for row in rows]
    return ui.page(
        "automations/list.html",
        status=status,
        automations=shown,
        spec=spec,
        example=EXAMPLE,
        error=error,
        open_form=status != 200 or ui.request.query_params.get("new") == "1",
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
    )


@router.get("/automations")
async def automation_list(ui: UI) -> Response:
    return await _list_page(ui)


@router.post("/automations")
async def create_automation(ui: UI, posted: Posted) -> Response:
    spec = posted.get("spec")
    error = ""
    try:
        body = AutomationCreate(**_parse(spec))
        await ui.db.write_retrying(lambda session: automations.create_automation(session, body))
    except _Refused as exc:
        error = str(exc)
    except ValidationError as exc:
        error = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    except ApiError as exc:
        field = exc.extra.get("field")
        error = f"{field}: {exc.detail}" if field else exc.detail
    else:
        return redirect("/automations?done=created")
    return await _list_page(ui, spec, error, status=422)


class _Refused(ValueError):
    pass


def _parse(spec: str) -> dict[str, Any]:
    import yaml  # type: ignore[import-untyped]

    if not spec.strip():
        raise _Refused("enter the automation's spec as YAML or JSON (see the example)")
    try:
        data = yaml.safe_load(spec)
    except yaml.YAMLError as exc:
        raise _Refused(f"not valid YAML or JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _Refused("the spec must be a mapping with name, trigger and actions")
    return {str(key): value for key, value in data.items()}


@router.post("/automations/{automation_id}/enable")
async def enable(automation_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    return await _set(ui, automation_id, True)


@router.post("/automations/{automation_id}/disable")
async def disable(automation_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    return await _set(ui, automation_id, False)


async def _set(ui: Ui, automation_id: uuid.UUID, enabled: bool) -> Response:
    with found():
        await ui.db.write_retrying(
            lambda session: automations.set_enabled(session, str(automation_id), enabled)
        )
    return redirect("/automations")


@router.post("/automations/{automation_id}/delete")
async def delete(automation_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    with found():
        await ui.db.write_retrying(
            lambda session: automations.delete_automation(session, str(automation_id))
        )
    return redirect("/automations?done=deleted")


@router.get("/automations/events")
async def recent_events(ui: UI) -> Response:
    prefix = ui.request.query_params.get("event", "").strip()[:256]
    async with ui.db.read() as session:
        rows = await events.list_events(session, prefix=prefix or None, limit=EVENTS_SHOWN)
    return ui.page(
        "automations/events.html", events=[events.event_schema(r) for r in rows], prefix=prefix
    )
