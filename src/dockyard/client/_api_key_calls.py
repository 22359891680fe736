"""The API's calls about API keys (admin only).

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import seg
from dockyard.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated

_KEYS = TypeAdapter(list[ApiKey])


def create_api_key(key: ApiKeyCreate) -> Call[ApiKeyCreated]:
    """Create an API key; the answer holds its value, shown this once.

    Raises:
        Conflict: a key has that name, or a first key is not an admin key.
    """
    # Not retried once sent: a retry of a creation that succeeded would answer 409, and the
    # value of the key made would be lost.
    parse = p.one(ApiKeyCreated)
    return Call("POST", "/api-keys", parse, body=p.body(key), idempotent=False)


def list_api_keys() -> Call[list[ApiKey]]:
    """Every API key by name (revoked ones too), without their values."""
    return Call("GET", "/api-keys", p.many(_KEYS))


def revoke_api_key(name: str) -> Call[ApiKey]:
    """Revoke an API key (again: no change).

    Raises:
        NotFound: no key has that name.
        Conflict: it is the last admin key of a server without a bootstrap key.
    """
    return Call("POST", f"/api-keys/{seg(name)}/revoke", p.one(ApiKey))
