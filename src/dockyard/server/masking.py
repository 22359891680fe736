"""Secret values are never shown: whatever a JSON schema marks ``"format": "password"``, and
the credentials a URL carries.

Every answer of the API and every page of the UI shows a pool's template, a deployment's and
a run's job variables, and a deployment's pull steps through this module. Only a worker's
claim, and the engine holding a run's lease, get them in clear (they need them).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dockyard._redact import redact_url, redact_urls
from dockyard.server.errors import Invalid

MASK = "••••••"


def resolve(spec: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` with a local ``$ref`` (``#/$defs/X``) followed; ``{}`` for anything else."""
    if not isinstance(spec, dict):
        return {}
    ref = spec.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return {**resolve(target, root), **{k: v for k, v in spec.items() if k != "$ref"}}
    return spec


def is_secret(spec: Any, root: Mapping[str, Any]) -> bool:
    return resolve(spec, root).get("format") == "password"


def mask(value: Any, spec: Any, root: Mapping[str, Any]) -> Any:
    """A copy of ``value`` with every part that ``spec`` marks secret replaced by the mask."""
    spec = resolve(spec, root)
    if value is None or value == "":
        return value
    if spec.get("format") == "password":
        return MASK
    variants = [resolve(s, root) for s in spec.get("anyOf", []) + spec.get("oneOf", [])]
    if any(v.get("format") == "password" for v in variants):
        return MASK
    if isinstance(value, dict):
        properties = spec.get("properties", {})
        extra = spec.get("additionalProperties", {})
        for variant in variants:
            properties = {**variant.get("properties", {}), **properties}
        return {k: mask(v, properties.get(k, extra), root) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(item, spec.get("items", {}), root) for item in value]
    return value


def mask_variables(variables: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """Job variables (a deployment's or a run's) as the pool's template allows showing them."""
    schema = template.get("variables", {})
    properties = schema.get("properties", {})
    shown: dict[str, Any] = {}
    for key, value in variables.items():
        if "." in key:  # a dotted key (``registry_credentials.password``) names one entry
            shown[key] = MASK if _dotted_secret(key, schema) else value
        else:
            shown[key] = mask(value, properties.get(key, {}), schema)
    return shown


def _dotted_secret(key: str, schema: Mapping[str, Any]) -> bool:
    spec: Any = schema
    for part in key.split("."):
        spec = resolve(spec, schema).get("properties", {}).get(part, {})
    return is_secret(spec, schema)


def mask_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """A base job template with the defaults of secret variables masked."""
    shown = copy.deepcopy(dict(template))
    schema = shown.get("variables", {})
    for spec in schema.get("properties", {}).values():
        if isinstance(spec, dict) and "default" in spec:
            spec["default"] = mask(spec["default"], spec, schema)
    return shown


def mask_pull_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pull steps with the credentials of their URLs hidden (``git_clone``'s repository)."""
    shown: list[dict[str, Any]] = redact_urls(steps)
    return shown


def restore(new: Any, old: Any, field: str) -> Any:
    """``new`` with what this module hid put back from ``old`` (the value stored now).

    An answer read, edited and sent back (a pool's template, a deployment's job variables
    or pull steps) carries the mask where a secret was: the secret is kept, not replaced by
    the mask. A mask with no stored value behind it is refused (``Invalid``, naming where).
    """
    if isinstance(new, str):
        if new == MASK:
            if old is None or old == MASK:
                raise Invalid(
                    f"{field} holds the mask of a secret value ('{MASK}'); give the value itself",
                    field=field,
                )
            return old
        if "://***@" in new and isinstance(old, str) and redact_url(old) == new:
            return old
        return new
    if isinstance(new, dict):
        before = old if isinstance(old, dict) else {}
        return {key: restore(item, before.get(key), f"{field}.{key}") for key, item in new.items()}
    if isinstance(new, list):
        items = old if isinstance(old, list) else []
        return [
            restore(item, items[i] if i < len(items) else None, f"{field}.{i}")
            for i, item in enumerate(new)
        ]
    return new
