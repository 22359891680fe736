"""Global concurrency limits and rate limits, from flows, tasks and plain Python.

::

    from dockyard.concurrency.sync import concurrency, rate_limit

    with concurrency("database", occupy=2):   # hold 2 slots of the limit for the block
        ...
    rate_limit("github-api")                  # take a slot that decays: at most N per second

In ``async`` code use the same names from :mod:`dockyard.concurrency.asyncio` (``async
with concurrency(...)``, ``await rate_limit(...)``). Create limits with ``dockyard gcl
create NAME --limit N`` (``--slot-decay-per-second X`` for a rate limit). Slots are held
under a lease the SDK renews while the block runs: slots of a process that dies come back
when its lease expires (``DOCKYARD_CONCURRENCY_LEASE_SECONDS``, 60 s by default).
"""

from __future__ import annotations

__all__: list[str] = []
