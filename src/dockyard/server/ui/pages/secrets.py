"""Secrets: the list of names and times, with the form that creates one (the value typed in
a password field), and a delete button per secret. No page shows a value, and a refused
form does not send the value typed back to the browser."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import ValidationError

from dockyard import schemas
from dockyard.server.encryption import Keyring
from dockyard.server.errors import ApiError
from dockyard.server.models import secrets
from dockyard.server.ui.web import UI, Paged, Posted, Ui, found, paged, redirect

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("name", "value")
NOTICES = {"created": "Secret created.", "deleted": "Secret deleted."}


@dataclass
class SecretForm:
    """The name typed (the value is never kept), and what was wrong, by field."""

    name: str = ""
    errors: dict[str, str] = field(default_factory=dict)


async def _list_page(ui: Ui, form: SecretForm, status: int = 200) -> Response:
    page: Paged[schemas.Secret] = paged(ui)
    async with ui.db.read() as session:
        rows = await secrets.list_secrets(session, limit=page.limit, offset=page.offset)
        page.fill([secrets.secret_schema(row) for row in rows])
    return ui.page(
        "secrets/list.html",
        status=status,
        page=page,
        form=form,
        open_form=status != 200 or ui.request.query_params.get("new") == "1",
        notice=NOTICES.get(ui.request.query_params.get("done", "")),
    )


@router.get("/secrets")
async def secret_list(ui: UI) -> Response:
    return await _list_page(ui, SecretForm())


@router.post("/secrets")
async def create_secret(ui: UI, posted: Posted) -> Response:
    form = SecretForm(name=posted.get("name").strip())
    value = posted.get("value")
    body = None
    if not value:
        form.errors["value"] = "enter the secret's value"
    try:
        body = schemas.SecretCreate(name=form.name, value=value)
    except ValidationError as exc:
        for error in exc.errors():
            key = _form_field(error["loc"][0] if error["loc"] else "")
            form.errors.setdefault(key, str(error["msg"]).removeprefix("Value error, "))
    if body is not None and not form.errors:
        keyring: Keyring = ui.request.app.state.keyring
        cipher = await keyring.acipher()
        created = body
        try:
            await ui.db.write_retrying(
                lambda session: secrets.create_secret(session, cipher, created)
            )
        except ApiError as exc:
            form.errors[_form_field(exc.extra.get("field"))] = exc.detail
        else:
            return redirect("/secrets?done=created")
    return await _list_page(ui, form, status=422)


@router.post("/secrets/{name}/delete")
async def delete_secret(name: str, ui: UI, posted: Posted) -> Response:
    with found():
        await ui.db.write_retrying(lambda session: secrets.delete_secret(session, name))
    return redirect("/secrets?done=deleted")


def _form_field(name: object) -> str:
    name = str(name or "")
    return name if name in FORM_FIELDS else "__all__"
