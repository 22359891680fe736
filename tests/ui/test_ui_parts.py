"""The UI's building blocks on their own: cookies and tokens, secret masking, schema forms."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest

from dockyard.server import masking
from dockyard.server.ui import forms, rendering
from dockyard.server.ui.auth import SESSION_SECONDS, Guard
from dockyard.server.ui.web import safe_next

# ---------------------------------------------------------------- sessions and CSRF


def test_a_session_is_signed_and_expires() -> None:
    guard = Guard.from_api_key("k1")
    cookie = guard.new_session(now=1000.0)
    assert "k1" not in cookie
    assert guard.session_valid(cookie, now=1001.0)
    assert not guard.session_valid(cookie, now=1000.0 + SESSION_SECONDS + 1)
    nonce, expires, signature = cookie.split(".")
    assert not guard.session_valid(f"{nonce}.{int(expires) + 999}.{signature}", now=1001.0)
    assert not guard.session_valid(cookie[:-1] + ("0" if cookie[-1] != "0" else "1"), now=1001.0)
    assert not guard.session_valid("", now=1001.0)
    # another API key signs differently: changing the key ends every session
    assert not Guard.from_api_key("k2").session_valid(cookie, now=1001.0)


def test_without_an_api_key_no_login_is_needed() -> None:
    guard = Guard.from_api_key(None)
    assert not guard.login_required
    assert guard.session_valid(None)
    assert not guard.key_matches("")


def test_csrf_tokens_pair_with_the_browser_nonce() -> None:
    keyed = Guard.from_api_key("k1")
    nonce = keyed.new_nonce()
    token = keyed.csrf_token(nonce)
    assert token != nonce  # signed: a planted cookie cannot be paired with a chosen token
    assert keyed.csrf_valid(nonce, token)
    assert not keyed.csrf_valid(nonce, keyed.csrf_token(keyed.new_nonce()))
    assert not keyed.csrf_valid(nonce, "")
    assert not keyed.csrf_valid(None, token)
    plain = Guard.from_api_key(None)
    assert plain.csrf_valid(nonce, nonce)  # a double-submit cookie
    assert not plain.csrf_valid(nonce, nonce + "x")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/runs?state=FAILED", "/runs?state=FAILED"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/", "/"),
        ("/\\elsewhere.example", "/"),
        ("", "/"),
    ],
)
def test_after_login_only_local_paths(target: str, expected: str) -> None:
    assert safe_next(target) == expected


# ---------------------------------------------------------------- secrets

SCHEMA = {
    "type": "object",
    "$defs": {"Login": {"type": "object", "properties": {"token": {"format": "password"}}}},
    "properties": {
        "registry_credentials": {
            "type": "object",
            "properties": {"username": {"type": "string"}, "password": {"format": "password"}},
        },
        "login": {"$ref": "#/$defs/Login"},
        "api_token": {"anyOf": [{"type": "string", "format": "password"}, {"type": "null"}]},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def test_secret_values_are_masked_wherever_the_schema_marks_them() -> None:
    template = {"job_configuration": {}, "variables": SCHEMA}
    shown = masking.mask_variables(
        {
            "registry_credentials": {"username": "bot", "password": "p4ss"},
            "login": {"token": "t0k"},
            "api_token": "a9i",
            "env": {"A": "1"},
            "registry_credentials.password": "d0tted",
        },
        template,
    )
    assert shown == {
        "registry_credentials": {"username": "bot", "password": masking.MASK},
        "login": {"token": masking.MASK},
        "api_token": masking.MASK,
        "env": {"A": "1"},
        "registry_credentials.password": masking.MASK,
    }


def test_a_templates_secret_defaults_are_masked_and_the_template_kept() -> None:
    variables = {
        "type": "object",
        "properties": {
            "password": {"type": "string", "format": "password", "default": "s3cret"},
            "image": {"type": "string", "default": "python:3.12"},
        },
    }
    template = {"job_configuration": {"p": "{{ password }}"}, "variables": variables}
    shown = masking.mask_template(template)
    assert shown["variables"]["properties"]["password"]["default"] == masking.MASK
    assert shown["variables"]["properties"]["image"]["default"] == "python:3.12"
    assert template["variables"]["properties"]["password"]["default"] == "s3cret"


# ---------------------------------------------------------------- schema forms

PARAMS = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "position": 2},
        "count": {"type": "integer", "minimum": 1, "position": 0},
        "ratio": {"type": "number", "position": 1},
        "loud": {"type": "boolean"},
        "mode": {"enum": ["fast", "slow"]},
        "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
        "limit": {"type": ["string", "integer"]},
        "secret": {"type": "string", "format": "password"},
    },
    "required": ["count"],
}


def test_fields_follow_the_schema() -> None:
    built = forms.build(PARAMS, {"count": 2, "tags": ["a"], "secret": "s"}, "p.", {})
    kinds = {f.key: f.kind for f in built}
    assert kinds == {
        "count": "integer",
        "ratio": "number",
        "name": "text",
        "loud": "checkbox",
        "mode": "select",
        "tags": "json",
        "limit": "flex",
        "secret": "password",
    }
    assert [f.key for f in built][:3] == ["count", "ratio", "name"]  # by position
    by_key = {f.key: f for f in built}
    assert by_key["count"].value == "2" and by_key["count"].required
    assert by_key["tags"].value == '[\n  "a"\n]'
    assert by_key["secret"].value == ""  # never shown, not even what was typed


def test_typed_values_are_read_by_kind() -> None:
    errors: dict[str, str] = {}
    typed = {
        "count": " 7 ",
        "ratio": "2.0",
        "name": "dock",
        "loud": None,
        "mode": "slow",
        "tags": '["x"]',
        "limit": "512",
        "secret": "",
    }
    assert forms.read(PARAMS, typed, errors) == {
        "count": 7,
        "ratio": 2,
        "name": "dock",
        "loud": False,
        "mode": "slow",
        "tags": ["x"],
        "limit": 512,
    }
    assert errors == {}
    assert forms.read(PARAMS, {"limit": "512m"}, errors)["limit"] == "512m"


def test_unreadable_and_invalid_values_name_their_field() -> None:
    errors: dict[str, str] = {}
    values = forms.read(PARAMS, {"count": "many", "tags": "[", "mode": "medium"}, errors)
    assert set(errors) == {"count", "tags", "mode"}
    assert "whole number" in errors["count"]
    forms.validate(PARAMS, values, errors)
    assert errors["count"] == "enter a whole number"  # the first problem is kept

    errors = {}
    forms.validate(PARAMS, {"count": 0, "name": 5}, errors)
    assert "minimum of 1" in errors["count"]
    assert "not of type 'string'" in errors["name"]
    errors = {}
    forms.validate(PARAMS, {}, errors)
    assert errors == {"count": "a value is required"}


# ---------------------------------------------------------------- how things read


def test_times_and_intervals_read_naturally() -> None:
    now = rendering._now()
    assert rendering.ago(now - timedelta(seconds=12)) == "12 s ago"
    assert rendering.ago(now + timedelta(minutes=5, seconds=2)) == "in 5 min"
    assert rendering.ago(None) == "never"
    assert rendering.interval(5400) == "1 h 30 min"
    assert rendering.interval(86400) == "1 d"
    assert rendering.css_name("NOT_READY") == "not-ready"
    assert rendering.level_name(40) == "ERROR"


def test_server_start_builds_no_page_and_imports_no_jinja() -> None:
    """The UI is built at its first request: starting the server pays nothing for it."""
    code = (
        "import sys; from dockyard.server.app import create_app; "
        "from dockyard.settings import load; create_app(load()); "
        "print(sorted(m for m in sys.modules if m.startswith(('jinja2', 'dockyard.server.ui'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['dockyard.server.ui']"
