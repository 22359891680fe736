"""The one rule for names (``dockyard._names``): its pattern, its explanations, its models."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dockyard import _names, schemas

NAME = re.compile(_names.NAME_PATTERN)
POOL_NAME = re.compile(_names.POOL_NAME_PATTERN)
# the characters that make a name interesting: dots, slashes, controls, spaces, escapes
TRICKY = (
    ".../\\%?#&= \t\n\x00\x1f\x7f\x80\x85\x9f\xa0\u2028\u3000\ufeffaZ9-_~üß中\U0001f600\ud800\udcff"
)
names = st.text(alphabet=st.sampled_from(TRICKY), max_size=6) | st.text(max_size=6)

REFUSED = [
    ("", "empty"),
    (".", "'.'"),
    ("..", "'..'"),
    ("a/b", "'/'"),
    ("/", "'/'"),
    ("a\x00b", "control character '\\x00'"),
    ("tab\there", "control character '\\t'"),
    ("bell\x07", "control character"),
    ("del\x7f", "control character '\\x7f'"),
    ("c1\x9b[31m", "control character '\\x9b'"),
    ("esc\x1b[2J", "control character '\\x1b'"),
    (" lead", "whitespace"),
    ("trail ", "whitespace"),
    ("nbsp\xa0", "whitespace"),
    ("\u3000ideographic", "whitespace"),
    ("x" * 201, "more than 200"),
]
ACCEPTED = [
    "a",
    "...",
    ".hidden",
    "a.",
    "a b",
    "%2e%2e",
    "?x=1",
    "#frag",
    "ünï-cödé",
    "中文",
    "a" * 200,
]


@pytest.mark.parametrize(("value", "says"), REFUSED)
def test_refused_names_say_why_and_what_a_name_is(value: str, says: str) -> None:
    problem = _names.name_problem(value)
    assert problem is not None and says in problem
    assert _names.NAME_RULE in problem


@pytest.mark.parametrize("value", ACCEPTED)
def test_accepted_names(value: str) -> None:
    assert _names.name_problem(value) is None


def test_pool_names_are_stricter() -> None:
    assert _names.pool_name_problem("my-docker_pool.2") is None
    for value, says in [("..", "'..'"), (".", "'.'"), ("a b", "' '"), ("ü", "'ü'"), ("", "empty")]:
        problem = _names.pool_name_problem(value)
        assert problem is not None and says in problem and "letters, digits" in problem
    assert "more than 100" in (_names.pool_name_problem("p" * 101) or "")


def test_the_space_class_is_python_whitespace_that_is_not_a_control_character() -> None:
    spaces = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    controls = {c for c in spaces if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F}
    edge = re.compile(f"[{_names._SPACE}]")
    assert {c for c in map(chr, range(sys.maxunicode + 1)) if edge.fullmatch(c)} == (
        spaces - controls
    )


@settings(max_examples=500, derandomize=True, database=None)
@given(names)
def test_the_published_pattern_and_the_explanations_agree(value: str) -> None:
    """What the OpenAPI schema publishes is exactly what the server accepts (a JSON Schema
    pattern is searched for, not matched whole)."""
    fits = NAME.search(value) is not None and len(value) <= _names.MAX_NAME
    assert fits == (_names.name_problem(value) is None)
    if not fits:  # an explanation names the actual problem, never a catch-all
        assert not (_names.name_problem(value) or "").startswith("is not allowed")
    pool_fits = POOL_NAME.search(value) is not None and len(value) <= _names.MAX_POOL_NAME
    assert pool_fits == (_names.pool_name_problem(value) is None)
    if pool_fits:
        assert fits  # every pool name is a name


@settings(max_examples=200, derandomize=True, database=None)
@given(st.from_regex(_names.NAME_PATTERN), st.from_regex(_names.POOL_NAME_PATTERN))
def test_examples_generated_from_the_published_patterns_are_names(name: str, pool: str) -> None:
    """What a schema-driven tool generates as a valid name is one (a final newline included,
    which a pattern ending in '$' would let through)."""
    assert _names.name_problem(name) is None or len(name) > _names.MAX_NAME
    assert _names.pool_name_problem(pool) is None or len(pool) > _names.MAX_POOL_NAME


def test_a_json_schema_validator_reads_the_pattern_as_the_server_does() -> None:
    from jsonschema import Draft202012Validator

    schema = schemas.WorkQueueCreate.model_json_schema()["properties"]["name"]
    validator = Draft202012Validator(schema)
    for value in ["ok", "a b", "..."]:
        assert validator.is_valid(value), value
    for value, _ in REFUSED:
        assert not validator.is_valid(value), value
    assert not validator.is_valid("ab\n")


@settings(max_examples=300, derandomize=True, database=None)
@given(names.filter(bool) | st.text(min_size=1, max_size=20))
def test_a_path_segment_never_holds_a_dot_slash_or_query(value: str) -> None:
    from urllib.parse import unquote

    segment = _names.path_segment(value)
    assert re.fullmatch(r"[A-Za-z0-9_~%\-]+", segment), segment
    assert unquote(segment, errors="surrogatepass") == value


def test_every_name_field_of_a_request_uses_the_rule() -> None:
    """No request model takes a name as a plain string (a new one must use Name/PoolName)."""
    name_fields = {
        (schemas.FlowCreate, "name"),
        (schemas.DeploymentCreate, "flow_name"),
        (schemas.DeploymentCreate, "name"),
        (schemas.DeploymentCreate, "work_queue_name"),
        (schemas.DeploymentUpdate, "work_queue_name"),
        (schemas.FlowRunCreate, "flow_name"),
        (schemas.FlowRunCreate, "name"),
        (schemas.DeploymentRunCreate, "name"),
        (schemas.FlowRunUpdate, "name"),
        (schemas.WorkQueueCreate, "name"),
        (schemas.WorkerHeartbeat, "name"),
        (schemas.ClaimRequest, "worker_name"),
    }
    pool_fields = {
        (schemas.DeploymentCreate, "work_pool_name"),
        (schemas.WorkPoolCreate, "name"),
        (schemas.WorkerHeartbeat, "work_pool_name"),
        (schemas.ClaimRequest, "work_pool_name"),
    }
    required = {"flow_name": "f", "name": "n", "type": "process", "worker_name": "w"}
    for model, field in name_fields | pool_fields:
        base = {k: v for k, v in required.items() if k in model.model_fields}
        with pytest.raises(ValidationError) as refused:
            model(**{**base, field: ".."})
        [error] = refused.value.errors()
        assert error["loc"] == (field,) and "'..'" in error["msg"], (model, field)
    with pytest.raises(ValidationError):
        schemas.ClaimRequest(worker_name="w", work_queue_names=["ok", "a\x1bb"])
    # and every other field that looks like a name is in the lists above, or not a name
    not_names = {
        (schemas.TaskRunRecord, "name"),  # a task's label: never looked up, never in a path
        (schemas.LogCreate, "name"),  # a logger's dotted name
    }
    # a variable's name has its own, stricter rule (see dockyard.variables)
    with pytest.raises(ValidationError) as refused:
        schemas.VariableCreate(name="..", value=1)
    [error] = refused.value.errors()
    assert error["loc"] == ("name",)
    # a secret's name follows the variable's rule
    with pytest.raises(ValidationError) as refused:
        schemas.SecretCreate(name="..", value="x")
    assert refused.value.errors()[0]["loc"] == ("name",)
    variable_fields = {(schemas.VariableCreate, "name"), (schemas.SecretCreate, "name")}
    for model in _request_models():
        for field in model.model_fields:
            if field == "name" or field.endswith("_name"):
                known = name_fields | pool_fields | not_names | variable_fields
                assert (model, field) in known, f"{model.__name__}.{field} is not checked"


def _request_models() -> list[type[schemas.Model]]:
    found = []
    for value in vars(schemas).values():
        if (
            isinstance(value, type)
            and issubclass(value, schemas.Model)
            and value is not schemas.Model
        ):
            found.append(value)
    return found


def test_the_openapi_schema_publishes_the_rule() -> None:
    schema = schemas.WorkQueueCreate.model_json_schema()["properties"]["name"]
    assert schema["pattern"] == _names.NAME_PATTERN
    assert (schema["minLength"], schema["maxLength"]) == (1, _names.MAX_NAME)
    pool = schemas.WorkPoolCreate.model_json_schema()["properties"]["name"]
    assert pool["pattern"] == _names.POOL_NAME_PATTERN
