"""A custom run of a deployment: a run name and tags, parameters (a form built from its
parameter schema: a pydantic model's fields get inputs of their own), job variables and a
start time. Every value is checked before the run is made; a bad one is shown next to its
field and nothing is created. A start time in the past asks first: the run would start at
once, already late.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard.server import masking
from dockyard.server.errors import ApiError
from dockyard.server.models import flows, runs
from dockyard.server.ui import forms, rendering
from dockyard.server.ui.pages.deployments import pool_template, read_deployment
from dockyard.server.ui.web import UI, Form, Posted, Ui, redirect

router = APIRouter(include_in_schema=False)
# the form's boxes, by the request field each fills
FORM_FIELDS = {
    "name": "run_name",
    "tags": "run_tags",
    "parameters": "parameters",
    "job_variables": "job_variables",
    "scheduled_start": "start",
}

PARAM_PREFIX = "param."
CONFIRM_PAST = "confirm_past"
# a start this close to now is "now" (the time it took to type it and press Run)
PAST_GRACE = timedelta(minutes=1)


@dataclass
class RunForm:
    """What was typed, and what was wrong with it (parameter errors by parameter key)."""

    values: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, str | None] | None = None
    parameters_text: str = ""
    job_variables: str = "{}"
    start: str = ""
    run_name: str = ""
    run_tags: str = ""
    past_start: datetime | None = None  # a start in the past, to be confirmed
    errors: dict[str, str] = field(default_factory=dict)
    param_errors: dict[str, str] = field(default_factory=dict)


async def _show(ui: Ui, deployment_id: uuid.UUID, form: RunForm | None, status: int) -> Response:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
        template = await pool_template(session, row)
    schema = deployment.parameter_schema
    first = form is None
    if form is None:
        values = {**forms.defaults(schema), **deployment.parameters}
        form = RunForm(values=values, parameters_text=rendering.pretty_json(deployment.parameters))
    fields = []
    if forms.has_inputs(schema):
        fields = forms.build(
            schema,
            form.values,
            PARAM_PREFIX,
            form.param_errors,
            form.typed,
            nested=True,
            defaults=first,
        )
    return ui.page(
        "deployments/run.html",
        status=status,
        deployment=deployment,
        form=form,
        fields=fields,
        deployment_job_variables=masking.mask_variables(deployment.job_variables, template),
    )


@router.get("/deployments/{deployment_id}/run")
async def custom_run_form(deployment_id: uuid.UUID, ui: UI) -> Response:
    return await _show(ui, deployment_id, None, 200)


@router.post("/deployments/{deployment_id}/run")
async def custom_run(deployment_id: uuid.UUID, ui: UI, posted: Posted) -> Response:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        schema, defaults = row.parameter_schema, dict(row.parameters)
    form, body, check = _read(posted, schema, defaults)

    async def work(session: AsyncSession) -> uuid.UUID:
        """Make the run; the API's checks run on what could be read even when the form has
        refusals (or a start to confirm) already, and then nothing is kept."""
        row = await read_deployment(session, deployment_id)
        run = None
        if check is not None:
            try:
                run = await runs.create_deployment_run(session, row, check)
            except ApiError as exc:
                forms.api_refusal(exc, form.errors, _field_of)
        if form.errors or form.param_errors or body is None or form.past_start or run is None:
            raise forms.Refused
        return run.id

    try:
        run_id = await ui.db.write_retrying(work)
    except forms.Refused:
        asks = form.past_start is not None and not (form.errors or form.param_errors)
        return await _show(ui, deployment_id, form, 200 if asks else 422)
    return redirect(f"/runs/{run_id}")


def _field_of(where: str) -> str:
    head = where.split(".")[0]
    return FORM_FIELDS.get(head, forms.ALL if where else "parameters")


def _read(
    posted: Form, schema: dict[str, Any], defaults: dict[str, Any]
) -> tuple[RunForm, schemas.DeploymentRunCreate | None, schemas.DeploymentRunCreate | None]:
    """The form as typed, the run's request (None when refused), and the request of what
    could be read, for the API's checks."""
    form = RunForm(
        parameters_text=posted.get("parameters"),
        job_variables=posted.get("job_variables", "{}"),
        start=posted.get("start").strip(),
        run_name=posted.get("run_name").strip(),
        run_tags=posted.get("run_tags"),
    )
    if forms.has_inputs(schema):
        form.typed = posted.section(
            PARAM_PREFIX, forms.paths(schema, nested=True, inputs_only=True)
        )
        form.values = forms.read(schema, form.typed, form.param_errors, nested=True)
    else:
        form.values = forms.json_object(form.parameters_text, "parameters", form.errors) or {}
    if schema:
        # values that could not be read keep their first error (setdefault)
        forms.validate(schema, {**defaults, **form.values}, form.param_errors, nested=True)
    job_variables = forms.json_object(form.job_variables, "job_variables", form.errors)
    start = _start(form)
    values = {
        "name": form.run_name or None,
        "tags": forms.tag_list(form.run_tags),
        "parameters": form.values,
        "job_variables": job_variables or {},
        "scheduled_start": start,
    }
    body = forms.checked(schemas.DeploymentRunCreate, values, form.errors, _field_of)
    check = body or forms.partial(schemas.DeploymentRunCreate, values, form.errors, _field_of)
    confirmed = posted.optional(CONFIRM_PAST) is not None
    if start is not None and not confirmed and start < datetime.now(UTC) - PAST_GRACE:
        form.past_start = start
    if form.errors or form.param_errors:
        return form, None, check
    return form, body, check


def _start(form: RunForm) -> datetime | None:
    if not form.start:
        return None
    try:
        moment = datetime.fromisoformat(form.start)
    except ValueError:
        form.errors["start"] = "enter a date and time, e.g. 2030-01-31 09:00"
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
