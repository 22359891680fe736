"""Finding, after a restart, the containers a docker worker of the same name started.

A container is taken back when its run still exists, is at the attempt the container was
started for (a run retried since belongs to whoever runs the new attempt), and is not both
finished and final. A container created but never started is removed: its run's lease runs
out and the server declares it CRASHED.

The same pass tidies up after any docker worker of the same server: a container that ended
while no worker followed it (its worker had stopped) is removed once its run is final,
unless it was kept with ``auto_remove: false``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from dockyard.client import Client
from dockyard.exceptions import ApiError, NotFound, ServerUnreachable
from dockyard.schemas import FlowRun
from dockyard.settings import Settings
from dockyard.workers._docker_spec import (
    LABEL_API_URL,
    LABEL_ATTEMPT,
    LABEL_AUTO_REMOVE,
    LABEL_RUN_ID,
    LABEL_WORKER,
)

__all__ = ["find_containers"]

log = logging.getLogger("dockyard.worker")

FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
ALIVE = frozenset({"running", "restarting", "paused"})


def list_containers(client: Any, **filters: Any) -> list[Any]:
    """``client.containers.list``, again when a container vanished while it was listed.

    The Docker SDK inspects each container it lists; one removed in between (a finished
    run's, by its worker) makes the whole listing fail with NotFound.
    """
    import docker

    for _ in range(5):
        try:
            found: list[Any] = client.containers.list(**filters)
            return found
        except docker.errors.NotFound:
            continue
    found = client.containers.list(**filters)
    return found


def find_containers(client: Any, worker: str, settings: Settings) -> dict[uuid.UUID, Any]:
    """Run id → container, for the containers of ``worker`` to watch again."""
    filters = {"label": [f"{LABEL_API_URL}={settings.api_url}", LABEL_RUN_ID]}
    found: dict[uuid.UUID, Any] = {}
    with Client(api_url=settings.api_url, api_key=settings.api_key) as api:
        for container in list_containers(client, all=True, filters=filters):
            labels = container.labels or {}
            mine = labels.get(LABEL_WORKER) == worker
            if not mine and container.status in ALIVE:
                continue  # another worker's, still running: its own business
            run_id = _run_id(container)
            if run_id is None:
                continue
            try:
                run: FlowRun | None = api.read_flow_run(run_id)
            except NotFound:
                run = None
            except (ServerUnreachable, ApiError) as exc:
                log.warning("container %s: cannot read its run: %s", container.short_id, exc)
                continue
            if mine and _take_back(container, run):
                found[run_id] = container
            elif not mine and (run is None or run.state in FINAL):
                _remove_leftover(container)
    return found


def _take_back(container: Any, run: FlowRun | None) -> bool:
    labels = container.labels or {}
    if run is not None and str(run.attempt) != labels.get(LABEL_ATTEMPT):
        return False  # an earlier attempt's container: not this worker's run any more
    status = container.status
    if run is None or status == "created" or (status not in ALIVE and run.state in FINAL):
        _remove_leftover(container)
        return False
    return True


def _run_id(container: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID((container.labels or {}).get(LABEL_RUN_ID, ""))
    except ValueError:
        return None


def _remove_leftover(container: Any) -> None:
    import docker

    if (container.labels or {}).get(LABEL_AUTO_REMOVE) == "false":
        return
    with contextlib.suppress(docker.errors.APIError):
        container.remove(force=True)
