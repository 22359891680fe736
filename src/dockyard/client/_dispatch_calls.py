"""The API's calls of dispatch: heartbeats, long-poll claims, leases, job configurations.

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from dockyard import schemas
from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import Id, seg

CLAIMED_RUNS = TypeAdapter(list[schemas.ClaimedRun])
# A long-poll answers within its ``wait``; the read timeout gives the server this much more.
CLAIM_TIMEOUT_MARGIN = 15.0


def heartbeat(beat: schemas.WorkerHeartbeat) -> Call[schemas.HeartbeatAnswer]:
    """Say that a worker (or a serve process) lives and renew its PENDING runs' leases.

    The answer lists the runs it holds that were asked to cancel, and those it named that
    are no longer its own.
    """
    parse = p.one(schemas.HeartbeatAnswer)
    return Call("POST", "/workers/heartbeat", parse, body=p.body(beat))


def claim(request: schemas.ClaimRequest) -> Call[list[schemas.ClaimedRun]]:
    """Claim due runs: answers at once when some are due, else within ``request.wait`` seconds.

    Each claimed run is PENDING, bound to the worker, with a lease token and its rendered job
    configuration. Raises ``NotFound`` when the work pool does not exist.
    """
    # Never sent twice: a retry after the server claimed runs for the first try would leave
    # those runs PENDING with nobody to start them (until their lease expires).
    return Call(
        "POST",
        "/workers/claim",
        p.many(CLAIMED_RUNS),
        body=p.body(request),
        idempotent=False,
        timeout=request.wait + CLAIM_TIMEOUT_MARGIN,
    )


def renew_lease(run_id: Id, renewal: schemas.LeaseRenewal) -> Call[schemas.FlowRun]:
    """Keep the lease of a run this process holds; answers the run (its state shows a cancel).

    Raises:
        Conflict: the run is no longer leased with this token: stop reporting on it.
    """
    path = f"/flow-runs/{seg(run_id)}/lease"
    return Call("POST", path, p.one(schemas.FlowRun), body=p.body(renewal))


def preview_job_configuration(pool: str, deployment: str | None = None) -> Call[dict[str, Any]]:
    """Render ``pool``'s job configuration as a worker would get it.

    ``deployment`` (``FLOW/NAME``) adds that deployment's job variables. ``{{ $NAME }}``
    placeholders are left for the worker, which fills them from its own environment.
    """
    params = {"deployment": deployment}
    return Call("GET", f"/work-pools/{seg(pool)}/preview", p.mapping, params=params)
