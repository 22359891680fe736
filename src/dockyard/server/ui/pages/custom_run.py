"""A custom run of a deployment: parameters (a form built from its parameter schema), job
variables and a start time. Every value is checked before the run is made; a bad one is shown
next to its field and nothing is created.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

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
    "parameters": "parameters",
    "job_variables": "job_variables",
    "scheduled_start": "start",
}

PARAM_PREFIX = "param."


@dataclass
class RunForm:
    """What was typed, and what was wrong with it (parameter errors by parameter name)."""

    values: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, str | None] = field(default_factory=dict)
    parameters_text: str = ""
    job_variables: str = "{}"
    start: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    param_errors: dict[str, str] = field(default_factory=dict)


def _has_form(schema: dict[str, Any]) -> bool:
    return bool(schema.get("properties"))


async def _show(ui: Ui, deployment_id: uuid.UUID, form: RunForm | None, status: int) -> Response:
    async with ui.db.read() as session:
        row = await read_deployment(session, deployment_id)
        deployment = await flows.deployment_schema(session, row, ui.settings.worker_offline_seconds)
        template = await pool_template(session, row)
    schema = deployment.parameter_schema
    if form is None:
        properties = schema.get("properties", {})
        defaults = {k: p["default"] for k, p in properties.items() if "default" in p}
        values = {**defaults, **deployment.parameters}
        form = RunForm(values=values, parameters_text=rendering.pretty_json(deployment.parameters))
    return ui.page(
        "deployments/run.html",
        status=status,
        deployment=deployment,
        form=form,
        fields=forms.build(schema, form.values, PARAM_PREFIX, form.param_errors, form.typed)
        if _has_form(schema)
        else [],
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
    form, body = _read(posted, schema, defaults)
    if body is not None:
        try:
            async with ui.db.write() as session:
                row = await read_deployment(session, deployment_id)
                run = await runs.create_deployment_run(session, row, body)
        except ApiError as exc:
            where = str(exc.extra.get("field") or "")
            form.errors["job_variables" if where.startswith("job_variables") else "__all__"] = (
                exc.detail
            )
        else:
            return redirect(f"/runs/{run.id}")
    return await _show(ui, deployment_id, form, 422)


def _read(
    posted: Form, schema: dict[str, Any], defaults: dict[str, Any]
) -> tuple[RunForm, schemas.DeploymentRunCreate | None]:
    form = RunForm(
        parameters_text=posted.get("parameters"),
        job_variables=posted.get("job_variables", "{}"),
        start=posted.get("start").strip(),
    )
    if _has_form(schema):
        form.typed = posted.section(PARAM_PREFIX, schema["properties"])
        form.values = forms.read(schema, form.typed, form.param_errors)
    else:
        form.values = _json_object(form.parameters_text, "parameters", form.errors)
    if schema:
        # values that could not be read keep their first error (setdefault)
        forms.validate(schema, {**defaults, **form.values}, form.param_errors)
    job_variables = _json_object(form.job_variables, "job_variables", form.errors)
    start = _start(form)
    if form.errors or form.param_errors:
        return form, None
    try:
        body = schemas.DeploymentRunCreate(
            parameters=form.values, job_variables=job_variables, scheduled_start=start
        )
    except ValidationError as exc:  # what the server cannot store (NUL, NaN, too deep)
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "parameters"
            message = str(error["msg"]).removeprefix("Value error, ")
            form.errors.setdefault(FORM_FIELDS.get(field, "parameters"), message)
        return form, None
    return form, body


def _json_object(text: str, name: str, errors: dict[str, str]) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        errors[name] = f"not valid JSON: {exc}"
        return {}
    if not isinstance(value, dict):
        errors[name] = 'enter a JSON object, e.g. {"env": {"KEY": "value"}}'
        return {}
    return value


def _start(form: RunForm) -> datetime | None:
    if not form.start:
        return None
    try:
        moment = datetime.fromisoformat(form.start)
    except ValueError:
        form.errors["start"] = "enter a date and time, e.g. 2030-01-31 09:00"
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
