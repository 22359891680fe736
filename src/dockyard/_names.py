"""What a name may be, defined once: the rule every flow, deployment, flow run, work pool,
work queue and worker name follows, and how a name travels as one segment of a URL path.

A name is 1 to 200 characters; it is not ``.`` or ``..``; it holds no ``/`` and no control
character (U+0000 to U+001F, U+007F to U+009F); it neither starts nor ends with whitespace (a
name that differs from another only by a trailing space is a trap, so it is refused rather
than trimmed). A work pool's name is stricter: 1 to 100 letters, digits, ``-``, ``_`` and
``.``, and not ``.`` or ``..``. A variable's name is stricter still: 1 to 255 lowercase
letters (``a`` to ``z``), digits, ``_`` and ``-``. An artifact's key is a slug: 1 to 255
lowercase letters, digits and ``-``.

Plain Python with the standard library only, so that code that must not load pydantic (the
SDK's decorators, applied at import time) can check a name too. ``dockyard.schemas`` builds
its ``Name`` and ``PoolName`` types on these functions and publishes the patterns in the
OpenAPI schema.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "ARTIFACT_KEY_PATTERN",
    "ARTIFACT_KEY_RULE",
    "MAX_ARTIFACT_KEY",
    "MAX_NAME",
    "MAX_POOL_NAME",
    "MAX_VARIABLE_NAME",
    "NAME_PATTERN",
    "NAME_RULE",
    "POOL_NAME_PATTERN",
    "POOL_NAME_RULE",
    "VARIABLE_NAME_PATTERN",
    "VARIABLE_NAME_RULE",
    "artifact_key_problem",
    "name_problem",
    "path_segment",
    "pool_name_problem",
    "variable_name_problem",
]

MAX_NAME = 200
MAX_POOL_NAME = 100
MAX_VARIABLE_NAME = 255

NAME_RULE = (
    f"a name is 1 to {MAX_NAME} characters other than '/' and control characters, "
    "does not start or end with whitespace, and is not '.' or '..'"
)
POOL_NAME_RULE = (
    f"a work pool's name is 1 to {MAX_POOL_NAME} letters, digits, '-', '_' and '.', "
    "and is not '.' or '..'"
)
VARIABLE_NAME_RULE = (
    f"a variable's name is 1 to {MAX_VARIABLE_NAME} lowercase letters (a-z), digits, '_' and '-'"
)

# The patterns are the rule itself, written to mean the same in Python, in ECMA-262 (JSON
# Schema) and in tools that generate examples from them: no \s (its meaning differs), and
# the end of the text as (?![\s\S]), since Python's '$' also matches before a final newline.
_END = r"(?![\s\S])"
_CONTROL = r"\x00-\x1f\x7f-\x9f"
_SURROGATE = r"\ud800-\udfff"  # never a character: a lone one cannot even be stored
# the characters str.isspace() accepts that are not control characters already
_SPACE = r" \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_INNER = f"[^/{_CONTROL}{_SURROGATE}]"
_EDGE = f"[^/{_SPACE}{_CONTROL}{_SURROGATE}]"
_EDGE_NO_DOT = f"[^/.{_SPACE}{_CONTROL}{_SURROGATE}]"
# one character but '.'; two but '..'; three or more with no whitespace at either end
NAME_PATTERN = (
    f"^(?:{_EDGE_NO_DOT}|{_EDGE_NO_DOT}{_EDGE}|\\.{_EDGE_NO_DOT}|{_EDGE}{_INNER}+{_EDGE}){_END}"
)
_POOL_CHARS = r"A-Za-z0-9_.\-"
_POOL = f"[{_POOL_CHARS}]"
_POOL_NO_DOT = r"[A-Za-z0-9_\-]"
POOL_NAME_PATTERN = (
    f"^(?:{_POOL_NO_DOT}|{_POOL_NO_DOT}{_POOL}|\\.{_POOL_NO_DOT}|{_POOL}{{3,}}){_END}"
)
_VARIABLE_CHARS = r"a-z0-9_\-"
VARIABLE_NAME_PATTERN = f"^[{_VARIABLE_CHARS}]+{_END}"


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # compiled at first use: `import dockyard` stays light, and most names never need them
    return re.compile(pattern)


def name_problem(value: str) -> str | None:
    """Return what keeps ``value`` from being a name (and what a name is), or None."""
    if _plain(value, MAX_NAME) or (
        _compiled(NAME_PATTERN).fullmatch(value) and len(value) <= MAX_NAME
    ):
        return None
    return f"{_first_problem(value, MAX_NAME) or 'is not allowed'} ({NAME_RULE})"


def _plain(value: str, limit: int) -> bool:
    """The common case, without a regex: printable text (no control character, no lone
    surrogate, no space but ' ') that the pattern accepts too."""
    return (
        0 < len(value) <= limit
        and value.isprintable()
        and "/" not in value
        and value not in (".", "..")
        and value[0] != " "
        and value[-1] != " "
    )


def pool_name_problem(value: str) -> str | None:
    """Return what keeps ``value`` from being a work pool's name (and what one is), or None."""
    if _compiled(POOL_NAME_PATTERN).fullmatch(value) and len(value) <= MAX_POOL_NAME:
        return None
    problem = _first_problem(value, MAX_POOL_NAME)
    if problem is None:
        other = _compiled(f"[^{_POOL_CHARS}]").search(value)
        problem = f"must not contain {other.group()!r}" if other else "is not allowed"
    return f"{problem} ({POOL_NAME_RULE})"


def variable_name_problem(value: str) -> str | None:
    """Return what keeps ``value`` from being a variable's name (and what one is), or None."""
    if _compiled(VARIABLE_NAME_PATTERN).fullmatch(value) and len(value) <= MAX_VARIABLE_NAME:
        return None
    if not value:
        problem = "must not be empty"
    elif len(value) > MAX_VARIABLE_NAME:
        problem = f"is {len(value)} characters long, more than {MAX_VARIABLE_NAME}"
    else:
        other = _compiled(f"[^{_VARIABLE_CHARS}]").search(value)
        found = other.group() if other else value
        problem = f"must not contain {found!a}"
        if "A" <= found <= "Z" and variable_name_problem(value.lower()) is None:
            problem += f"; write it in lowercase, {value.lower()!a}"
    return f"{problem} ({VARIABLE_NAME_RULE})"


# ---------------------------------------------------------------- artifact keys
#
# An artifact's key is a slug, stricter than a variable's name: no '_'. A key with capitals,
# '_' or spaces is refused with its slug as the fix, never changed silently.
MAX_ARTIFACT_KEY = 255
ARTIFACT_KEY_RULE = (
    f"an artifact's key is 1 to {MAX_ARTIFACT_KEY} lowercase letters (a-z), digits and '-'"
)
_ARTIFACT_KEY_CHARS = r"a-z0-9\-"
ARTIFACT_KEY_PATTERN = f"^[{_ARTIFACT_KEY_CHARS}]+{_END}"


def artifact_key_problem(value: str) -> str | None:
    """Return what keeps ``value`` from being an artifact's key (and what one is), or None."""
    if _compiled(ARTIFACT_KEY_PATTERN).fullmatch(value) and len(value) <= MAX_ARTIFACT_KEY:
        return None
    if not value:
        problem = "must not be empty"
    elif len(value) > MAX_ARTIFACT_KEY:
        problem = f"is {len(value)} characters long, more than {MAX_ARTIFACT_KEY}"
    else:
        other = _compiled(f"[^{_ARTIFACT_KEY_CHARS}]").search(value)
        found = other.group() if other else value
        problem = f"must not contain {found!a}"
        fixed = value.lower().replace("_", "-").replace(" ", "-")
        if fixed != value and artifact_key_problem(fixed) is None:
            problem += f"; write it {fixed!a}"
    return f"{problem} ({ARTIFACT_KEY_RULE})"


def _first_problem(value: str, limit: int) -> str | None:
    if not value:
        return "must not be empty"
    if len(value) > limit:
        return f"is {len(value)} characters long, more than {limit}"
    if value in (".", ".."):
        return f"must not be {value!r}: in a URL it would stand for another path"
    if "/" in value:
        return "must not contain '/'"
    control = _compiled(f"[{_CONTROL}]").search(value)
    if control:
        return f"must not contain the control character {control.group()!a}"
    if _compiled(f"[{_SURROGATE}]").search(value):
        return "must not contain a lone surrogate: it is not a character"
    if value[0].isspace() or value[-1].isspace():
        return "must not start or end with whitespace"
    return None


def path_segment(value: object) -> str:
    """Return ``value`` (a name or an id) percent-encoded as exactly one URL path segment.

    Every character but letters, digits, ``-``, ``_`` and ``~`` is encoded, ``.`` included:
    a segment ``..`` or ``.`` left as is would be resolved by HTTP clients and proxies into
    its parent's URL, so that acting on a queue named ``..`` would act on its pool. Text that
    is not valid Unicode (a command-line argument in another encoding) is still encoded: it
    names nothing, and the server answers so.
    """
    from urllib.parse import quote

    return quote(str(value), safe="", errors="surrogatepass").replace(".", "%2E")
