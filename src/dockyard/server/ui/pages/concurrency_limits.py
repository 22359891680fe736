"""Concurrency: the list of global concurrency limits (slots in use / limit, with the form
that creates one), and a limit's page (its live leases; edit the limit and decay, enable or
disable, delete).

Numbers are typed as text and read by the API's own models (``ConcurrencyLimitCreate``,
``ConcurrencyLimitUpdate``); their refusals are shown next to the field they name. A name
may hold any character but ``/``, so links carry it percent-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from dockyard._names import name_problem, path_segment
from dockyard.schemas import concurrency as cs
from dockyard.server.errors import ApiError
from dockyard.server.models import concurrency_limits as limits
from dockyard.server.ui.web import UI, Form, Paged, PageError, Posted, Ui, found, paged, redirect

router = APIRouter(include_in_schema=False)

BASE = "/concurrency-limits"
FORM_FIELDS = ("name", "limit", "slot_decay_per_second")
NOTICES = {
    "created": "Limit created.",
    "saved": "Saved.",
    "enabled": "Limit enabled: it is enforced.",
    "disabled": "Limit disabled: it is not enforced.",
}


@dataclass
class LimitForm:
    """What was typed, and what was wrong with it, by field."""

    name: str = ""
    limit: str = ""
    slot_decay_per_second: str = "0"
    active: bool = True
    errors: dict[str, str] = field(default_factory=dict)


def _link(name: str) -> str:
    return f"{BASE}/{path_segment(name)}"


async def _list_page(ui: Ui, form: LimitForm, status: int = 200) -> Response:
    page: Paged[cs.ConcurrencyLimit] = paged(ui)
    async with ui.db.read() as session:
        page.fill(await limits.list_limits(session, limit=page.limit, offset=page.offset))
    return ui.page(
        "concurrency/list.html",
        status=status,
        page=page,
        links={x.name: _link(x.name) for x in page.items},
        form=form,
        open_form=status != 200 or ui.request.query_params.get("new") == "1",
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
    )


@router.get(BASE)
async def limit_list(ui: UI) -> Response:
    return await _list_page(ui, LimitForm())


@router.post(BASE)
async def create_limit(ui: UI, posted: Posted) -> Response:
    form = _read(posted)
    form.name = posted.get("name").strip()
    form.active = posted.get("active") == "on"
    body = _checked(
        form,
        cs.ConcurrencyLimitCreate,
        name=form.name,
        limit=_number(form.limit, int),
        slot_decay_per_second=_number(form.slot_decay_per_second, float),
        active=form.active,
    )
    if body is not None:
        try:
            await ui.db.write_retrying(lambda session: limits.create_limit(session, body))
        except ApiError as exc:
            form.errors[_form_field(exc.extra.get("field"))] = exc.detail
        else:
            return redirect(f"{_link(body.name)}?done=created")
    return await _list_page(ui, form, status=422)


async def _limit_page(
    ui: Ui, name: str, form: LimitForm | None = None, status: int = 200
) -> Response:
    if name_problem(name):
        raise PageError(404, "Not found", f"No concurrency limit is named {name!r}.")
    async with ui.db.read() as session:
        with found():
            shown = await limits.read_detail(session, name)
    if form is None:
        form = LimitForm(
            name=shown.name,
            limit=str(shown.limit),
            slot_decay_per_second=f"{shown.slot_decay_per_second:g}",
        )
    return ui.page(
        "concurrency/detail.html",
        status=status,
        limit=shown,
        link=_link(shown.name),
        form=form,
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
    )


@router.get(BASE + "/{name}")
async def limit_page(name: str, ui: UI) -> Response:
    return await _limit_page(ui, name)


@router.post(BASE + "/{name}")
async def update_limit(name: str, ui: UI, posted: Posted) -> Response:
    form = _read(posted)
    body = _checked(
        form,
        cs.ConcurrencyLimitUpdate,
        limit=_number(form.limit, int),
        slot_decay_per_second=_number(form.slot_decay_per_second, float),
    )
    if body is not None and await _saved(ui, form, name, body):
        return redirect(f"{_link(name)}?done=saved")
    return await _limit_page(ui, name, form, status=422)


@router.post(BASE + "/{name}/enable")
async def enable_limit(name: str, ui: UI, posted: Posted) -> Response:
    return await _switch(ui, name, active=True)


@router.post(BASE + "/{name}/disable")
async def disable_limit(name: str, ui: UI, posted: Posted) -> Response:
    return await _switch(ui, name, active=False)


async def _switch(ui: Ui, name: str, *, active: bool) -> Response:
    body = cs.ConcurrencyLimitUpdate(active=active)
    with found():
        await ui.db.write_retrying(lambda session: limits.update_limit(session, name, body))
    return redirect(f"{_link(name)}?done={'enabled' if active else 'disabled'}")


@router.post(BASE + "/{name}/delete")
async def delete_limit(name: str, ui: UI, posted: Posted) -> Response:
    with found():
        await ui.db.write_retrying(lambda session: limits.delete_limit(session, name))
    return redirect(BASE)


async def _saved(ui: Ui, form: LimitForm, name: str, body: cs.ConcurrencyLimitUpdate) -> bool:
    try:
        with found():
            await ui.db.write_retrying(lambda session: limits.update_limit(session, name, body))
    except ApiError as exc:
        form.errors[_form_field(exc.extra.get("field"))] = exc.detail
        return False
    return True


def _read(posted: Form) -> LimitForm:
    return LimitForm(
        limit=posted.get("limit").strip(),
        slot_decay_per_second=posted.get("slot_decay_per_second").strip() or "0",
    )


_NOT_A_NUMBER = object()


def _number(text: str, kind: type[int] | type[float]) -> Any:
    """The number typed, or a marker the model refuses with its own message."""
    try:
        return kind(text)
    except ValueError:
        return _NOT_A_NUMBER if text else None


def _checked(form: LimitForm, model: type[BaseModel], **values: Any) -> Any:
    """``model(**values)``, or None with each refused field's message in the form."""
    for key, value in list(values.items()):
        if value is _NOT_A_NUMBER:
            form.errors[key] = "enter a number" + (", e.g. 10" if key == "limit" else ", e.g. 0.5")
            values.pop(key)
        elif value is None and key == "limit":
            form.errors[key] = "enter how many slots may be in use at once, e.g. 10"
            values.pop(key)
    try:
        built = model(**values)
    except ValidationError as exc:
        for error in exc.errors():
            key = _form_field(error["loc"][0] if error["loc"] else "")
            form.errors.setdefault(key, str(error["msg"]).removeprefix("Value error, "))
        return None
    return None if form.errors else built


def _form_field(name: object) -> str:
    name = str(name or "")
    return name if name in FORM_FIELDS else "__all__"
