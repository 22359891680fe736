"""Variables: the list (with the form that creates one), a variable's page (edit its value
and tags, or delete it).

A value is typed as JSON (text in double quotes); tags as a comma-separated list. The API's
own checks decide (``VariableCreate``, ``VariableUpdate``); their refusals are shown next to
the field they name. The create form lives on the list's page: any name, ``new`` included,
is a variable's page of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from dockyard import schemas
from dockyard._names import path_segment, variable_name_problem
from dockyard.server.errors import ApiError
from dockyard.server.models import variables
from dockyard.server.ui import rendering
from dockyard.server.ui.web import UI, Form, Paged, PageError, Posted, Ui, found, paged, redirect

router = APIRouter(include_in_schema=False)

NOTICES = {"saved": "Saved.", "created": "Variable created."}
FORM_FIELDS = ("name", "value", "tags")


@dataclass
class VariableForm:
    """What was typed, and what was wrong with it, by field."""

    name: str = ""
    value: str = ""
    tags: str = ""
    errors: dict[str, str] = field(default_factory=dict)


async def _list_page(ui: Ui, form: VariableForm, status: int = 200) -> Response:
    page: Paged[schemas.Variable] = paged(ui)
    prefix = ui.request.query_params.get("prefix", "").strip()[:255]
    async with ui.db.read() as session:
        rows = await variables.list_variables(
            session, name_prefix=prefix or None, limit=page.limit, offset=page.offset
        )
        page.fill([variables.variable_schema(row) for row in rows])
    return ui.page(
        "variables/list.html",
        status=status,
        page=page,
        prefix=prefix,
        previews={v.name: _preview(v.value) for v in page.items},
        form=form,
        open_form=status != 200 or ui.request.query_params.get("new") == "1",
    )


@router.get("/variables")
async def variable_list(ui: UI) -> Response:
    return await _list_page(ui, VariableForm())


@router.post("/variables")
async def create_variable(ui: UI, posted: Posted) -> Response:
    form = _read(posted)
    form.name = posted.get("name").strip()
    value = _value(form)
    body = _checked(
        form, schemas.VariableCreate, name=form.name, value=value, tags=_tags(form.tags)
    )
    if body is not None and not form.errors:
        try:
            await ui.db.write_retrying(lambda session: variables.create_variable(session, body))
        except ApiError as exc:
            form.errors[_form_field(exc.extra.get("field"))] = exc.detail
        else:
            return redirect(f"/variables/{path_segment(body.name)}?done=created")
    return await _list_page(ui, form, status=422)


async def _variable_page(
    ui: Ui, name: str, form: VariableForm | None = None, status: int = 200
) -> Response:
    if variable_name_problem(name):
        raise PageError(404, "Not found", f"No variable is named {name!r}.")
    async with ui.db.read() as session:
        with found():
            variable = variables.variable_schema(await variables.read_variable(session, name))
    if form is None:
        form = VariableForm(
            value=rendering.pretty_json(variable.value), tags=", ".join(variable.tags)
        )
    return ui.page(
        "variables/detail.html",
        status=status,
        variable=variable,
        form=form,
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
    )


@router.get("/variables/{name}")
async def variable_page(name: str, ui: UI) -> Response:
    return await _variable_page(ui, name)


@router.post("/variables/{name}")
async def update_variable(name: str, ui: UI, posted: Posted) -> Response:
    form = _read(posted)
    value = _value(form)
    body = _checked(form, schemas.VariableUpdate, value=value, tags=_tags(form.tags))
    if body is not None and not form.errors:
        try:
            await ui.db.write_retrying(
                lambda session: variables.update_variable(session, name, body)
            )
        except ApiError as exc:
            form.errors[_form_field(exc.extra.get("field"))] = exc.detail
        else:
            return redirect(f"/variables/{path_segment(name)}?done=saved")
    return await _variable_page(ui, name, form, status=422)


@router.post("/variables/{name}/delete")
async def delete_variable(name: str, ui: UI, posted: Posted) -> Response:
    with found():
        await ui.db.write_retrying(lambda session: variables.delete_variable(session, name))
    return redirect("/variables")


def _preview(value: Any, limit: int = 80) -> str:
    """``value`` as one line of JSON, cut to ``limit`` characters."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read(posted: Form) -> VariableForm:
    return VariableForm(value=posted.get("value"), tags=posted.get("tags"))


_NO_VALUE = object()


def _value(form: VariableForm) -> Any:
    """The value typed, read as JSON; a typing error goes to the form's errors."""
    if not form.value.strip():
        form.errors["value"] = 'enter a value as JSON, e.g. "hello", 42, true, null or ["a"]'
        return _NO_VALUE
    try:
        return json.loads(form.value, parse_constant=_not_json)
    except RecursionError:
        form.errors["value"] = "nests too deeply; flatten it"
    except ValueError as exc:
        form.errors["value"] = (
            f'not valid JSON ({exc}); write text in double quotes, e.g. "hello", or a '
            "number, true, false, null, a [list] or an {object}"
        )
    return _NO_VALUE


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def _checked(form: VariableForm, model: type[BaseModel], **values: Any) -> Any:
    """``model(**values)``, or None with each refused field's message in the form."""
    if values.get("value") is _NO_VALUE:
        values.pop("value")
    try:
        return model(**values)
    except ValidationError as exc:
        for error in exc.errors():
            key = _form_field(error["loc"][0] if error["loc"] else "")
            form.errors.setdefault(key, str(error["msg"]).removeprefix("Value error, "))
        return None


def _form_field(name: object) -> str:
    name = str(name or "")
    return name if name in FORM_FIELDS else "__all__"
