"""Global concurrency limits and rate limits for synchronous code.

See :mod:`dockyard.concurrency` for the rules; :mod:`dockyard.concurrency.asyncio` has the
twins for ``async`` code.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dockyard.sdk.runtime import concurrency as _run

__all__ = ["concurrency", "rate_limit"]


@contextlib.contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> Iterator[None]:
    """Hold ``occupy`` slots of every named limit for the block (all or none), waiting for
    them while the limits are full; give them back when the block ends, however it ends.

    A name without a limit holds nothing (a warning is logged once); an inactive limit is
    not enforced.

    Args:
        names: the limit, or limits.
        occupy: slots to take of each.
        timeout_seconds: give up after this long (None: wait as long as it takes).
        strict: raise if a name has no limit, rather than warn.

    Raises:
        TimeoutError: the slots were not free within ``timeout_seconds``.
        NotFound: ``strict`` and a name has no limit.
        InvalidInput: ``occupy`` is more than a limit has (no wait could give it).
        ValueError: a name is not a name, ``occupy`` not 1 or more.
    """
    api, ask = _run.asking(names, occupy, timeout_seconds, strict, mode="concurrency")
    lease_id = _run.take(api, ask)
    try:
        yield
    finally:
        if lease_id is not None:
            _run.give_back(api, lease_id, ask.names)


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Take ``occupy`` slots of every named limit for good, waiting while they are full: the
    slots decay at each limit's ``slot_decay_per_second``, so a limit of 10 decaying 2 per
    second lets 2 calls a second through once full.

    Raises:
        TimeoutError: the slots were not free within ``timeout_seconds``.
        NotFound: ``strict`` and a name has no limit.
        InvalidInput: a limit has no slot decay (its slots would never come back), or
            fewer slots than ``occupy``.
        ValueError: a name is not a name, ``occupy`` not 1 or more.
    """
    api, ask = _run.asking(names, occupy, timeout_seconds, strict, mode="rate_limit")
    _run.take(api, ask)
