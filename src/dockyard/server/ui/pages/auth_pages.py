"""Login (with a user or admin API key) and logout."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from dockyard.server.ui.auth import UI_SCOPES
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
    caller = await ui.guard.caller(form.get("api_key"))
    if caller is None:
        return ui.page(
            "login.html",
            status=401,
            next=target,
            error="That is not the server's API key (DOCKYARD_SERVER_API_KEY) nor a live key "
            "made with `dockyard api-key create`.",
        )
    if caller.scope.value not in UI_SCOPES:
        return ui.page(
            "login.html",
            status=403,
            next=target,
            error=f"A {caller.scope.value} key cannot log in to the UI: it is for "
            f"{'workers' if caller.scope.value == 'worker' else 'flow runs'}. Log in with a "
            "user or admin key (`dockyard api-key create NAME --scope user`).",
        )
    response = redirect(target)
    start_session(ui.request, response, ui.guard, caller)
    return response


@router.post("/logout")
async def logout(ui: UI, form: Posted) -> Response:
    response = redirect("/login")
    end_session(response)
    return response
