"""Turning the API's error answers into exceptions, for the client and the SDK's transport.

One exception class per status; the message is the answer's ``detail`` (a refused value
names its field) followed by its ``hint``, and the whole JSON body rides along on the
exception. Standard library only: the SDK's lean transport imports it on every run's path.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from dockyard.exceptions import (
    ApiError,
    Conflict,
    InvalidInput,
    NotFound,
    ServerError,
    Unauthorized,
)

__all__ = ["error_for"]

_ERRORS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Unauthorized,
    404: NotFound,
    409: Conflict,
    422: InvalidInput,
}


def error_for(status: int, data: bytes, method: str, path: str) -> ApiError:
    """Return the exception for an error answer of ``status`` with body ``data``."""
    what = f"{method} {path.partition('?')[0]}"
    body = _body(status, data, what)
    cls = _ERRORS.get(status) or (ServerError if status >= 500 else ApiError)
    detail = str(body["detail"])
    field = body.get("field")
    if status == 422 and field and str(field) not in detail:
        detail = f"invalid {field}: {detail}"
    if detail == _phrase(status):  # the framework's bare "Not Found": say what was asked
        detail = f"{detail} ({what})"
    hint = body.get("hint")
    if not hint and status in (401, 403):
        hint = "set DOCKYARD_API_KEY to the server's API key"
    if not hint and status >= 500:
        hint = "this is a bug in the server; its log has the details"
    return cls(status, f"{detail}\n{hint}" if hint else detail, body)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _body(status: int, data: bytes, what: str) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        text = data.decode(errors="replace").strip()[:200]
        return {"detail": f"HTTP {status} answering {what}" + (f": {text}" if text else "")}
    detail = body.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        # the web framework's own validation answer: a list of {"loc", "msg"} entries
        first = detail[0]
        loc = [str(p) for p in first.get("loc", []) if p not in ("body", "query", "path")]
        body = {**body, "detail": str(first.get("msg", "invalid value"))}
        body.setdefault("field", ".".join(loc) or None)
    elif not isinstance(detail, str):
        body = {**body, "detail": f"HTTP {status} answering {what}"}
    return body
