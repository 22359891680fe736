"""Base job templates: a ``job_configuration`` with ``{{ placeholders }}`` and the
``variables`` JSON schema that declares them.
"""

from __future__ import annotations

from typing import Any

from dockyard.job_templates import placeholders
from dockyard.server.errors import Invalid


def validate_template(template: Any) -> dict[str, Any]:
    """Check a base job template and return it; raise ``Invalid`` naming the problem."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    field = "base_job_template"
    if not isinstance(template, dict):
        raise Invalid("the base job template must be a JSON object", field=field)
    unknown = sorted(set(template) - {"job_configuration", "variables"})
    if unknown:
        raise Invalid(
            f"unknown key(s) in the base job template: {', '.join(unknown)}; "
            "expected 'job_configuration' and 'variables'",
            field=field,
        )
    config = template.get("job_configuration")
    variables = template.get("variables", {"type": "object", "properties": {}})
    if not isinstance(config, dict):
        raise Invalid(
            "the base job template needs a 'job_configuration' object",
            field=f"{field}.job_configuration",
        )
    if not isinstance(variables, dict) or variables.get("type", "object") != "object":
        raise Invalid(
            "'variables' must be a JSON schema of type object", field=f"{field}.variables"
        )
    try:
        Draft202012Validator.check_schema(variables)
    except SchemaError as exc:
        raise Invalid(
            f"'variables' is not a valid JSON schema: {exc.message}", field=f"{field}.variables"
        ) from None
    declared = set(variables.get("properties", {}))
    undeclared = sorted(
        {name for name in placeholders(config) if not name.startswith("$")} - declared
    )
    if undeclared:
        raise Invalid(
            "placeholder(s) not declared in 'variables': "
            + ", ".join(f"{{{{ {n} }}}}" for n in undeclared)
            + "; add them to variables.properties or remove them",
            field=f"{field}.job_configuration",
        )
    return {"job_configuration": config, "variables": variables}
