"""Global concurrency limits and rate limits for ``async`` code: the twins of
:mod:`dockyard.concurrency.sync`, whose requests wait off the event loop.

::

    async with concurrency("database", occupy=2):
        ...
    await rate_limit("github-api")
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from dockyard.sdk.runtime import concurrency as _run

__all__ = ["concurrency", "rate_limit"]


@contextlib.asynccontextmanager
async def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> AsyncIterator[None]:
    """Hold ``occupy`` slots of every named limit for the block; see
    :func:`dockyard.concurrency.sync.concurrency`."""
    api, ask = _run.asking(names, occupy, timeout_seconds, strict, mode="concurrency")
    lease_id = await _run.atake(api, ask)
    try:
        yield
    finally:
        if lease_id is not None:
            await _run.agive_back(api, lease_id, ask.names)


async def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take ``occupy`` decaying slots of every named limit; see
    :func:`dockyard.concurrency.sync.rate_limit`."""
    api, ask = _run.asking(names, occupy, timeout_seconds, strict, mode="rate_limit")
    await _run.atake(api, ask)
