"""Base job templates: a ``job_configuration`` with ``{{ placeholders }}`` and the
``variables`` JSON schema that declares them.
"""

from __future__ import annotations

from typing import Any

from dockyard.job_templates import placeholders
from dockyard.server.errors import Invalid

FIELD = "base_job_template"
# Every reader of a template (job variable checks, the UI's forms and secret masking) follows
# a reference into the schema's own $defs the same way; anything else would mean different
# things to different readers, or a fetch from the network.
LOCAL_REFS = "#/$defs/"
_REF_KEYWORDS = ("$ref", "$dynamicRef")


def validate_template(template: Any) -> dict[str, Any]:
    """Check a base job template and return it; raise ``Invalid`` naming the problem."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(template, dict):
        raise Invalid("the base job template must be a JSON object", field=FIELD)
    unknown = sorted(set(template) - {"job_configuration", "variables"})
    if unknown:
        raise Invalid(
            f"unknown key(s) in the base job template: {', '.join(unknown)}; "
            "expected 'job_configuration' and 'variables'",
            field=FIELD,
        )
    config = template.get("job_configuration")
    variables = template.get("variables", {"type": "object", "properties": {}})
    if not isinstance(config, dict):
        raise Invalid(
            "the base job template needs a 'job_configuration' object",
            field=f"{FIELD}.job_configuration",
        )
    if not isinstance(variables, dict) or variables.get("type", "object") != "object":
        raise Invalid(
            "'variables' must be a JSON schema of type object", field=f"{FIELD}.variables"
        )
    try:
        Draft202012Validator.check_schema(variables)
    except SchemaError as exc:
        raise Invalid(
            f"'variables' is not a valid JSON schema: {exc.message}", field=f"{FIELD}.variables"
        ) from None
    except RecursionError:
        raise Invalid(
            "'variables' is nested too deeply to check; flatten it or move parts under $defs",
            field=f"{FIELD}.variables",
        ) from None
    check_refs(variables)
    declared = set(variables.get("properties", {}))
    undeclared = sorted(
        {name for name in placeholders(config) if not name.startswith("$")} - declared
    )
    if undeclared:
        raise Invalid(
            "placeholder(s) not declared in 'variables': "
            + ", ".join(f"{{{{ {n} }}}}" for n in undeclared)
            + "; add them to variables.properties or remove them",
            field=f"{FIELD}.job_configuration",
        )
    return {"job_configuration": config, "variables": variables}


def check_refs(variables: dict[str, Any]) -> None:
    """Resolve every reference of the ``variables`` schema; raise ``Invalid`` on the first
    one that points outside its ``$defs`` or to nothing there.

    Nothing is ever fetched: a reference to another document is refused, not retrieved.
    """
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    root = DRAFT202012.create_resource(variables)
    # a bare Registry retrieves nothing: a URI it does not hold is unresolvable
    resolver = Registry().with_resource("", root).resolver()
    paths = _paths(variables, f"{FIELD}.variables")
    pending = [(root, resolver)]
    while pending:  # a loop, not recursion: the depth of a schema is the client's choice
        resource, outer = pending.pop()
        inner = outer.in_subresource(resource)
        contents = resource.contents
        for keyword in _REF_KEYWORDS if isinstance(contents, dict) else ():
            ref = contents.get(keyword)
            if not isinstance(ref, str):
                continue
            field = f"{paths.get(id(contents), f'{FIELD}.variables')}.{keyword}"
            if not ref.startswith(LOCAL_REFS):
                raise Invalid(
                    f"{keyword} '{ref}' does not point into this schema's $defs; references "
                    f"are never fetched: copy the schema under variables.$defs and refer to "
                    f"it as '{LOCAL_REFS}Name'",
                    field=field,
                )
            try:
                inner.lookup(ref)
            except Unresolvable:
                raise Invalid(
                    f"{keyword} '{ref}' resolves to nothing; define it under variables.$defs "
                    "or remove the reference",
                    field=field,
                ) from None
        pending.extend((sub, inner) for sub in resource.subresources())


def _paths(node: Any, path: str) -> dict[int, str]:
    """Where each object of a parsed JSON document sits, by identity, as a dotted path."""
    found: dict[int, str] = {}
    pending = [(node, path)]
    while pending:
        value, where = pending.pop()
        if isinstance(value, dict):
            found[id(value)] = where
            pending.extend((v, f"{where}.{k}") for k, v in value.items())
        elif isinstance(value, list):
            pending.extend((v, f"{where}.{i}") for i, v in enumerate(value))
    return found
