"""Job variables: merging, validation and rendering a pool's base job template.

Precedence: the ``variables`` schema's defaults < the deployment's ``job_variables`` < the
run's ``job_variables``. ``env`` dictionaries merge key by key; other keys are replaced.
Dotted keys (``env.FOO``) address one entry of a dictionary variable.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dockyard.server.errors import Invalid
from dockyard.server.templates import PLACEHOLDER

MERGED_KEYS = frozenset({"env", "labels"})
_MISSING = object()


def expand(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys (``env.FOO: "1"``) into nested ones (``env: {FOO: "1"}``)."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        head, dot, rest = key.partition(".")
        if dot:
            target = out.setdefault(head, {})
            if not isinstance(target, dict):
                raise Invalid(f"job variable '{head}' is not a dictionary", field=key)
            target[rest] = value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge variable layers, later ones winning; ``env`` and ``labels`` merge key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in expand(layer).items():
            if key in MERGED_KEYS and isinstance(value, dict):
                merged[key] = {**(merged.get(key) or {}), **value}
            else:
                merged[key] = value
    return merged


def defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    properties = template.get("variables", {}).get("properties", {})
    return {
        name: copy.deepcopy(spec["default"])
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec
    }


def validate_variables(template: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
    """Check each given variable against the pool's schema; raise ``Invalid`` naming it."""
    from jsonschema import Draft202012Validator

    schema = template.get("variables", {})
    properties = schema.get("properties", {})
    for name, value in expand(variables).items():
        if name not in properties:
            known = ", ".join(sorted(properties)) or "none"
            raise Invalid(
                f"unknown job variable '{name}'; this pool's template declares: {known}",
                field=f"job_variables.{name}",
            )
        spec = {**properties[name], "$defs": schema.get("$defs", {})}
        if name in MERGED_KEYS and isinstance(value, dict):
            # entries are checked one by one: a run may add to the deployment's env
            spec = {"type": "object", **{k: v for k, v in spec.items() if k != "required"}}
        error = next(iter(Draft202012Validator(spec).iter_errors(value)), None)
        if error is not None:
            where = ".".join(str(p) for p in (name, *error.absolute_path))
            raise Invalid(
                f"job variable '{where}': {error.message}", field=f"job_variables.{where}"
            )


def render(
    template: Mapping[str, Any],
    variables: Mapping[str, Any],
    environ: Mapping[str, str] | None,
) -> dict[str, Any]:
    """Render ``job_configuration`` with ``variables`` (already merged over the defaults).

    A value that is exactly ``{{ name }}`` becomes the variable's typed value, a placeholder
    inside other text is substituted as text, a variable with no value removes its key, and
    ``{{ $NAME }}`` reads ``environ`` (``None`` leaves those placeholders for the worker).
    """
    config = template.get("job_configuration", {})
    rendered = _render(config, variables, environ)
    return rendered if isinstance(rendered, dict) else {}


def _lookup(name: str, variables: Mapping[str, Any], environ: Mapping[str, str] | None) -> Any:
    if name.startswith("$"):
        if environ is None:
            return "{{ " + name + " }}"
        return environ.get(name[1:], _MISSING)
    value = variables.get(name, _MISSING)
    return _MISSING if value is None else value


def _render(value: Any, variables: Mapping[str, Any], environ: Mapping[str, str] | None) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            rendered = _render(item, variables, environ)
            if rendered is not _MISSING:
                out[key] = rendered
        return out
    if isinstance(value, list):
        return [r for r in (_render(v, variables, environ) for v in value) if r is not _MISSING]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        found = _lookup(whole.group(1), variables, environ)
        return found if found is _MISSING else copy.deepcopy(found)

    def text(match: Any) -> str:
        found = _lookup(match.group(1), variables, environ)
        return "" if found is _MISSING else str(found)

    return PLACEHOLDER.sub(text, value)
