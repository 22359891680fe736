"""Request plumbing shared by the pages: the login check, CSRF, forms, rendering and errors."""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dockyard._values import text_problem
from dockyard.server import security
from dockyard.server.db import Database
from dockyard.server.errors import NotFound
from dockyard.server.ui import rendering
from dockyard.server.ui.auth import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Guard,
    may_post,
)
from dockyard.settings import Settings

if TYPE_CHECKING:
    from dockyard.server.access import Caller

T = TypeVar("T")

PAGE_SIZE = 25
MAX_FORM_BYTES = 1_000_000
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


class LoginRequired(Exception):
    """Raised when a page is asked for without a valid session while an API key is set."""


class PageError(Exception):
    """Raised to answer with an error page (404 unknown, 403 refused form, ...)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@contextlib.contextmanager
def found() -> Iterator[None]:
    """Turn the models' ``NotFound`` into a 404 page."""
    try:
        yield
    except NotFound as exc:
        raise PageError(404, "Not found", exc.detail) from None


# ---------------------------------------------------------------- the request


@dataclass
class Ui:
    """What a page needs: the database, the settings, and the browser's CSRF nonce."""

    request: Request
    db: Database
    settings: Settings
    guard: Guard
    nonce: str
    fresh_nonce: bool
    scope: str = "admin"  # of the session's API key: "user" sees no forms but runs'

    @property
    def may_edit(self) -> bool:
        """Whether this session may create, change and delete (an admin's); a user's may
        only start, cancel and resume runs."""
        return self.scope == "admin"

    @property
    def csrf(self) -> str:
        return self.guard.csrf_token(self.nonce)

    @property
    def partial(self) -> str:
        """``?partial=NAME`` asks for one live fragment of a page instead of the page."""
        return self.request.query_params.get("partial", "")

    def page(self, template: str, /, status: int = 200, **context: Any) -> HTMLResponse:
        body = rendering.render(template, {"ui": self, "csrf": self.csrf, **context})
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        if self.fresh_nonce:
            set_cookie(self.request, response, CSRF_COOKIE, self.nonce, max_age=None)
        return response

    def url_with(self, **params: Any) -> str:
        """This page's URL with some query parameters replaced (``None`` drops one)."""
        kept = self.request.query_params.multi_items()
        query = [(k, v) for k, v in kept if k not in params and k != "partial"]
        query += [(k, str(v)) for k, v in params.items() if v is not None]
        return self.request.url.path + (f"?{urlencode(query)}" if query else "")

    def number(self, name: str, default: int = 1, minimum: int = 1) -> int:
        """A whole number from the query string (a missing or bad one gives the default)."""
        raw = self.request.query_params.get(name, "")
        if not raw.isdigit() or len(raw) > 18 or int(raw) < minimum:
            return default
        return int(raw)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"cache-control": "no-store"})


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _ui(request: Request) -> Ui:
    nonce = request.cookies.get(CSRF_COOKIE, "")
    fresh = len(nonce) < 16
    guard: Guard = request.app.state.ui_guard
    return Ui(
        request=request,
        db=request.app.state.db,
        settings=request.app.state.settings,
        guard=guard,
        nonce=guard.new_nonce() if fresh else nonce,
        fresh_nonce=fresh,
    )


async def public_ui(request: Request) -> Ui:
    await request.app.state.ui_guard.prepare()
    return _ui(request)


async def logged_in_ui(request: Request) -> Ui:
    await request.app.state.ui_guard.prepare()
    ui = _ui(request)
    scope = await ui.guard.session_scope(request.cookies.get(SESSION_COOKIE))
    if scope is None:
        raise LoginRequired()
    ui.scope = scope
    if request.method == "POST" and not may_post(scope, request.url.path):
        raise PageError(
            403,
            "Not allowed",
            "You are logged in with a user key: it may start, cancel and resume runs only. "
            "Log in with an admin key to change this.",
        )
    return ui


# ---------------------------------------------------------------- forms


@dataclass
class Form:
    """A posted form (URL-encoded), its CSRF token already checked."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[0] if found else default

    def optional(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None

    def section(self, prefix: str, keys: Iterable[str]) -> dict[str, str | None]:
        """The texts of the inputs named ``prefix + key`` (``None`` for an absent one)."""
        return {key: self.optional(prefix + key) for key in keys}


def _same_origin(request: Request) -> bool:
    """Whether a POST came from one of our pages: browsers send ``Origin`` with every POST
    (``null`` from a sandbox); a client that sends none has only its token to show."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return security.same_origin(origin, request.headers.get("host", ""))


async def stored_text_only(request: Request) -> None:
    """Answer "not found" for a path or query parameter no database stores (NUL, a lone
    surrogate): PostgreSQL cannot even compare it, and nothing can be named by it."""
    found = [*request.path_params.values(), *request.query_params.values()]
    if any(isinstance(value, str) and text_problem(value) for value in found):
        raise PageError(404, "Not found", "Nothing here has a name like that.")


async def posted_form(request: Request) -> Form:
    """The request's form, once its CSRF token and origin have been checked (403 otherwise)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageError(413, "Too large", "The form is larger than this server accepts.")
    values = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    form = Form(values)
    token = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    guard: Guard = request.app.state.ui_guard
    if not _same_origin(request) or not guard.csrf_valid(request.cookies.get(CSRF_COOKIE), token):
        raise PageError(
            403,
            "Form refused",
            "This form's security token is missing or out of date (or it came from another "
            "site). Go back, reload the page and try again.",
        )
    return form


UI = Annotated[Ui, Depends(logged_in_ui)]
PublicUI = Annotated[Ui, Depends(public_ui)]
Posted = Annotated[Form, Depends(posted_form)]


# ---------------------------------------------------------------- lists


@dataclass
class Paged(Generic[T]):
    """One page of a list; pages fetch ``limit`` rows (one more than shown) at ``offset``."""

    ui: Ui
    number: int
    items: list[T] = field(default_factory=list)
    has_next: bool = False
    size: int = PAGE_SIZE

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def limit(self) -> int:
        return self.size + 1

    def fill(self, rows: Sequence[T]) -> Paged[T]:
        self.items = list(rows[: self.size])
        self.has_next = len(rows) > self.size
        return self

    @property
    def prev_url(self) -> str | None:
        return self.ui.url_with(page=self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.ui.url_with(page=self.number + 1) if self.has_next else None


def paged(ui: Ui, name: str = "page") -> Paged[Any]:
    return Paged(ui=ui, number=ui.number(name))


# ---------------------------------------------------------------- errors


def safe_next(path: str) -> str:
    """A local path to go to after login; anything else (another site) becomes ``/``."""
    local = path.startswith("/") and not path.startswith("//") and "\\" not in path
    return path if local else "/"


async def _login_required(request: Request, _exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    login = "/login?" + urlencode({"next": safe_next(target)})
    if request.headers.get("hx-request"):
        # a live fragment: send the whole page to the login form, not the fragment
        return Response(status_code=401, headers={"HX-Redirect": login})
    return redirect(login)


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageError)
    ui = _ui(request)
    response = ui.page("error.html", status=exc.status, title=exc.title, detail=exc.detail)
    return response


# what a page's path parameter names, for the 404 page of a value that cannot be one
PATH_NOUNS = {"run_id": "flow run", "task_run_id": "task run"}
EXAMPLE_ID = "0f5c3a52-8a1e-4b7c-9d3e-2f6a1b4c5d6e"


async def _bad_path(request: Request, exc: Exception) -> Response:
    """A path parameter of the wrong type (``/runs/not-a-uuid``) names nothing: the 404 page,
    saying what was not found, instead of the API's JSON 422."""
    assert isinstance(exc, RequestValidationError)
    names = [str(e["loc"][1]) for e in exc.errors() if tuple(e.get("loc", ()))[:1] == ("path",)]
    if not names:
        error = PageError(400, "Bad request", "This page cannot read what the address asks for.")
        return await _page_error(request, error)
    noun = PATH_NOUNS.get(names[0], names[0].removesuffix("_id").replace("_", " "))
    value = str(request.path_params.get(names[0], ""))[:100]
    detail = f"There is no {noun} with the id “{value}”: a {noun}'s id looks like {EXAMPLE_ID}."
    return await _page_error(request, PageError(404, f"{noun.capitalize()} not found", detail))


def install(app: FastAPI) -> None:
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageError, _page_error)
    app.add_exception_handler(RequestValidationError, _bad_path)


def start_session(
    request: Request, response: Response, guard: Guard, caller: Caller | None = None
) -> None:
    scope, key_id = (caller.scope.value, caller.key_id) if caller else ("admin", None)
    session = guard.new_session(scope=scope, key_id=key_id)
    set_cookie(request, response, SESSION_COOKIE, session, max_age=SESSION_SECONDS)


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
