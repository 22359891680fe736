"""Login (with the server's API key) and logout."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from dockyard.server.ui.web import (
    UI,
    Posted,
    PublicUI,
    end_session,
    redirect,
    safe_next,
    start_session,
)

router = APIRouter(include_in_schema=False)


@router.get("/login")
async def login_page(ui: PublicUI) -> Response:
    target = safe_next(ui.request.query_params.get("next", "/"))
    if not ui.guard.login_required:
        return redirect(target)
    return ui.page("login.html", next=target, error=None)


@router.post("/login")
async def login(ui: PublicUI, form: Posted) -> Response:
    target = safe_next(form.get("next", "/"))
    if not ui.guard.login_required:
        return redirect(target)
    if not ui.guard.key_matches(form.get("api_key")):
        return ui.page(
            "login.html",
            status=401,
            next=target,
            error="That is not the server's API key (DOCKYARD_SERVER_API_KEY).",
        )
    response = redirect(target)
    start_session(ui.request, response, ui.guard)
    return response


@router.post("/logout")
async def logout(ui: UI, form: Posted) -> Response:
    response = redirect("/login")
    end_session(response)
    return response
