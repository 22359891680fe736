"""Create a work pool: pick a type, fill in the form built from its ``variables`` schema (or
edit the whole base job template as JSON: once changed, the JSON is the template). The
server's own checks decide; all their refusals are shown at once, each next to the field it
names. The name follows the API's rule (``WorkPoolCreate``); only the spaces a person may
have typed around it are dropped first.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.server import masking, templates, worker_types
from dockyard.server.errors import ApiError
from dockyard.server.models import pools
from dockyard.server.ui import forms, rendering
from dockyard.server.ui.web import UI, Form, Posted, Ui, redirect

router = APIRouter(include_in_schema=False)

VAR_PREFIX = "var."
FIELDS_POSTED = "fields_posted"


@dataclass
class PoolForm:
    """What the form shows: the chosen type, what was typed, and the errors by field."""

    type: str
    name: str = ""
    description: str = ""
    concurrency_limit: str = ""
    template_text: str = ""
    template_edited: bool = False  # the JSON differs from the type's: it is the template
    fields_posted: bool = False  # the variables' inputs came with the post (a browser's)
    values: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, str | None] = field(default_factory=dict)  # the variables' inputs
    errors: dict[str, str] = field(default_factory=dict)
    var_errors: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return bool(self.errors or self.var_errors)


class _NotCreated(Exception):
    """Raised to roll back the API's checks of a form that has refusals to show."""


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
    fields = forms.build(variables, form.values, VAR_PREFIX, form.var_errors, form.typed)
    return ui.page(
        "pools/new.html",
        status=status,
        form=form,
        types=worker_types.known(),
        type_description=entry.get("description", ""),
        fields=fields,
    )


@router.get("/work-pools/new")
async def new_pool_form(ui: UI) -> Response:
    chosen = ui.request.query_params.get("type", "")
    form = _blank(chosen if chosen in worker_types.known() else _default_type())
    form.name = ui.request.query_params.get("name", "")[:100]
    return _show(ui, form)


@router.post("/work-pools/new")
async def create_pool(ui: UI, posted: Posted) -> Response:
    """Every refusal at once: what the form reads, then the API's own checks of the name and
    the template (``pools.create_pool``), even when something else was refused already."""
    form = _read(posted)
    body = _body(form)
    try:
        async with ui.db.write() as session:
            created = await _create(session, form, body)
    except _NotCreated:
        return _show(ui, form, status=422)
    return redirect(f"/work-pools/{path_segment(created.name)}")


async def _create(
    session: AsyncSession, form: PoolForm, body: schemas.WorkPoolCreate | None
) -> schemas.WorkPoolCreate:
    """Create the pool, or raise ``_NotCreated`` with every refusal in ``form``.

    A form with refusals already still goes through the API's check of its name (in this
    transaction, rolled back), so a taken name shows beside the other problems.
    """
    check = body if not form.refused else _name_only(form)
    if check is not None:
        try:
            await pools.create_pool(session, check)
        except ApiError as exc:
            form.errors.setdefault(_form_field(exc.extra.get("field")), exc.detail)
    if form.refused or body is None:
        raise _NotCreated
    return body


def _name_only(form: PoolForm) -> schemas.WorkPoolCreate | None:
    """A pool of the form's name with the type's own template, for the API's name check."""
    try:
        return schemas.WorkPoolCreate(name=form.name, type=form.type)
    except ValidationError:
        return None  # the name's own problem is shown already


def _read(posted: Form) -> PoolForm:
    form = PoolForm(
        type=posted.get("type"),
        name=posted.get("name").strip(),
        description=posted.get("description").strip(),
        concurrency_limit=posted.get("concurrency_limit").strip(),
        template_text=posted.get("template"),
        fields_posted=posted.optional(FIELDS_POSTED) is not None,
    )
    if worker_types.get(form.type) is None:
        known = ", ".join(worker_types.known()) or "none installed"
        form.errors["type"] = f"pick a known worker type ({known})"
        form.type = _default_type()
        return form
    variables = _template(form.type).get("variables", {})
    form.typed = posted.section(VAR_PREFIX, variables.get("properties", {}))
    form.values = forms.read(variables, form.typed, form.var_errors)
    form.template_edited = _edited(form)
    if not form.template_edited:
        form.template_text = _blank(form.type).template_text
    return form


def _edited(form: PoolForm) -> bool:
    """Whether the JSON box says something else than the type's template it was shown with
    (an empty box says nothing: the fields are used)."""
    text = form.template_text.strip()
    if not text:
        return False
    try:
        typed = json.loads(text)
    except ValueError:
        return True
    return bool(typed != masking.mask_template(_template(form.type)))


def _fields_changed(form: PoolForm) -> bool:
    """Whether the variables' inputs say something else than when the form was shown (a
    post without them, such as a script's that sends the JSON only, changed none)."""
    if not form.fields_posted:
        return False
    variables = _template(form.type).get("variables", {})
    shown = forms.build(variables, _blank(form.type).values, "", {})
    as_posted = {
        f.key: ("on" if f.checked else None) if f.kind == "checkbox" else f.value for f in shown
    }
    return bool(form.var_errors) or forms.read(variables, as_posted, {}) != form.values


def _body(form: PoolForm) -> schemas.WorkPoolCreate | None:
    template = _typed_template(form) if form.template_edited else _template_from_fields(form)
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


BOTH_CHANGED = (
    "you changed the fields above and this JSON: a changed JSON is the whole template, so "
    'the fields would not be used. Set their defaults in the JSON\'s "variables", or empty '
    "this box to use the fields"
)


def _typed_template(form: PoolForm) -> dict[str, Any] | None:
    """The JSON typed, checked as the API checks a template (``None`` when refused). A
    template that passes is shown again with its secret defaults masked."""
    if _fields_changed(form):
        form.errors["template"] = BOTH_CHANGED
        return None
    try:
        typed = json.loads(form.template_text)
    except ValueError as exc:
        form.errors["template"] = f"not valid JSON: {exc}"
        return None
    try:
        # what pools.create_pool checks, here too when another field is refused already
        templates.validate_template(masking.restore(typed, None, templates.FIELD))
    except ApiError as exc:
        form.errors["template"] = exc.detail
        return None
    form.template_text = rendering.pretty_json(masking.mask_template(typed))
    return dict(typed)


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
