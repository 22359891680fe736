"""Create a work pool: pick a type, fill in the form built from its ``variables`` schema (or
edit the whole base job template as JSON: once changed, the JSON is the template). The
server's own checks decide; all their refusals are shown at once, each next to the field it
names. The name follows the API's rule (``WorkPoolCreate``); only the spaces a person may
have typed around it are dropped first.

The pool's settings part of the form (description, limit, job variable defaults, the JSON
template) is read here for the edit form too (:mod:`.pool_edit`), from the template the form
started from: the type's for a new pool, the pool's own for an edit.
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
FORM_FIELDS = ("name", "type", "description", "concurrency_limit")


@dataclass
class PoolForm:
    """What the form shows: the chosen type, what was typed, and the errors by field."""

    type: str
    base: dict[str, Any]  # the template the form started from, secrets included
    name: str = ""
    description: str = ""
    concurrency_limit: str = ""
    template_text: str = ""
    template_edited: bool = False  # the JSON differs from the one shown: it is the template
    fields_posted: bool = False  # the variables' inputs came with the post (a browser's)
    editing: bool = False  # an empty secret input keeps the pool's secret default
    values: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, str | None] = field(default_factory=dict)  # the variables' inputs
    errors: dict[str, str] = field(default_factory=dict)
    var_errors: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return bool(self.errors or self.var_errors)

    @property
    def variables(self) -> dict[str, Any]:
        found = self.base.get("variables", {})
        return found if isinstance(found, dict) else {}

    def fields(self) -> list[forms.Field]:
        """The inputs of the template's variables, showing their defaults."""
        return forms.build(self.variables, self.values, VAR_PREFIX, self.var_errors, self.typed)


class _NotCreated(Exception):
    """Raised to roll back the API's checks of a form that has refusals to show."""


def _default_type() -> str:
    known = worker_types.known()
    return "process" if "process" in known else (known[0] if known else "")


def _template(type_name: str) -> dict[str, Any]:
    entry = worker_types.get(type_name)
    return entry["base_job_template"] if entry else {"job_configuration": {}, "variables": {}}


def blank(type_name: str, base: dict[str, Any]) -> PoolForm:
    """The form of a pool of ``type_name`` whose template is ``base``, as first shown."""
    return PoolForm(
        type=type_name,
        base=base,
        template_text=rendering.pretty_json(masking.mask_template(base)),
        values=forms.defaults(base.get("variables", {})),
    )


def _show(ui: Ui, form: PoolForm, status: int = 200) -> Response:
    entry = worker_types.get(form.type) or {}
    return ui.page(
        "pools/new.html",
        status=status,
        form=form,
        types=worker_types.known(),
        type_description=entry.get("description", ""),
        fields=form.fields(),
    )


@router.get("/work-pools/new")
async def new_pool_form(ui: UI) -> Response:
    forms.admin_only(ui)
    chosen = ui.request.query_params.get("type", "")
    type_name = chosen if chosen in worker_types.known() else _default_type()
    form = blank(type_name, _template(type_name))
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
            forms.api_refusal(exc, form.errors, field_of)
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
    type_name = posted.get("type")
    if worker_types.get(type_name) is None:
        form = PoolForm(type=_default_type(), base=_template(_default_type()))
        known = ", ".join(worker_types.known()) or "none installed"
        form.errors["type"] = f"pick a known worker type ({known})"
        form.name = posted.get("name").strip()
        form.description = posted.get("description").strip()
        form.concurrency_limit = posted.get("concurrency_limit").strip()
        form.template_text = posted.get("template")
        return form
    form = PoolForm(type=type_name, base=_template(type_name), name=posted.get("name").strip())
    read_settings(posted, form)
    return form


def read_settings(posted: Form, form: PoolForm) -> None:
    """Read the pool's settings (all but type and name) from ``posted`` into ``form``."""
    form.description = posted.get("description").strip()
    form.concurrency_limit = posted.get("concurrency_limit").strip()
    form.template_text = posted.get("template")
    form.fields_posted = posted.optional(FIELDS_POSTED) is not None
    form.typed = posted.section(VAR_PREFIX, form.variables.get("properties", {}))
    form.values = forms.read(form.variables, form.typed, form.var_errors)
    form.template_edited = _edited(form)
    if not form.template_edited:
        form.template_text = blank(form.type, form.base).template_text


def _edited(form: PoolForm) -> bool:
    """Whether the JSON box says something else than the template it was shown with (an
    empty box says nothing: the fields are used)."""
    text = form.template_text.strip()
    if not text:
        return False
    try:
        typed = json.loads(text)
    except ValueError:
        return True
    return bool(typed != masking.mask_template(form.base))


def _fields_changed(form: PoolForm) -> bool:
    """Whether the variables' inputs say something else than when the form was shown (a
    post without them, such as a script's that sends the JSON only, changed none)."""
    if not form.fields_posted:
        return False
    shown = forms.build(form.variables, blank(form.type, form.base).values, "", {})
    as_posted = {
        f.key: ("on" if f.checked else None) if f.kind == "checkbox" else f.value for f in shown
    }
    return bool(form.var_errors) or forms.read(form.variables, as_posted, {}) != form.values


def _body(form: PoolForm) -> schemas.WorkPoolCreate | None:
    template = template_of(form)
    limit = limit_of(form)
    return forms.checked(
        schemas.WorkPoolCreate,
        {
            "name": form.name,
            "type": form.type,
            "description": form.description or None,
            "base_job_template": template,
            "concurrency_limit": limit,
        },
        form.errors,
        field_of,
    )


def limit_of(form: PoolForm) -> int | None:
    """The concurrency limit typed (None: none); the API's model says if it is in range."""
    if form.concurrency_limit and not form.concurrency_limit.lstrip("-").isdigit():
        form.errors["concurrency_limit"] = "enter a whole number (0 or more), or leave empty"
        return None
    return int(form.concurrency_limit) if form.concurrency_limit else None


def template_of(form: PoolForm) -> dict[str, Any] | None:
    """The template the form says: its JSON when changed, else the fields' defaults."""
    return _typed_template(form) if form.template_edited else _template_from_fields(form)


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
    stored = form.base if form.editing else None
    try:
        # what pools.create_pool and update_pool check, here too when another field is
        # refused already
        templates.validate_template(masking.restore(typed, stored, templates.FIELD))
    except ApiError as exc:
        form.errors["template"] = exc.detail
        return None
    form.template_text = rendering.pretty_json(masking.mask_template(typed))
    return dict(typed)


def _template_from_fields(form: PoolForm) -> dict[str, Any]:
    """The template, with each variable's default set to what the form says (an empty
    secret input of an edited pool keeps the secret it has)."""
    template = copy.deepcopy(form.base)
    variables = template.setdefault("variables", {"type": "object", "properties": {}})
    # a variable's "required" is for runs; a pool may leave it without a default
    forms.validate(forms.loose(variables), form.values, form.var_errors)
    properties = variables.get("properties", {})
    for key, spec in properties.items():
        if not isinstance(spec, dict):  # `true`: any value
            if key in form.values:
                properties[key] = {"default": form.values[key]}
            continue
        kept = form.editing and forms.kind_of(spec, variables) == "password"
        if key in form.values:
            spec["default"] = form.values[key]
        elif not kept:
            spec.pop("default", None)
    return template


def field_of(where: str) -> str:
    """The form field an API refusal names (a part of the template: the JSON box)."""
    return forms.form_field(where, FORM_FIELDS, {templates.FIELD: "template"})
