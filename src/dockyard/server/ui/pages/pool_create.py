"""Create a work pool: pick a type, fill in the form built from its ``variables`` schema (or
edit the whole base job template as JSON). The server's own checks decide; their refusals are
shown next to the field they name. The name follows the API's rule (``WorkPoolCreate``);
only the spaces a person may have typed around it are dropped first.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.server import masking, worker_types
from dockyard.server.errors import ApiError
from dockyard.server.models import pools
from dockyard.server.ui import forms, rendering
from dockyard.server.ui.web import UI, Form, Posted, Ui, redirect

router = APIRouter(include_in_schema=False)

VAR_PREFIX = "var."


@dataclass
class PoolForm:
    """What the form shows: the chosen type, what was typed, and the errors by field."""

    type: str
    name: str = ""
    description: str = ""
    concurrency_limit: str = ""
    use_json: bool = False
    template_text: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    var_errors: dict[str, str] = field(default_factory=dict)


def _default_type() -> str:
    known = worker_types.known()
    return "process" if "process" in known else (known[0] if known else "")


def _template(type_name: str) -> dict[str, Any]:
    entry = worker_types.get(type_name)
    return entry["base_job_template"] if entry else {"job_configuration": {}, "variables": {}}


def _blank(type_name: str) -> PoolForm:
    template = _template(type_name)
    properties = template.get("variables", {}).get("properties", {})
    return PoolForm(
        type=type_name,
        template_text=rendering.pretty_json(masking.mask_template(template)),
        values={k: s["default"] for k, s in properties.items() if "default" in s},
    )


def _show(ui: Ui, form: PoolForm, status: int = 200) -> Response:
    template = _template(form.type)
    variables = template.get("variables", {})
    entry = worker_types.get(form.type) or {}
    return ui.page(
        "pools/new.html",
        status=status,
        form=form,
        types=worker_types.known(),
        type_description=entry.get("description", ""),
        fields=forms.build(variables, form.values, VAR_PREFIX, form.var_errors),
    )


@router.get("/work-pools/new")
async def new_pool_form(ui: UI) -> Response:
    chosen = ui.request.query_params.get("type", "")
    form = _blank(chosen if chosen in worker_types.known() else _default_type())
    form.name = ui.request.query_params.get("name", "")[:100]
    return _show(ui, form)


@router.post("/work-pools/new")
async def create_pool(ui: UI, posted: Posted) -> Response:
    form = _read(posted)
    body = _body(form)
    if body is not None and not form.errors and not form.var_errors:
        try:
            async with ui.db.write() as session:
                await pools.create_pool(session, body)
        except ApiError as exc:
            form.errors[_form_field(exc.extra.get("field"))] = exc.detail
        else:
            return redirect(f"/work-pools/{path_segment(body.name)}")
    return _show(ui, form, status=422)


def _read(posted: Form) -> PoolForm:
    form = PoolForm(
        type=posted.get("type"),
        name=posted.get("name").strip(),
        description=posted.get("description").strip(),
        concurrency_limit=posted.get("concurrency_limit").strip(),
        use_json=posted.get("use_json") == "on",
        template_text=posted.get("template"),
    )
    if worker_types.get(form.type) is None:
        known = ", ".join(worker_types.known()) or "none installed"
        form.errors["type"] = f"pick a known worker type ({known})"
        form.type = _default_type()
        return form
    variables = _template(form.type).get("variables", {})
    raw = posted.section(VAR_PREFIX, variables.get("properties", {}))
    form.values = forms.read(variables, raw, form.var_errors)
    if form.use_json:
        _mask_typed_template(form)
    return form


def _mask_typed_template(form: PoolForm) -> None:
    """The JSON as typed, but with secret defaults masked when it is shown again."""
    try:
        typed = json.loads(form.template_text)
    except ValueError:
        return
    if isinstance(typed, dict):
        form.template_text = rendering.pretty_json(masking.mask_template(typed))


def _body(form: PoolForm) -> schemas.WorkPoolCreate | None:
    template = _typed_template(form) if form.use_json else _template_from_fields(form)
    limit: int | None = None
    if form.concurrency_limit:
        if not form.concurrency_limit.isdigit():
            form.errors["concurrency_limit"] = "enter a whole number (0 or more), or leave empty"
        else:
            limit = int(form.concurrency_limit)
    try:
        return schemas.WorkPoolCreate(
            name=form.name,
            type=form.type,
            description=form.description or None,
            base_job_template=template,
            concurrency_limit=limit,
        )
    except ValidationError as exc:
        for error in exc.errors():
            key = _form_field(".".join(str(p) for p in error["loc"]))
            form.errors.setdefault(key, str(error["msg"]).removeprefix("Value error, "))
        return None


def _typed_template(form: PoolForm) -> dict[str, Any] | None:
    try:
        typed = json.loads(form.template_text)
    except ValueError as exc:
        form.errors["template"] = f"not valid JSON: {exc}"
        return None
    if not isinstance(typed, dict):
        form.errors["template"] = "the base job template must be a JSON object"
        return None
    return typed


def _template_from_fields(form: PoolForm) -> dict[str, Any]:
    """The type's template, with each variable's default set to what the form says."""
    template = copy.deepcopy(_template(form.type))
    variables = template.setdefault("variables", {"type": "object", "properties": {}})
    # a variable's "required" is for runs; a pool may leave it without a default
    loose = {k: v for k, v in variables.items() if k != "required"}
    forms.validate(loose, form.values, form.var_errors)
    for key, spec in variables.get("properties", {}).items():
        if key in form.values:
            spec["default"] = form.values[key]
        else:
            spec.pop("default", None)
    return template


def _form_field(name: object) -> str:
    name = str(name or "")
    if name.startswith("base_job_template"):
        return "template"
    return name if name in ("name", "type", "description", "concurrency_limit") else "__all__"
