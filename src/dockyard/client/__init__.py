"""Typed HTTP clients of the Dockyard REST API.

:class:`Client` is synchronous, :class:`AsyncClient` asynchronous; both have the same
methods, named after the API's calls (``read_work_pool``, ``list_flow_runs``, ...), and
answer the models of :mod:`dockyard.schemas`. Both read the ``api_url`` and ``api_key``
settings unless given them.

    from dockyard.client import Client

    with Client() as client:
        for pool in client.list_work_pools():
            print(pool.name, pool.status)

:class:`Call` and ``send()`` let other parts of Dockyard add a call of their own with the
same retries and error mapping.
"""

from __future__ import annotations

from dockyard.client._async import AsyncClient
from dockyard.client._core import Call, RetryPolicy
from dockyard.client._sync import Client

__all__ = ["AsyncClient", "Call", "Client", "RetryPolicy"]
