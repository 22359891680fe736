"""The API's calls about secrets (named values the server stores encrypted).

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name. Only :func:`read_secret_value` answers a value.
"""

from __future__ import annotations

from dockyard import schemas
from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import seg


def _path(name: str) -> str:
    return f"/secrets/name/{seg(name)}"


def create_secret(secret: schemas.SecretCreate) -> Call[schemas.Secret]:
    """Create a secret; the answer leaves its value out.

    Raises:
        Conflict: a secret with that name exists (:meth:`set_secret` replaces it).
    """
    # Not retried once sent: a retry of a creation that succeeded would answer 409.
    parse = p.one(schemas.Secret)
    return Call("POST", "/secrets", parse, body=p.body(secret), idempotent=False)


def read_secret_by_name(name: str) -> Call[schemas.Secret]:
    """Read a secret's name and times (not its value).

    Raises:
        NotFound: no secret has that name.
    """
    return Call("GET", _path(name), p.one(schemas.Secret))


def read_secret_value(name: str) -> Call[schemas.SecretWithValue]:
    """Read a secret with its value in clear.

    Raises:
        NotFound: no secret has that name.
        Conflict: the server's encryption key is not the one the value was stored under.
    """
    return Call("GET", f"{_path(name)}/value", p.one(schemas.SecretWithValue))


def list_secrets(*, limit: int = 200, offset: int = 0) -> Call[list[schemas.Secret]]:
    """List secrets by name: names and times, never values."""
    params = {"limit": limit, "offset": offset}
    return Call("GET", "/secrets", p.many(p.SECRETS), params=params)


def set_secret(name: str, secret: schemas.SecretSet) -> Call[schemas.Secret]:
    """Create the secret ``name``, or replace its value."""
    return Call("PUT", _path(name), p.one(schemas.Secret), body=p.body(secret))


def delete_secret(name: str) -> Call[None]:
    """Delete a secret.

    Raises:
        NotFound: no secret has that name.
    """
    return Call("DELETE", _path(name), p.nothing)
