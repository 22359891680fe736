"""Job variables a deployment or a run supplies, checked against its pool's template.

Merging and rendering live in :mod:`dockyard.job_templates`, shared with the workers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.job_templates import MERGED_KEYS, JobVariableError, expand
from dockyard.server.errors import Invalid


def validate_variables(template: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
    """Check each given variable against the pool's schema; raise ``Invalid`` naming it."""
    from jsonschema import Draft202012Validator

    schema = template.get("variables", {})
    properties = schema.get("properties", {})
    try:
        given = expand(variables)
    except JobVariableError as exc:
        raise Invalid(str(exc), field=f"job_variables.{exc.field}") from None
    for name, value in given.items():
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
