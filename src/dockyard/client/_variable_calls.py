"""The API's calls about variables (named JSON values).

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

from dockyard import schemas
from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import seg


def _path(name: str) -> str:
    return f"/variables/name/{seg(name)}"


def create_variable(variable: schemas.VariableCreate) -> Call[schemas.Variable]:
    """Create a variable.

    Raises:
        Conflict: a variable with that name exists (:meth:`set_variable` replaces it).
    """
    # Not retried once sent: a retry of a creation that succeeded would answer 409.
    parse = p.one(schemas.Variable)
    return Call("POST", "/variables", parse, body=p.body(variable), idempotent=False)


def read_variable_by_name(name: str) -> Call[schemas.Variable]:
    """Read a variable by name.

    Raises:
        NotFound: no variable has that name.
    """
    return Call("GET", _path(name), p.one(schemas.Variable))


def list_variables(
    *, name_prefix: str | None = None, tag: str | None = None, limit: int = 200, offset: int = 0
) -> Call[list[schemas.Variable]]:
    """List variables by name, optionally those whose name starts with ``name_prefix`` or
    that carry ``tag``."""
    params = {"name_prefix": name_prefix, "tag": tag, "limit": limit, "offset": offset}
    return Call("GET", "/variables", p.many(p.VARIABLES), params=params)


def set_variable(name: str, variable: schemas.VariableSet) -> Call[schemas.Variable]:
    """Create the variable ``name``, or replace its value and tags."""
    return Call("PUT", _path(name), p.one(schemas.Variable), body=p.body(variable))


def update_variable(name: str, update: schemas.VariableUpdate) -> Call[schemas.Variable]:
    """Change the fields set in ``update`` (a value set to None is set to null)."""
    return Call("PATCH", _path(name), p.one(schemas.Variable), body=p.patch(update))


def delete_variable(name: str) -> Call[None]:
    """Delete a variable.

    Raises:
        NotFound: no variable has that name.
    """
    return Call("DELETE", _path(name), p.nothing)
