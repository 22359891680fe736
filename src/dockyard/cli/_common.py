"""What the command groups share, kept light: importing this module imports no HTTP client,
no pydantic and no rich, so ``dockyard --help`` stays fast. Heavy imports happen inside the
functions that need them.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from dockyard.exceptions import DockyardError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from dockyard.client import Client

M = TypeVar("M", bound="BaseModel")

# click's own status for a bad option or argument; a bad setting is the same kind of mistake
EXIT_USAGE = 2

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON (snake_case fields) instead of a table.")
]
PoolOption = Annotated[
    str, typer.Option("--pool", "-p", metavar="POOL", help="Name of the work pool.")
]


def open_client() -> Client:
    """Return a client of the configured server (``api_url`` and ``api_key`` settings)."""
    from dockyard.client import Client

    return Client()


def build(model: type[M], **values: Any) -> M:
    """Return ``model(**values)``; a refused value raises a DockyardError naming the field."""
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "value"
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"invalid {field} {_brief(error.get('input'))}: {message}")
        raise DockyardError("; ".join(problems)) from None


def _brief(value: Any) -> str:
    """``repr(value)``, cut short: a refused value may be long or deeply nested."""
    import reprlib

    brief = reprlib.Repr()
    brief.maxstring = brief.maxother = 80
    return brief.repr(value)


def parse_json(text: str, what: str, *, or_text: bool = False) -> Any:
    """Return the JSON value in ``text``; ``what`` names it in errors.

    Only JSON is read: ``NaN`` and ``Infinity`` are refused, and so is a value nested too
    deeply for the server to store (the rule of :func:`dockyard._values.json_problem`).

    Args:
        or_text: return ``text`` itself when it is not JSON at all (``--param k=v`` reads
            ``v`` as JSON when it parses); JSON the server would refuse still raises.

    Raises:
        DockyardError: ``text`` is not JSON, or not a value the server stores.
    """
    from dockyard._values import JSON_MAX_DEPTH, json_problem

    try:
        value = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise DockyardError(
            f"{what}: nests more than {JSON_MAX_DEPTH} levels deep; flatten it"
        ) from None
    except ValueError as exc:
        if or_text:
            return text
        raise DockyardError(f"{what} is not valid JSON: {exc}") from None
    problem = json_problem(value)
    if problem:
        raise DockyardError(f"{what}: {problem}")
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number; write a number or null")


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Return the JSON object in the file at ``path``; ``what`` names it in errors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DockyardError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DockyardError(f"the {what} file {path} is not UTF-8 text; save it as JSON") from None
    data = parse_json(text, f"the {what} file {path}")
    if not isinstance(data, dict):
        raise DockyardError(f"the {what} file {path} must hold a JSON object")
    return data


def parse_id(value: str, what: str) -> uuid.UUID:
    """Return ``value`` as a UUID; ``what`` names the object in the error."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise DockyardError(
            f"{value!r} is not a {what} id; ids are UUIDs such as "
            "9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b"
        ) from None


def deployment_name(value: str) -> str:
    """Check that ``value`` is a deployment's full name, ``FLOW/NAME``, and return it."""
    flow, sep, name = value.partition("/")
    if not (sep and flow and name):
        raise DockyardError(
            f"{value!r} is not a deployment's full name; write FLOW/NAME, "
            "e.g. get-repo-info/my-first-deployment (see `dockyard deployment ls`)"
        )
    return value
