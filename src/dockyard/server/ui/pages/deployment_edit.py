"""Edit a deployment (description, tags, default parameters, job variables, concurrency
limit) and delete one.

The form goes through ``flows.update_deployment``, as ``PATCH /api/deployments/ID`` does,
in a transaction rolled back when anything was refused, so its own refusals and the API's
show together. Default parameters get the custom run's form (:mod:`.custom_run`), checked
against the parameter schema except for ``required``: a run may give a value left empty.
A value equal to the flow's own default is not stored unless the deployment stored it
already, so saving the form unchanged changes nothing. Deleting asks first, naming what
goes with the deployment.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.schemas import StateType as S
from dockyard.server.errors import ApiError
from dockyard.server.models import flows, schedules
from dockyard.server.tables import AutomationRow, DeploymentRow, FlowRunRow
from dockyard.server.ui import forms, rendering
from dockyard.server.ui.pages.deployments import read_deployment
from dockyard.server.ui.pages.pool_edit import count
from dockyard.server.ui.web import UI, Form, Posted, Ui, redirect

router = APIRouter(include_in_schema=False)

PARAM_PREFIX = "param."
FORM_FIELDS = ("description", "tags", "parameters", "job_variables", "concurrency_limit")


@dataclass
class DeploymentForm:
    """What was typed, and what was wrong with it (parameter errors by parameter key)."""

    description: str = ""
    tags: str = ""
    parameters: str = "{}"  # the JSON box of a deployment without a parameter schema
    job_variables: str = "{}"
    concurrency_limit: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # the parameters' form
    typed: dict[str, str | None] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    param_errors: dict[str, str] = field(default_factory=dict)

    @property
    def problems(self) -> int:
        return len(self.errors) + len(self.param_errors)


def _field_of(where: str) -> str:
    return forms.form_field(where, FORM_FIELDS)


async def _show(
    ui: Ui, deployment_id: uuid.UUID, form: DeploymentForm | None, status: int = 200
) -> Response:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
    schema = deployment.parameter_schema
    if form is None:
        form = DeploymentForm(
            description=deployment.description or "",
            tags=", ".join(deployment.tags),
            parameters=rendering.pretty_json(deployment.parameters),
            job_variables=rendering.pretty_json(deployment.job_variables),  # masked
            concurrency_limit=""
            if deployment.concurrency_limit is None
            else str(deployment.concurrency_limit),
            values={**forms.defaults(schema), **deployment.parameters},
        )
    fields = []
    if forms.has_inputs(schema):
        fields = forms.build(
            schema, form.values, PARAM_PREFIX, form.param_errors, form.typed, nested=True
        )
    return ui.page(
        "deployments/edit.html", status=status, deployment=deployment, form=form, fields=fields
    )


@router.get("/deployments/{deployment_id}/edit")
async def edit_deployment_form(deployment_id: uuid.UUID, ui: UI) -> Response:
    forms.admin_only(ui)
    return await _show(ui, deployment_id, None)


@router.post("/deployments/{deployment_id}/edit")
async def edit_deployment(deployment_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        stored = dict(row.parameters)
        schema = dict(row.parameter_schema)
    form, values = _read(posted, schema, stored)
    body = forms.checked(schemas.DeploymentUpdate, values, form.errors, _field_of)
    # a form refused already still goes through the API's checks of what it could read
    check = body or forms.partial(schemas.DeploymentUpdate, values, form.errors, _field_of)

    async def work(session: AsyncSession) -> None:
        row = await read_deployment(session, deployment_id)
        if check is not None:
            try:
                await flows.update_deployment(session, row, check)
            except ApiError as exc:
                forms.api_refusal(exc, form.errors, _field_of)
        if form.problems or body is None:
            raise forms.Refused

    try:
        await ui.db.write_retrying(work)
    except forms.Refused:
        return await _show(ui, deployment_id, form, status=422)
    return redirect(f"/deployments/{deployment_id}?done=saved")


def _read(
    posted: Form, schema: dict[str, Any], stored: dict[str, Any]
) -> tuple[DeploymentForm, dict[str, Any]]:
    """The form as typed, and the request body's values that could be read."""
    form = DeploymentForm(
        description=posted.get("description").strip(),
        tags=posted.get("tags"),
        parameters=posted.get("parameters"),
        job_variables=posted.get("job_variables"),
        concurrency_limit=posted.get("concurrency_limit").strip(),
    )
    values: dict[str, Any] = {"description": form.description, "tags": forms.tag_list(form.tags)}
    parameters = _parameters(posted, form, schema, stored)
    if parameters is not None:
        values["parameters"] = parameters
    job_variables = forms.json_object(form.job_variables, "job_variables", form.errors)
    if job_variables is not None:
        values["job_variables"] = job_variables
    limit = forms.whole_number(form.concurrency_limit, "concurrency_limit", form.errors)
    if "concurrency_limit" not in form.errors:
        values["concurrency_limit"] = limit  # None: no limit
    return form, values


def _parameters(
    posted: Form, form: DeploymentForm, schema: dict[str, Any], stored: dict[str, Any]
) -> dict[str, Any] | None:
    if not forms.has_inputs(schema):
        return forms.json_object(form.parameters, "parameters", form.errors)
    form.typed = posted.section(PARAM_PREFIX, forms.paths(schema, nested=True, inputs_only=True))
    form.values = forms.read(schema, form.typed, form.param_errors, nested=True)
    forms.validate(forms.loose(schema), form.values, form.param_errors, nested=True)
    defaults = forms.defaults(schema)
    own = set(schema["properties"])
    kept = {k: v for k, v in stored.items() if k not in own}  # not in the schema: no input
    changed = {
        k: v for k, v in form.values.items() if k in stored or k not in defaults or v != defaults[k]
    }
    return {**kept, **changed}


# ---------------------------------------------------------------- delete


@dataclass(frozen=True)
class DeploymentCascade:
    """What deleting a deployment takes with it."""

    schedules: int
    automations: int
    waiting_runs: int  # SCHEDULED: cancelled
    other_runs: int  # keep their history


async def deployment_cascade(session: AsyncSession, row: DeploymentRow) -> DeploymentCascade:
    mine = FlowRunRow.deployment_id == row.id
    automations = await session.scalar(
        select(func.count()).select_from(AutomationRow).where(AutomationRow.deployment_id == row.id)
    )
    return DeploymentCascade(
        schedules=len(await schedules.of_deployment(session, row.id)),
        automations=int(automations or 0),
        waiting_runs=await count(session, mine, FlowRunRow.state == S.SCHEDULED),
        other_runs=await count(session, mine, FlowRunRow.state != S.SCHEDULED),
    )


@router.get("/deployments/{deployment_id}/delete")
async def delete_deployment_page(deployment_id: uuid.UUID, ui: UI) -> Response:
    forms.admin_only(ui)
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
        cascade = await deployment_cascade(session, row)
    return ui.page("deployments/delete.html", deployment=deployment, cascade=cascade)


@router.post("/deployments/{deployment_id}/delete")
async def delete_deployment(deployment_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    async def work(session: AsyncSession) -> None:
        await flows.delete_deployment(session, await read_deployment(session, deployment_id))

    await ui.db.write_retrying(work)
    return redirect("/deployments")
