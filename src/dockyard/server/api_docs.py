"""``/docs``: the REST API's reference, rendered on the server from its OpenAPI schema.

A page of plain HTML with the UI's stylesheet: no script, and nothing fetched from anywhere
but this server. With an API key set, it is shown only to a browser logged in to the UI
with that key (others are sent to ``/login``), like every page of the UI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dockyard._version import __version__

__all__ = ["docs_page"]

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'none'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}
METHODS = ("get", "post", "put", "patch", "delete")

Schema = dict[str, Any]


def docs_page(api_key: str | None) -> Callable[..., Any]:
    """The route of ``/docs``: the schema as the server is now (``app.state.openapi``: keys
    are required from the first one made on), rendered once for each, at first need."""
    rendered: dict[bool, str] = {}

    async def docs(request: Request) -> Response:
        # the UI's login, imported with the page as the UI's modules are (not at start)
        from dockyard.server.ui.auth import SESSION_COOKIE, Guard

        state = request.app.state
        guard = getattr(state, "ui_guard", None)  # made when the UI is first asked for
        if guard is None:
            guard = Guard.from_api_key(api_key, getattr(state, "api_keys", None))
        await guard.prepare()
        if not guard.session_valid(request.cookies.get(SESSION_COOKIE)):
            return RedirectResponse(
                "/login?next=%2Fdocs", 303, headers={"cache-control": "no-store"}
            )
        keyed = guard.login_required
        if keyed not in rendered:
            rendered[keyed] = render(await request.app.state.openapi(request), key_required=keyed)
        return HTMLResponse(rendered[keyed], headers=HEADERS)

    return docs


def render(schema: Schema, *, key_required: bool) -> str:
    """The whole page for ``schema`` (an OpenAPI 3 document)."""
    tags = _operations_by_tag(schema)
    key = (
        " (send <code>Authorization: Bearer &lt;key&gt;</code>: this server requires its API key)"
        if key_required
        else ""
    )
    contents = " · ".join(f'<a href="#{_anchor("tag", t)}">{escape(t)}</a>' for t in tags)
    parts = [
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>REST API · Dockyard</title>",
        '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">',
        f'<link rel="stylesheet" href="/static/dockyard.css?v={escape(__version__)}">',
        '</head>\n<body>\n<header class="topbar"><a class="brand" href="/"><span>Dockyard</span>'
        "</a></header>",
        '<main class="container stack">',
        '<div class="page-head"><h1>REST API</h1>',
        f'<p class="subtitle muted">Dockyard {escape(__version__)}: every route lives under '
        f"<code>/api</code>{key}. The OpenAPI schema: "
        '<a href="/api/openapi.json"><code>/api/openapi.json</code></a>.</p>',
        f'<p class="small">{contents} · <a href="#schemas">schemas</a></p></div>',
    ]
    for tag, operations in tags.items():
        parts.append(_tag_section(tag, operations))
    parts.append(_schemas_section(schema.get("components", {}).get("schemas", {})))
    parts.append("</main>\n</body>\n</html>\n")
    return "\n".join(parts)


def _operations_by_tag(schema: Schema) -> dict[str, list[tuple[str, str, Schema]]]:
    tags: dict[str, list[tuple[str, str, Schema]]] = {}
    for path, item in schema.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is not None:
                tag = (operation.get("tags") or ["other"])[0]
                tags.setdefault(tag, []).append((method.upper(), path, operation))
    return tags


def _tag_section(tag: str, operations: list[tuple[str, str, Schema]]) -> str:
    rows = "\n".join(_operation_row(method, path, op) for method, path, op in operations)
    return (
        f'<section class="card flush" id="{_anchor("tag", tag)}">'
        f'<div class="card-head"><h2>{escape(tag)}</h2></div>'
        '<div class="table-wrap"><table><thead><tr><th>method</th><th>path</th><th>what</th>'
        "<th>takes</th><th>answers</th></tr></thead>\n<tbody>\n"
        f"{rows}\n</tbody></table></div></section>"
    )


def _operation_row(method: str, path: str, operation: Schema) -> str:
    what = escape(operation.get("summary", ""))
    if operation.get("description"):
        what += f'<p class="small muted">{escape(operation["description"])}</p>'
    takes = [_parameter(p) for p in operation.get("parameters", ())]
    body = operation.get("requestBody")
    if body is not None:
        takes.append(f"body: {_content_type(body)}")
    answers = [
        f"<b>{escape(status)}</b> {_content_type(answer) or escape(answer.get('description', ''))}"
        for status, answer in operation.get("responses", {}).items()
    ]
    return (
        f'<tr><td class="nowrap"><code>{method}</code></td><td><code>{escape(path)}</code></td>'
        f"<td>{what}</td><td>{'<br>'.join(takes) or '—'}</td><td>{'<br>'.join(answers)}</td></tr>"
    )


def _parameter(parameter: Schema) -> str:
    name = f"<code>{escape(parameter.get('name', ''))}</code>"
    where = escape(parameter.get("in", ""))
    needed = "" if parameter.get("required") else ", optional"
    return f"{name} ({where}{needed}): {type_html(parameter.get('schema', {}))}"


def _content_type(container: Schema) -> str:
    media = container.get("content", {})
    found = media.get("application/json") or next(iter(media.values()), None)
    return type_html(found.get("schema", {})) if found else ""


def _schemas_section(schemas: dict[str, Schema]) -> str:
    parts = ['<section class="card" id="schemas"><div class="card-head"><h2>Schemas</h2></div>']
    for name, schema in sorted(schemas.items()):
        parts.append(f'<h3 class="mono" id="{_anchor("schema", name)}">{escape(name)}</h3>')
        if schema.get("description"):
            parts.append(f'<p class="small muted">{escape(schema["description"])}</p>')
        properties = schema.get("properties")
        if not properties:
            parts.append(f"<p>{type_html(schema)}</p>")
            continue
        required = set(schema.get("required", ()))
        rows = "\n".join(
            f"<tr><td><code>{escape(field)}</code></td><td>{type_html(value)}</td>"
            f"<td>{'required' if field in required else _default(value)}</td>"
            f"<td>{escape(value.get('description', ''))}</td></tr>"
            for field, value in properties.items()
        )
        parts.append(
            '<div class="table-wrap"><table><thead><tr><th>field</th><th>type</th>'
            f"<th>required</th><th>about</th></tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _default(schema: Schema) -> str:
    if "default" not in schema:
        return "optional"
    return f"default <code>{escape(json.dumps(schema['default']))}</code>"


def type_html(schema: Schema) -> str:
    """A JSON schema as a short phrase: ``string (1 to 100 characters)``, ``array of Log``."""
    return " ".join(_type_words(schema))


def _type_words(schema: Schema) -> Iterator[str]:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        yield f'<a href="#{_anchor("schema", name)}">{escape(name)}</a>'
    elif "anyOf" in schema or "oneOf" in schema:
        yield " | ".join(type_html(s) for s in schema.get("anyOf") or schema["oneOf"])
    elif "allOf" in schema:
        yield " & ".join(type_html(s) for s in schema["allOf"])
    elif "enum" in schema:
        yield "one of " + ", ".join(f"<code>{escape(json.dumps(v))}</code>" for v in schema["enum"])
    elif "const" in schema:
        yield f"<code>{escape(json.dumps(schema['const']))}</code>"
    elif schema.get("type") == "array":
        yield f"array of {type_html(schema.get('items', {}))}"
    elif schema.get("type") == "object" and isinstance(schema.get("additionalProperties"), dict):
        yield f"object of {type_html(schema['additionalProperties'])}"
    elif schema.get("type") == "null":
        yield "null"
    else:
        kind = escape(str(schema.get("type", "any")))
        yield f"{kind} ({escape(schema['format'])})" if "format" in schema else kind
    limits = list(_limits(schema))
    if limits:
        yield f'<span class="muted">({", ".join(limits)})</span>'


def _limits(schema: Schema) -> Iterator[str]:
    for low, high, unit in (
        ("minLength", "maxLength", " characters"),
        ("minItems", "maxItems", " items"),
        ("minimum", "maximum", ""),
    ):
        if low in schema and high in schema:
            yield f"{_number(schema[low])} to {_number(schema[high])}{unit}"
        elif low in schema:
            yield f"at least {_number(schema[low])}{unit}"
        elif high in schema:
            yield f"at most {_number(schema[high])}{unit}"
    if "pattern" in schema:
        yield f"matching <code>{escape(schema['pattern'])}</code>"


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON schema bounds of integers may come as 0.0
    return escape(str(value))


def _anchor(kind: str, name: str) -> str:
    return escape(f"{kind}-{name}".replace(" ", "-"))
