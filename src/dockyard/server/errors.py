"""API errors: every refusal names what was wrong and, where it helps, what to do.

When the database cannot be reached (refused, connection lost, no pooled connection in
time: ``db.unreachable``), every route answers 503 with ``Retry-After`` and
:func:`outage_body`, never a 500: the request did nothing, and clients retry it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dockyard.server.db import unreachable
from dockyard.server.security import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("dockyard.server")

UNEXPECTED = (
    "the server met an unexpected error while answering this request: this is a bug in "
    "Dockyard; the server's log tells what happened, please report it"
)

# what a 503 asks clients to wait: long enough not to hammer a database coming back, short
# enough that work resumes soon after
RETRY_AFTER_SECONDS = 2


def outage_body() -> dict[str, Any]:
    """The body of a 503 for a database outage (``retry_after`` repeats the header for
    clients that read bodies only)."""
    return {
        "detail": (
            "the database is unreachable: this server cannot answer now; retry after "
            f"{RETRY_AFTER_SECONDS} s (the server's log says why)"
        ),
        "retry_after": RETRY_AFTER_SECONDS,
    }


def outage_response() -> JSONResponse:
    return JSONResponse(
        outage_body(), status_code=503, headers={"retry-after": str(RETRY_AFTER_SECONDS)}
    )


class ApiError(Exception):
    """Raised by routes and models to answer with an error status and an ``ErrorBody``."""

    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class Invalid(ApiError):
    """A value was refused; ``field`` names it. Its body is that of every 422
    (``schemas.ValidationErrorBody``), as a body that does not fit its schema gets."""

    status = 422

    def __init__(self, detail: str, *, field: str, **extra: Any) -> None:
        super().__init__(detail, field=field, **extra)
        self.field = field

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [{"field": self.field, "message": self.detail}]}


def _field_name(loc: tuple[Any, ...]) -> str:
    # only the first item says where the value was: a field may itself be named "path"
    where = 1 if loc and loc[0] in ("body", "query", "path") else 0
    return ".".join(str(p) for p in loc[where:]) or "body"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field_name(tuple(e.get("loc", ()))),
            "message": str(e.get("msg", "invalid")).removeprefix("Value error, "),
        }
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "invalid request"}
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse(
        {"detail": detail, "field": first["field"], "errors": errors}, status_code=422
    )


async def _lost_race(_request: Request, _exc: Exception) -> JSONResponse:
    # Database.write_retrying tries again; this answers only when every try lost
    return JSONResponse(
        {
            "detail": "the flow run changed while this request was being decided",
            "hint": "read it again and retry",
        },
        status_code=409,
    )


def install(app: FastAPI) -> None:
    from sqlalchemy.orm.exc import StaleDataError

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StaleDataError, _lost_race)


class UnexpectedErrors:
    """Answer an unexpected exception with a JSON 500 that shows no internals, and keep the
    connection open for the client's next request; the traceback goes to the server's log.

    A database outage (``db.unreachable``) is answered 503 with ``Retry-After`` instead, and
    logged in one line: it is expected, and its traceback would say nothing more.

    Starlette's last resort answers plain text and raises the exception again, and the ASGI
    server then drops the connection: this middleware sits outside every other one so that
    nothing reaches that far. A response already started cannot be taken back: the ASGI
    server then ends the connection mid-answer, as it must.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            outage = unreachable(exc)
            if outage:
                log.warning(
                    "%s %s: the database is unreachable (%s: %s)",
                    scope.get("method"),
                    scope.get("path"),
                    type(exc).__name__,
                    exc,
                )
            else:
                log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            if started:
                return
            status = 503 if outage else 500
            body = json.dumps(outage_body() if outage else {"detail": UNEXPECTED}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            if outage:
                headers.append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
