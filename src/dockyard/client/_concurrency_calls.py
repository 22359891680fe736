"""The API's calls about global concurrency limits (the limits themselves; flows and tasks
take their slots through :mod:`dockyard.concurrency`).

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import seg
from dockyard.schemas import concurrency as cs

LIMITS = TypeAdapter(list[cs.ConcurrencyLimit])


def _path(name: str) -> str:
    return f"/concurrency-limits/name/{seg(name)}"


def create_concurrency_limit(limit: cs.ConcurrencyLimitCreate) -> Call[cs.ConcurrencyLimit]:
    """Create a global concurrency limit.

    Raises:
        Conflict: a limit with that name exists.
    """
    # Not retried once sent: a retry of a creation that succeeded would answer 409.
    parse = p.one(cs.ConcurrencyLimit)
    return Call("POST", "/concurrency-limits", parse, body=p.body(limit), idempotent=False)


def read_concurrency_limit_by_name(name: str) -> Call[cs.ConcurrencyLimitDetail]:
    """Read a limit with its live leases.

    Raises:
        NotFound: no limit has that name.
    """
    return Call("GET", _path(name), p.one(cs.ConcurrencyLimitDetail))


def list_concurrency_limits(
    *, limit: int = 200, offset: int = 0
) -> Call[list[cs.ConcurrencyLimit]]:
    """List limits by name, with the slots in use now."""
    params = {"limit": limit, "offset": offset}
    return Call("GET", "/concurrency-limits", p.many(LIMITS), params=params)


def update_concurrency_limit(
    name: str, update: cs.ConcurrencyLimitUpdate
) -> Call[cs.ConcurrencyLimit]:
    """Change the fields set in ``update``."""
    return Call("PATCH", _path(name), p.one(cs.ConcurrencyLimit), body=p.patch(update))


def delete_concurrency_limit(name: str) -> Call[None]:
    """Delete a limit (its leases go with it).

    Raises:
        NotFound: no limit has that name.
    """
    return Call("DELETE", _path(name), p.nothing)
