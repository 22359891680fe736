"""The API's calls about worker types, work pools, work queues and workers.

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name.
"""

from __future__ import annotations

from dockyard import schemas
from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import seg

# ---------------------------------------------------------------- worker types


def list_worker_types() -> Call[list[schemas.WorkerType]]:
    """List the installed worker types."""
    return Call("GET", "/worker-types", p.many(p.WORKER_TYPES))


def read_worker_type(type: str) -> Call[schemas.WorkerType]:
    """Read a worker type and its default base job template."""
    return Call("GET", f"/worker-types/{seg(type)}", p.one(schemas.WorkerType))


# ---------------------------------------------------------------- work pools


def create_work_pool(pool: schemas.WorkPoolCreate) -> Call[schemas.WorkPool]:
    """Create a work pool (and its ``default`` queue).

    Raises:
        Conflict: a pool with that name exists.
    """
    # Not retried once sent: a retry of a creation that succeeded would answer 409.
    return Call("POST", "/work-pools", p.one(schemas.WorkPool), body=p.body(pool), idempotent=False)


def read_work_pool(name: str) -> Call[schemas.WorkPool]:
    """Read a work pool by name."""
    return Call("GET", f"/work-pools/{seg(name)}", p.one(schemas.WorkPool))


def list_work_pools(*, limit: int = 200, offset: int = 0) -> Call[list[schemas.WorkPool]]:
    """List work pools."""
    params = {"limit": limit, "offset": offset}
    return Call("GET", "/work-pools", p.many(p.WORK_POOLS), params=params)


def update_work_pool(name: str, update: schemas.WorkPoolUpdate) -> Call[schemas.WorkPool]:
    """Change the fields set in ``update``."""
    path = f"/work-pools/{seg(name)}"
    return Call("PATCH", path, p.one(schemas.WorkPool), body=p.patch(update))


def delete_work_pool(name: str) -> Call[None]:
    """Delete a work pool with its queues."""
    return Call("DELETE", f"/work-pools/{seg(name)}", p.nothing)


def pause_work_pool(name: str) -> Call[schemas.WorkPool]:
    """Pause a work pool: its workers claim nothing until it is resumed."""
    return Call("POST", f"/work-pools/{seg(name)}/pause", p.one(schemas.WorkPool))


def resume_work_pool(name: str) -> Call[schemas.WorkPool]:
    """Resume a paused work pool."""
    return Call("POST", f"/work-pools/{seg(name)}/resume", p.one(schemas.WorkPool))


# ---------------------------------------------------------------- work queues


def _queue(pool: str, name: str) -> str:
    return f"/work-pools/{seg(pool)}/queues/{seg(name)}"


def create_work_queue(pool: str, queue: schemas.WorkQueueCreate) -> Call[schemas.WorkQueue]:
    """Create a work queue in ``pool``.

    Raises:
        Conflict: the pool has a queue with that name.
    """
    path = f"/work-pools/{seg(pool)}/queues"
    parse = p.one(schemas.WorkQueue)
    return Call("POST", path, parse, body=p.body(queue), idempotent=False)


def read_work_queue(pool: str, name: str) -> Call[schemas.WorkQueue]:
    """Read a work queue of ``pool`` by name."""
    return Call("GET", _queue(pool, name), p.one(schemas.WorkQueue))


def list_work_queues(pool: str) -> Call[list[schemas.WorkQueue]]:
    """List the queues of ``pool`` by priority."""
    return Call("GET", f"/work-pools/{seg(pool)}/queues", p.many(p.WORK_QUEUES))


def update_work_queue(
    pool: str, name: str, update: schemas.WorkQueueUpdate
) -> Call[schemas.WorkQueue]:
    """Change the fields set in ``update``."""
    return Call("PATCH", _queue(pool, name), p.one(schemas.WorkQueue), body=p.patch(update))


def delete_work_queue(pool: str, name: str) -> Call[None]:
    """Delete a work queue."""
    return Call("DELETE", _queue(pool, name), p.nothing)


def pause_work_queue(pool: str, name: str) -> Call[schemas.WorkQueue]:
    """Pause a work queue: its runs are not claimed until it is resumed."""
    return Call("POST", f"{_queue(pool, name)}/pause", p.one(schemas.WorkQueue))


def resume_work_queue(pool: str, name: str) -> Call[schemas.WorkQueue]:
    """Resume a paused work queue."""
    return Call("POST", f"{_queue(pool, name)}/resume", p.one(schemas.WorkQueue))


# ---------------------------------------------------------------- workers


def list_workers(pool: str) -> Call[list[schemas.Worker]]:
    """List the workers that polled ``pool``."""
    return Call("GET", f"/work-pools/{seg(pool)}/workers", p.many(p.WORKERS))


def delete_worker(pool: str, name: str) -> Call[None]:
    """Forget a worker of ``pool``."""
    return Call("DELETE", f"/work-pools/{seg(pool)}/workers/{seg(name)}", p.nothing)
