"""Creating runs of deployments from Python: :func:`run_deployment`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import Deployment, FlowRun

__all__ = ["find_deployment", "run_deployment"]


def find_deployment(client: Client, name: str | uuid.UUID) -> Deployment:
    """Read a deployment by id or by full name ``FLOW/NAME`` (``_`` and ``-`` match).

    Raises:
        NotFound: no such deployment; the message lists the flow's deployments.
        DockyardError: ``name`` is neither an id nor ``FLOW/NAME``.
    """
    from dockyard.exceptions import DockyardError

    if isinstance(name, uuid.UUID):
        return client.read_deployment(name)
    try:
        return client.read_deployment(uuid.UUID(name))
    except ValueError:
        pass
    flow, sep, deployment = name.partition("/")
    if not (sep and flow and deployment):
        raise DockyardError(
            f"{name!r} is not a deployment's full name; write FLOW/NAME, "
            "e.g. get-repo-info/my-first-deployment (see `dockyard deployment ls`)"
        )
    return client.read_deployment_by_name(name)


def run_deployment(
    name: str | uuid.UUID,
    parameters: Mapping[str, Any] | None = None,
    job_variables: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    *,
    scheduled_start: datetime | None = None,
) -> FlowRun:
    """Create a run of a deployment and return it, by default once it is final.

    ::

        from dockyard.deployments import run_deployment

        run = run_deployment("get-repo-info/my-first-deployment", {"repo_name": "a/b"})
        print(run.state, run.result)

    Args:
        name: the deployment's full name ``FLOW/NAME`` (or its id).
        parameters: the run's parameters, over the deployment's.
        job_variables: the run's job variables, over the deployment's and the pool's.
        timeout: None waits until the run is final (COMPLETED, FAILED, CANCELLED, or
            CRASHED with no crash retry left); 0 returns at once; N waits at most N seconds
            and returns the run as it is then.
        scheduled_start: when the run is due (default: now).

    Raises:
        NotFound: no such deployment (the message lists the flow's deployments).
        InvalidInput: the server refused a parameter or job variable.
    """
    from dockyard.client import Client
    from dockyard.schemas import DeploymentRunCreate
    from dockyard.sdk.waiting import wait_for_run

    request = DeploymentRunCreate(
        parameters=dict(parameters or {}),
        job_variables=dict(job_variables or {}),
        scheduled_start=scheduled_start,
        idempotency_key=str(uuid.uuid4()),
    )
    with Client() as client:
        deployment = find_deployment(client, name)
        run = client.create_deployment_run(deployment.id, request)
        if timeout is not None and timeout <= 0:
            return run
        return wait_for_run(client, run.id, timeout=timeout)
