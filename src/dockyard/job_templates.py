"""Job templates: the one definition of ``{{ placeholders }}``, of merging job variables, and
of rendering a pool's base job template into a run's job configuration.

A base job template has a ``job_configuration`` whose strings hold ``{{ name }}`` (a job
variable) and ``{{ $NAME }}`` (the environment of the worker that launches the run), and a
``variables`` JSON schema that declares the names and their defaults. A run's configuration
is the ``job_configuration`` rendered with the defaults < the deployment's job variables <
the run's (``env`` and ``labels`` merge key by key; ``env.FOO`` addresses one entry).

The server renders it to show it (``environ=None`` leaves ``$`` placeholders as they are); a
worker renders it with its own environment to launch the run. Only the pool's template
names the worker's environment: its ``job_configuration`` strings and its defaults. A value
a deployment or a run supplies is put in place as it is and never searched for
placeholders, so ``"{{ $AWS_SECRET_ACCESS_KEY }}"`` there stays plain text: nobody who can
create a run can read a worker's environment.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = [
    "MERGED_KEYS",
    "PLACEHOLDER",
    "JobVariableError",
    "configuration",
    "defaults",
    "expand",
    "merge",
    "placeholders",
    "render",
]

PLACEHOLDER = re.compile(r"\{\{\s*(\$?[A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MERGED_KEYS = frozenset({"env", "labels"})
_MISSING = object()  # no value: the key goes (or "" inside text)
_AS_IS = object()  # not this pass's to fill: the placeholder stays as written

Environ = Mapping[str, str] | None


class JobVariableError(ValueError):
    """Raised when job variables cannot be merged; ``field`` names the one at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def placeholders(value: Any) -> Iterator[str]:
    """Every placeholder name used anywhere in ``value`` (strings inside dicts and lists)."""
    if isinstance(value, str):
        yield from PLACEHOLDER.findall(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from placeholders(item)
    elif isinstance(value, list):
        for item in value:
            yield from placeholders(item)


def expand(variables: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys (``env.FOO: "1"``) into nested ones (``env: {FOO: "1"}``)."""
    out: dict[str, Any] = {}
    for key, value in variables.items():
        head, dot, rest = key.partition(".")
        if dot:
            target = out.setdefault(head, {})
            if not isinstance(target, dict):
                raise JobVariableError(f"job variable '{head}' is not a dictionary", field=key)
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


def defaults(template: Mapping[str, Any], environ: Environ) -> dict[str, Any]:
    """The defaults the template's ``variables`` declare, their ``{{ $NAME }}`` read from
    ``environ`` (left as they are when it is None)."""
    properties = template.get("variables", {}).get("properties", {})
    found = {
        name: copy.deepcopy(spec["default"])
        for name, spec in properties.items()
        if isinstance(spec, dict) and "default" in spec
    }
    filled = _walk(found, lambda name: _environment(name, environ) if name[0] == "$" else _AS_IS)
    return filled if isinstance(filled, dict) else {}


def render(
    config: Mapping[str, Any], variables: Mapping[str, Any], environ: Environ
) -> dict[str, Any]:
    """Render a ``job_configuration`` with ``variables`` (already merged over the defaults).

    A string that is exactly ``{{ name }}`` becomes the variable's typed value; a
    placeholder inside other text is replaced as text; a variable with no value removes its
    key (or becomes "" inside text). ``{{ $NAME }}`` reads ``environ`` the same way, or is
    left as it is when ``environ`` is None.
    """

    def lookup(name: str) -> Any:
        if name[0] == "$":
            return _environment(name, environ)
        value = variables.get(name, _MISSING)
        return _MISSING if value is None else value

    rendered = _walk(config, lookup)
    return rendered if isinstance(rendered, dict) else {}


def configuration(
    template: Mapping[str, Any], job_variables: Mapping[str, Any], environ: Environ
) -> dict[str, Any]:
    """A run's job configuration: the template's defaults < ``job_variables`` (the
    deployment's merged with the run's), rendered into its ``job_configuration``."""
    variables = merge(defaults(template, environ), job_variables)
    return render(template.get("job_configuration", {}), variables, environ)


def _environment(name: str, environ: Environ) -> Any:
    if environ is None:
        return _AS_IS
    return environ.get(name[1:], _MISSING)


def _walk(value: Any, lookup: Callable[[str], Any]) -> Any:
    """``value`` with the placeholders of its strings replaced by what ``lookup`` answers.

    What is put in place is never walked again: it is a value, not template text.
    """
    if isinstance(value, dict):
        items = ((key, _walk(item, lookup)) for key, item in value.items())
        return {key: item for key, item in items if item is not _MISSING}
    if isinstance(value, list):
        return [item for item in (_walk(v, lookup) for v in value) if item is not _MISSING]
    if not isinstance(value, str):
        return value
    whole = PLACEHOLDER.fullmatch(value.strip())
    if whole:
        found = lookup(whole.group(1))
        if found is _AS_IS:
            return value
        return found if found is _MISSING else copy.deepcopy(found)

    def text(match: re.Match[str]) -> str:
        found = lookup(match.group(1))
        if found is _AS_IS:
            return match.group(0)
        return "" if found is _MISSING else str(found)

    return PLACEHOLDER.sub(text, value)
