"""The OpenAPI schema (``/api/openapi.json``): every status a route can answer, with its body.

FastAPI documents each route's success and a 422 whose body is its own, not ours. The
schema it makes is completed here, in one pass over the routes, with what the rest of the
server answers (the rules below) and with the body every error has
(``schemas.ErrorBody``; a 422's is ``schemas.ValidationErrorBody``):

- 400 on every route: a ``Host`` header this server does not answer to (``security``).
- 401 on every route but the health check, when the server requires its API key; the
  schema then also declares the key as a bearer security scheme. With per-key rate limits
  on (``DOCKYARD_SERVER_RATE_LIMIT_PER_SECOND``), 429 on those routes too.
- 403 and 415 on every write: a write from another site's page, a body that is not JSON.
- 413 on every route: a body over the server's size limit.
- 404 on every route with a path parameter: what it names does not exist.
- 422, where FastAPI declares it (a route that takes a parameter or a body) or a router
  does (one that checks every query string, ``deps.PARAMETERS``), has our body.

What a route answers beyond these (a 409, a 404 for a name in its body) it declares itself
with ``responses=answers(...)``. A method a path does not take answers 405 (``Allow``
lists those it does); OpenAPI has no place for that on an operation, so the schema's
description says it. The UI's routes are not in the schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from dockyard import schemas
from dockyard.server.security import OPEN_PATHS, WRITES

__all__ = ["answers", "install"]

Schema = dict[str, Any]

DESCRIPTIONS = {
    400: "The Host header names a host this server does not answer to "
    "(DOCKYARD_SERVER_ALLOWED_HOSTS)",
    401: "The API key is missing or wrong: send 'Authorization: Bearer <key>'",
    403: "A write from a page of another site (its Origin is not this server)",
    404: "What the path (or the field named) refers to does not exist",
    409: "Refused in the current state of things (current_state says the run's)",
    413: "The body is larger than the server takes (DOCKYARD_SERVER_MAX_BODY_BYTES)",
    415: "The body is not JSON: send it with 'Content-Type: application/json'",
    422: "A value was refused: field names it, errors lists every problem",
    429: "Too many requests with this API key: try again after Retry-After seconds",
}
SECURITY_SCHEME = "apiKey"
OPENAPI_PATH = "/api/openapi.json"
API_DESCRIPTION = (
    "Dockyard's REST API. Every status a route can answer is listed with its body; every "
    "error's body is an ErrorBody (a 422's a ValidationErrorBody). A method a path does not "
    "take answers 405 with an Allow header; a path that is no route answers 404."
)


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers ``statuses`` beyond the rules of this module."""
    return {
        status: {
            "model": schemas.ValidationErrorBody if status == 422 else schemas.ErrorBody,
            "description": DESCRIPTIONS[status],
        }
        for status in statuses
    }


def install(app: FastAPI, *, key_required: bool, rate_limited: bool = False) -> None:
    """Make ``app.openapi`` answer the completed schema (built once, at its first call), and
    serve ``/api/openapi.json``: the schema for the server as it is now, which requires keys
    from the first key made through the API on, even without a bootstrap key."""
    built: dict[bool, Schema] = {}

    def schema_for(keyed: bool) -> Schema:
        if keyed not in built:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=API_DESCRIPTION,
                routes=app.routes,
            )
            complete(schema, key_required=keyed, rate_limited=rate_limited)
            built[keyed] = schema
        return built[keyed]

    async def current(request: Request) -> Schema:
        keys = getattr(request.app.state, "api_keys", None)
        return schema_for(key_required or (keys is not None and await keys.required()))

    async def served(request: Request) -> JSONResponse:
        return JSONResponse(await current(request))

    app.openapi = lambda: schema_for(key_required)  # type: ignore[method-assign]
    app.state.openapi = current
    app.add_api_route(OPENAPI_PATH, served, include_in_schema=False)


def complete(schema: Schema, *, key_required: bool, rate_limited: bool = False) -> None:
    """Add to ``schema``, as FastAPI made it, what this module's rules say."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (schemas.ErrorBody, schemas.ValidationErrorBody):
        _add_component(components, model)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            answered = operation.setdefault("responses", {})
            keyed = key_required and path not in OPEN_PATHS
            for status in _statuses(method.upper(), operation, keyed=keyed, limited=rate_limited):
                answered.setdefault(str(status), _answer(status))
            if "422" in answered:  # FastAPI's own body of a 422 is not ours
                answered["422"] = _answer(422)
            if keyed:
                operation["security"] = [{SECURITY_SCHEME: []}]
            operation["responses"] = dict(sorted(answered.items()))
    if key_required:
        schema["components"]["securitySchemes"] = {
            SECURITY_SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's DOCKYARD_SERVER_API_KEY (clients: DOCKYARD_API_KEY)",
            }
        }
    # FastAPI's model of a 422, which no answer has any more
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _statuses(method: str, operation: Schema, *, keyed: bool, limited: bool) -> set[int]:
    found = {400, 413}
    if keyed:
        found |= {401, 429} if limited else {401}
    if method in WRITES:
        found |= {403, 415}
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        found.add(404)
    return found


def _answer(status: int) -> Schema:
    model = schemas.ValidationErrorBody if status == 422 else schemas.ErrorBody
    return {
        "description": DESCRIPTIONS[status],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }


def _add_component(components: Schema, model: type[BaseModel]) -> None:
    found = model.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    for name, definition in found.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components[model.__name__] = found
