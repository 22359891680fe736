"""Finding, after a restart, the containers a docker worker of the same name started.

A container is taken back when its run still exists, is at the attempt the container was
started for (a run retried since belongs to whoever runs the new attempt), and is not both
finished and final. A container created but never started is removed: its run's lease runs
out and the server declares it CRASHED. The worker ends a run taken back with the lease
token the container was started with (:func:`lease_token_of`).

The same pass tidies up after any docker worker of the same server: a container that ended
while no worker followed it (its worker had stopped) is removed once its run is final or
has moved on to a later attempt, unless it was kept with ``auto_remove: false``. A worker
starting a crash retry removes, likewise, the ended containers of the run's earlier attempts
(:func:`remove_earlier_attempts`).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from typing import Any

from dockyard._states import FINAL_STATES
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

__all__ = ["find_containers", "lease_token_of", "list_containers", "remove_earlier_attempts"]

log = logging.getLogger("dockyard.worker")

FINAL = FINAL_STATES
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
            elif not mine and (run is None or run.state in FINAL or _moved_on(container, run)):
                _remove_leftover(container)
    return found


def remove_earlier_attempts(client: Any, run: FlowRun) -> None:
    """Remove the ended containers of ``run``'s earlier attempts (unless kept).

    One whose worker died is nobody's any more; a running one is left to stop by itself
    (the server refuses its engine, whose lease is no longer current).
    """
    import docker

    filters = {"label": f"{LABEL_RUN_ID}={run.id}"}
    try:
        found = list_containers(client, all=True, filters=filters)
    except docker.errors.APIError as exc:
        # tidying only: the new attempt's own name never meets an earlier one's
        log.warning("cannot look for earlier attempts' containers of run %s: %s", run.id, exc)
        return
    for container in found:
        if container.status not in ALIVE and _moved_on(container, run):
            _remove_leftover(container)


def lease_token_of(container: Any) -> uuid.UUID | None:
    """The lease token a container was started with (its ``DOCKYARD_LEASE_TOKEN``)."""
    environment = ((container.attrs or {}).get("Config") or {}).get("Env") or []
    for variable in environment:
        name, _, value = str(variable).partition("=")
        if name == "DOCKYARD_LEASE_TOKEN":
            try:
                return uuid.UUID(value)
            except ValueError:
                return None
    return None


def _take_back(container: Any, run: FlowRun | None) -> bool:
    status = container.status
    if run is not None and status in ALIVE and _moved_on(container, run):
        return False  # an earlier attempt still running: its engine is refused and stops
    if (
        run is None
        or status == "created"
        or (status not in ALIVE and (run.state in FINAL or _moved_on(container, run)))
    ):
        _remove_leftover(container)
        return False
    return True


def _moved_on(container: Any, run: FlowRun) -> bool:
    """Whether ``run`` is at another attempt than the one ``container`` was started for."""
    return (container.labels or {}).get(LABEL_ATTEMPT) != str(run.attempt)


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
