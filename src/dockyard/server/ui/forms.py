"""Forms: the inputs built from a JSON schema's properties (a pool type's ``variables``, a
deployment's ``parameter_schema``), the values read back from them, and the helpers every
form of the UI shares to report refusals.

Each property gets an input by its type: text, number, a checkbox, a list for an ``enum``, a
password box for ``"format": "password"`` (never filled in), and a JSON text area for objects,
arrays and anything else. An empty input means "no value" (the default applies).

With ``nested=True`` a property whose schema is an object with ``properties`` (a pydantic
model, perhaps behind ``$ref``, a one-item ``allOf`` or ``anyOf`` with ``null``) gets one
input per property instead of a JSON box, recursively; its inputs are named by the dotted
path (``param.options.retries``) and read back into the object. An object of which nothing
was typed (no text, no box ticked) has no value. Objects that cannot be mapped (extra keys
allowed, a ``$ref`` cycle, deeper than :data:`MAX_DEPTH`) keep the JSON box.

Refusals go into a dict by form field (``"__all__"`` for what names none): every form
collects its own and the API's (:func:`model_errors`, :func:`api_refusal`) and shows them
all at once, next to their fields, with what was typed kept.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from dockyard.server.masking import resolve
from dockyard.server.ui.web import PageError

if TYPE_CHECKING:
    from dockyard.server.errors import ApiError
    from dockyard.server.ui.web import Ui

INVALID = object()  # a value that could not be read; its error is in the errors dict
MAX_DEPTH = 4  # levels of nested objects built as inputs; deeper ones are JSON boxes
ALL = "__all__"  # the errors dict's key for a refusal that names no field

M = TypeVar("M", bound=BaseModel)


@dataclass
class Field:
    """One input of a schema-built form (or, of kind ``object``, a group of them)."""

    name: str  # the form field's name: prefix + property (dotted path when nested)
    key: str  # the property (its dotted path when nested)
    label: str
    kind: str  # text, integer, number, checkbox, select, password, flex, json, object
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    required: bool = False
    description: str = ""
    type_hint: str = ""
    error: str | None = None
    children: list[Field] = field(default_factory=list)  # an object's own inputs


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


def _model(
    spec: Any, root: Mapping[str, Any], seen: frozenset[str]
) -> tuple[dict[str, Any], frozenset[str], bool] | None:
    """The object schema whose properties get inputs of their own, the ``$ref``s followed
    to it, and whether ``null`` is allowed too; None where the property keeps a JSON box."""
    nullable = False
    for _ in range(8):  # $ref, allOf and anyOf wrap one another a few times at most
        if not isinstance(spec, dict):
            return None
        ref = spec.get("$ref")
        if isinstance(ref, str):
            if ref in seen or not ref.startswith("#/"):
                return None  # a model that holds itself: one JSON box
            seen, spec = seen | {ref}, resolve(spec, root)
            continue
        wrapped = _unwrapped(spec)
        if wrapped is None:
            break
        nullable = nullable or "allOf" not in spec
        spec = wrapped
    else:
        return None
    properties = spec.get("properties")
    if spec.get("type", "object") != "object" or not isinstance(properties, dict):
        return None
    if not properties or spec.get("additionalProperties") not in (None, False):
        return None  # extra keys (a dict, ``extra="allow"``) have no inputs
    return spec, seen, nullable


def _unwrapped(spec: dict[str, Any]) -> dict[str, Any] | None:
    """``{"allOf": [X]}`` or ``{"anyOf": [X, {"type": "null"}]}`` as X (the outer keys,
    such as a title or a default, kept); None for anything else."""
    outer = {k: v for k, v in spec.items() if k not in ("allOf", "anyOf", "oneOf")}
    all_of = spec.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        return {**all_of[0], **outer}
    variants = spec.get("anyOf", spec.get("oneOf"))
    if isinstance(variants, list):
        kept = [v for v in variants if not (isinstance(v, dict) and v.get("type") == "null")]
        if len(kept) == 1 and len(variants) == 2 and isinstance(kept[0], dict):
            return {**kept[0], **outer}
    return None


@dataclass(frozen=True)
class _Property:
    path: str  # dotted, from the form's root
    key: str  # the property's own name
    spec: dict[str, Any]  # resolved
    kind: str
    required: bool
    model: dict[str, Any] | None  # kind "object": the schema of its properties
    nullable: bool  # kind "object": null is allowed too (``Model | None``)
    seen: frozenset[str]
    depth: int


def _properties(
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    nested: bool,
    path: str = "",
    seen: frozenset[str] = frozenset(),
    depth: int = 0,
) -> Iterator[_Property]:
    """The properties of an object schema, by position, each with its input's kind."""
    required = _required(schema)
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return  # a schema the API stored as given may say anything
    for key, raw in sorted(properties.items(), key=lambda kv: _position(kv[1])):
        found = _model(raw, root, seen) if nested and depth < MAX_DEPTH else None
        spec = found[0] if found else resolve(raw, root)
        yield _Property(
            path=path + key,
            key=key,
            spec=spec,
            kind="object" if found else kind_of(raw, root),
            required=key in required,
            model=found[0] if found else None,
            nullable=found[2] if found else False,
            seen=found[1] if found else seen,
            depth=depth,
        )


def _required(schema: Mapping[str, Any]) -> set[str]:
    found = schema.get("required")
    return {k for k in found if isinstance(k, str)} if isinstance(found, list) else set()


def has_inputs(schema: Mapping[str, Any]) -> bool:
    """Whether ``schema`` names properties to build inputs for."""
    properties = schema.get("properties")
    return isinstance(properties, dict) and bool(properties)


def defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The defaults ``schema`` gives its properties (by property)."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return {}
    return {
        k: p["default"] for k, p in properties.items() if isinstance(p, dict) and "default" in p
    }


def _inner(prop: _Property, root: Mapping[str, Any], nested: bool) -> Iterator[_Property]:
    assert prop.model is not None
    yield from _properties(prop.model, root, nested, prop.path + ".", prop.seen, prop.depth + 1)


def paths(
    schema: Mapping[str, Any], *, nested: bool = False, inputs_only: bool = False
) -> list[str]:
    """Every field's key (dotted when nested); with ``inputs_only``, those of real inputs
    (not of the groups around nested ones): the names to read from a posted form."""
    found: list[str] = []

    def walk(props: Iterator[_Property]) -> None:
        for prop in props:
            if prop.kind == "object":
                if not inputs_only:
                    found.append(prop.path)
                walk(_inner(prop, schema, nested))
            else:
                found.append(prop.path)

    walk(_properties(schema, schema, nested))
    return found


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
    *,
    nested: bool = False,
    defaults: bool = False,
) -> list[Field]:
    """The fields of ``schema``'s properties, showing ``values`` (by property name).

    ``typed``: the texts as a person typed them (by key), shown instead where a field has
    an error. ``defaults``: a nested object's inputs show their schema's defaults where
    ``values`` gives none (a form shown for the first time), unless the object may be
    ``null`` and has no value: its inputs are then left empty (no value).
    """
    shown = _Shown(schema, prefix, errors, typed, nested, defaults)
    return _build(shown, _properties(schema, schema, nested), values, fill=False, active=True)


@dataclass(frozen=True)
class _Shown:
    """How a form is shown: what :func:`build` was given."""

    root: Mapping[str, Any]
    prefix: str
    errors: Mapping[str, str]
    typed: Mapping[str, str | None] | None
    nested: bool
    defaults: bool


def _build(
    how: _Shown, props: Iterator[_Property], values: Mapping[str, Any], *, fill: bool, active: bool
) -> list[Field]:
    """The fields of ``props`` showing ``values``; ``fill``: they show their defaults where
    ``values`` gives none; ``active``: the object they belong to has a value, or will."""
    fields = []
    for prop in props:
        spec, kind = prop.spec, prop.kind
        value = values.get(prop.key)
        if value is None and fill:
            value = copy.deepcopy(spec.get("default"))
        shown = _shown(kind, value) if kind != "object" else ""
        typed = how.typed
        if typed is not None and prop.path in how.errors and kind not in ("password", "object"):
            shown = typed.get(prop.path) or ""
        children: list[Field] = []
        if kind == "object":
            # an object's value leaves out what keeps its default (a box ticked by default
            # must show ticked); a form shown again shows what was typed, defaults or not
            inner_fill = typed is None and (
                isinstance(value, dict) or (how.defaults and active and not prop.nullable)
            )
            inner = value if isinstance(value, dict) else {}
            children = _build(
                how, _inner(prop, how.root, how.nested), inner, fill=inner_fill, active=inner_fill
            )
        fields.append(
            Field(
                name=how.prefix + prop.path,
                key=prop.path,
                label=str(spec.get("title") or prop.key),
                kind=kind,
                value=shown,
                checked=value is True,
                options=[str(o) for o in spec.get("enum", [])],
                required=prop.required,
                description=str(spec.get("description") or ""),
                type_hint="object"
                if kind == "object"
                else " or ".join(_types(spec, how.root)) or "any",
                error=how.errors.get(prop.path),
                children=children,
            )
        )
    return fields


def _position(spec: Any) -> float:
    position = spec.get("position") if isinstance(spec, dict) else None
    return float(position) if isinstance(position, int | float) else float("inf")


def read(
    schema: Mapping[str, Any],
    raw: Mapping[str, str | None],
    errors: dict[str, str],
    *,
    nested: bool = False,
) -> dict[str, Any]:
    """Values typed into a schema-built form, by property; unreadable ones go to ``errors``.

    ``raw`` maps each input's key (see :func:`paths`) to its text (``None`` for an
    unchecked checkbox). Properties left empty are not in the result; a nested object
    of which nothing was typed is not either.
    """
    return _read(_properties(schema, schema, nested), schema, raw, errors, nested)


def _read(
    props: Iterator[_Property],
    root: Mapping[str, Any],
    raw: Mapping[str, str | None],
    errors: dict[str, str],
    nested: bool,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for prop in props:
        if prop.kind == "object":
            below = [p for p in raw if p.startswith(prop.path + ".")]
            if not any((raw.get(p) or "").strip() for p in below):
                continue  # nothing typed, no box ticked: no value
            values[prop.key] = _read(_inner(prop, root, nested), root, raw, errors, nested)
            continue
        value = _read_one(prop.kind, raw.get(prop.path), prop.spec, root)
        if value is INVALID:
            errors[prop.path] = _READ_ERRORS[prop.kind]
        elif value is not None:
            values[prop.key] = value
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


def validate(
    schema: Mapping[str, Any],
    values: Mapping[str, Any],
    errors: dict[str, str],
    *,
    nested: bool = False,
) -> None:
    """Check ``values`` against the object ``schema``; each problem goes to the deepest
    field it concerns (with ``nested``, a nested object's own inputs)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from referencing.exceptions import Unresolvable

    known = set(paths(schema, nested=nested))
    try:
        Draft202012Validator.check_schema(dict(schema))
        found = list(Draft202012Validator(dict(schema)).iter_errors(dict(values)))
    except (SchemaError, Unresolvable):
        return  # a schema the API stored as given that is none: there is nothing to check
    for error in found:
        where = [str(p) for p in error.absolute_path]
        message = error.message
        if error.validator == "required":
            given = error.instance if isinstance(error.instance, dict) else {}
            missing = [k for k in error.validator_value if k not in given]
            where, message = where + missing[:1], "a value is required"
        key, rest = ALL, where
        for size in range(len(where), 0, -1):
            if ".".join(where[:size]) in known:
                key, rest = ".".join(where[:size]), where[size:]
                break
        errors.setdefault(key, f"{'.'.join(rest)}: {message}" if rest else message)


def loose(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` without its top-level ``required``: for defaults (a pool's, a
    deployment's), which may leave a value to be given later, by a run."""
    return {k: v for k, v in schema.items() if k != "required"}


# ---------------------------------------------------------------- refusals


class Refused(Exception):
    """Raised inside a write to roll back what a form changed when it has refusals to
    show: the API's checks run (so their refusals are shown too) but nothing is kept."""


def form_field(
    where: object, fields: Collection[str], aliases: Mapping[str, str] | None = None
) -> str:
    """The form field a refusal names (``"job_variables.env"`` → ``job_variables``), by
    its first part: one of ``fields``, or renamed by ``aliases``; else :data:`ALL`."""
    head = str(where or "").split(".")[0]
    if aliases and head in aliases:
        return aliases[head]
    return head if head in fields else ALL


def model_errors(
    exc: ValidationError, errors: dict[str, str], field_of: Callable[[str], str]
) -> None:
    """Each of a pydantic model's refusals, beside the form field it names."""
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        errors.setdefault(field_of(where), str(error["msg"]).removeprefix("Value error, "))


def checked(
    model: type[M],
    values: Mapping[str, Any],
    errors: dict[str, str],
    field_of: Callable[[str], str],
) -> M | None:
    """``model`` of ``values`` as the API reads a request body, or None with each refusal
    in ``errors`` (all of them: pydantic checks every field)."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        model_errors(exc, errors, field_of)
        return None


def partial(
    model: type[M],
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    field_of: Callable[[str], str],
) -> M | None:
    """``model`` of the ``values`` whose fields were not refused: what the API's own checks
    may still look at (in a transaction rolled back) while the form has refusals to show."""
    kept = {k: v for k, v in values.items() if field_of(k) not in errors}
    try:
        return model.model_validate(kept)
    except ValidationError:
        return None


def api_refusal(exc: ApiError, errors: dict[str, str], field_of: Callable[[str], str]) -> None:
    """An API refusal (``Invalid``, ``Conflict``) beside the form field it names."""
    errors.setdefault(field_of(str(exc.extra.get("field") or "")), exc.detail)


def json_object(text: str, name: str, errors: dict[str, str]) -> dict[str, Any] | None:
    """The JSON object typed (empty text: ``{}``); None, with the problem in ``errors``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except RecursionError:
        errors[name] = "nests too deeply; flatten it"
        return None
    except ValueError as exc:
        errors[name] = f"not valid JSON: {exc}"
        return None
    if not isinstance(value, dict):
        errors[name] = 'enter a JSON object, e.g. {"env": {"KEY": "value"}}'
        return None
    return value


def whole_number(text: str, name: str, errors: dict[str, str]) -> int | None:
    """The whole number typed (the API's model says whether it is in range); None for
    empty text, or with the problem in ``errors``."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = "enter a whole number, or leave it empty for none"
        return None


def tag_list(text: str) -> list[str]:
    """Tags typed as a comma-separated list."""
    return [tag.strip() for tag in text.split(",") if tag.strip()]


def admin_only(ui: Ui) -> None:
    """Refuse (403) a page whose form only an admin session may post."""
    if not ui.may_edit:
        raise PageError(
            403,
            "Not allowed",
            "You are logged in with a user key: it may start, cancel and resume runs only. "
            "Log in with an admin key to change this.",
        )
