"""Forms built from a JSON schema's properties (a pool type's ``variables``, a deployment's
``parameter_schema``), and the values read back from them.

Each property gets an input by its type: text, number, a checkbox, a list for an ``enum``, a
password box for ``"format": "password"`` (never filled in), and a JSON text area for objects,
arrays and anything else. An empty input means "no value" (the default applies).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.server.masking import resolve

INVALID = object()  # a value that could not be read; its error is in the errors dict


@dataclass
class Field:
    """One input of a schema-built form."""

    name: str  # the form field's name: prefix + property
    key: str  # the property
    label: str
    kind: str  # text, integer, number, checkbox, select, password, flex, json
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    required: bool = False
    description: str = ""
    type_hint: str = ""
    error: str | None = None


def _types(spec: Mapping[str, Any], root: Mapping[str, Any]) -> list[str]:
    kind = spec.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    variants = [resolve(v, root) for v in spec.get("anyOf", []) + spec.get("oneOf", [])]
    return [t for v in variants for t in _types(v, root)]


def kind_of(spec: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    spec = resolve(spec, root)
    if "enum" in spec:
        return "select"
    if spec.get("format") == "password":
        return "password"
    types = [t for t in _types(spec, root) if t != "null"]
    if len(types) == 1 and types[0] in ("string", "integer", "number", "boolean"):
        return {"string": "text", "boolean": "checkbox"}.get(types[0], types[0])
    if "string" in types:
        return "flex"  # text, or JSON when it reads as one of the other types
    return "json"


def _shown(kind: str, value: Any) -> str:
    if value is None or kind == "password":
        return ""
    if kind in ("json", "flex") and not isinstance(value, str):
        return json.dumps(value, indent=2)
    if kind == "json":
        return json.dumps(value)
    return str(value)


def build(
    schema: Mapping[str, Any],
    values: Mapping[str, Any],
    prefix: str,
    errors: Mapping[str, str],
    typed: Mapping[str, str | None] | None = None,
) -> list[Field]:
    """The fields of ``schema``'s properties, showing ``values`` (by property name).

    ``typed``: the texts as a person typed them, shown instead where a field has an error.
    """
    required = set(schema.get("required", []))
    properties = schema.get("properties", {})
    ordered = sorted(properties.items(), key=lambda kv: _position(kv[1]))
    fields = []
    for key, raw_spec in ordered:
        spec = resolve(raw_spec, schema)
        kind = kind_of(spec, schema)
        value = values.get(key)
        shown = _shown(kind, value)
        if typed is not None and key in errors and kind != "password":
            shown = typed.get(key) or ""
        fields.append(
            Field(
                name=prefix + key,
                key=key,
                label=str(spec.get("title") or key),
                kind=kind,
                value=shown,
                checked=value is True,
                options=[str(o) for o in spec.get("enum", [])],
                required=key in required,
                description=str(spec.get("description") or ""),
                type_hint=" or ".join(_types(spec, schema)) or "any",
                error=errors.get(key),
            )
        )
    return fields


def _position(spec: Any) -> float:
    position = spec.get("position") if isinstance(spec, dict) else None
    return float(position) if isinstance(position, int | float) else float("inf")


def read(
    schema: Mapping[str, Any], raw: Mapping[str, str | None], errors: dict[str, str]
) -> dict[str, Any]:
    """Values typed into a schema-built form, by property; unreadable ones go to ``errors``.

    ``raw`` maps each property to its input's text (``None`` for an unchecked checkbox).
    Properties left empty are not in the result.
    """
    values: dict[str, Any] = {}
    for key, spec in schema.get("properties", {}).items():
        kind = kind_of(spec, schema)
        value = _read_one(kind, raw.get(key), resolve(spec, schema), schema)
        if value is INVALID:
            errors[key] = _READ_ERRORS[kind]
        elif value is not None:
            values[key] = value
    return values


_READ_ERRORS = {
    "integer": "enter a whole number",
    "number": "enter a number",
    "json": 'enter valid JSON (e.g. {"key": "value"} or [1, 2])',
    "select": "pick one of the listed values",
}


def _read_one(kind: str, text: str | None, spec: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    if kind == "checkbox":
        return text is not None
    if text is None or text.strip() == "":
        return None
    if kind == "integer":
        return _number(text, int)
    if kind == "number":
        number = _number(text, float)
        return int(number) if isinstance(number, float) and number.is_integer() else number
    if kind == "select":
        return next((o for o in spec.get("enum", []) if str(o) == text), INVALID)
    if kind == "json":
        try:
            return json.loads(text)
        except ValueError:
            return INVALID
    if kind == "flex":
        return _flex(text, spec, root)
    return text


def _number(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        return INVALID


def _flex(text: str, spec: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """Text, unless it reads as JSON of another type the property allows (``512`` → 512)."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    allowed = set(_types(spec, root))
    kinds = {bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}
    found = kinds.get(type(parsed))
    if found in allowed or (found == "integer" and "number" in allowed):
        return parsed
    return text


def validate(schema: Mapping[str, Any], values: Mapping[str, Any], errors: dict[str, str]) -> None:
    """Check ``values`` against the object ``schema``; each problem goes to its property."""
    from jsonschema import Draft202012Validator

    for error in Draft202012Validator(dict(schema)).iter_errors(dict(values)):
        path = list(error.absolute_path)
        if path:
            key = str(path[0])
            where = ".".join(str(p) for p in path[1:])
            message = f"{where}: {error.message}" if where else error.message
        elif error.validator == "required":
            missing = [k for k in error.validator_value if k not in values]
            key, message = (missing[0] if missing else "__all__"), "a value is required"
        else:
            key, message = "__all__", error.message
        errors.setdefault(key, message)
