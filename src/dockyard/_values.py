"""What the server stores: the one definition of the limits of values, and of clean text.

A request beyond these is refused with 422 naming the field (``dockyard.schemas`` builds its
types on them), never stored on one database and a 500 on the other. Standard library only:
the SDK and the workers clean what they send with :func:`clean_text` and :func:`clean_json`
before pydantic is ever imported, so that a flow's odd output is recorded, not refused.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "JSON_MAX_DEPTH",
    "TAG_MAX_LENGTH",
    "TEXT_MAX_LENGTH",
    "VARIABLE_VALUE_MAX_BYTES",
    "clean_text",
    "json_problem",
    "text_problem",
    "variable_value_problem",
]

INT32_MAX = 2**31 - 1  # an Integer column (32 bits on PostgreSQL)
INT64_MAX = 2**63 - 1  # a BigInteger column, and every integer SQLite holds
# a Text column: the most one field of a request stores (a log line, a message, a description)
TEXT_MAX_LENGTH = 1_000_000
TAG_MAX_LENGTH = 200
# how deep free-form JSON (parameters, job variables, results, ...) may nest
JSON_MAX_DEPTH = 100
# the most a variable's value holds: its JSON text, written compactly, in UTF-8 (256 KiB)
VARIABLE_VALUE_MAX_BYTES = 256 * 1024

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Return why ``value`` cannot be stored as text, or None.

    PostgreSQL holds no NUL in text, so no database here stores one (one rule for both);
    a lone surrogate is not a character at all, and cannot be encoded as UTF-8.
    """
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000); remove it or escape it as text"
    if not value.isascii() and _SURROGATE.search(value):
        return (
            "must not contain a lone surrogate (\\ud800 to \\udfff): it is not a character;"
            " send valid Unicode text"
        )
    return None


def json_problem(value: Any) -> str | None:
    """Return why the free-form JSON ``value`` cannot be stored, and where in it, or None.

    Its text follows :func:`text_problem` (keys too), its numbers are finite (``NaN`` and
    ``Infinity`` are not JSON: stored, they would come back as null), and it nests at most
    :data:`JSON_MAX_DEPTH` deep. The walk is iterative: no depth overflows the stack.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth >= JSON_MAX_DEPTH:
                return f"nests more than {JSON_MAX_DEPTH} levels deep; flatten it"
            if isinstance(item, dict):
                for key, child in item.items():
                    if isinstance(key, str) and (problem := text_problem(key)):
                        return f"the key {key!a}{_at(path)} {problem}"
                    stack.append((child, f"{path}[{key!a}]", depth + 1))
            else:
                stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif problem := _scalar_problem(item):
            return f"the value{_at(path)} {problem}"
    return None


def _scalar_problem(value: Any) -> str | None:
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number (NaN and Infinity are not JSON); send a number or null"
    return None


def _at(path: str) -> str:
    return f" at {path}" if path else ""


def variable_value_problem(value: Any) -> str | None:
    """Return why ``value`` cannot be a variable's value, or None.

    A variable's value is free-form JSON (:func:`json_problem`) whose text, written compactly
    (no spaces) in UTF-8, is at most :data:`VARIABLE_VALUE_MAX_BYTES` long.
    """
    problem = json_problem(value)
    if problem:
        return problem
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return f"is not JSON ({exc}); use str, int, float, bool, None, and lists and dicts of them"
    size = len(text.encode())
    if size > VARIABLE_VALUE_MAX_BYTES:
        return (
            f"is {size} bytes of JSON, more than {VARIABLE_VALUE_MAX_BYTES} (256 KiB); keep "
            "large data elsewhere and store where it is"
        )
    return None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def clean_text(value: str, max_length: int = TEXT_MAX_LENGTH) -> str:
    """``value`` as the server stores it: NUL and lone surrogates replaced by U+FFFD, cut to
    ``max_length`` characters (what a client sends of a flow's output, names and errors)."""
    if len(value) > max_length:
        value = value[:max_length]
    if "\x00" in value or not value.isascii():
        value = _UNSTORABLE.sub(REPLACEMENT, value)
    return value
