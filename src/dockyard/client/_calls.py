"""The API's calls about the server, flows, deployments, runs and logs.

Each function builds a :class:`~dockyard.client._core.Call` and does no I/O; the clients
expose them as methods of the same name (see ``_sync.py`` and ``_async.py``).
"""

from __future__ import annotations

from typing import Any

from dockyard import schemas
from dockyard.client import _parse as p
from dockyard.client._core import Call
from dockyard.client._parse import Id, seg

# ---------------------------------------------------------------- server


def health() -> Call[dict[str, Any]]:
    """Ask whether the server is up: ``status`` ok (or degraded), ``database`` ok (or
    unreachable, with ``database_error``), and the LISTEN connection's state on PostgreSQL."""
    return Call("GET", "/health", p.mapping)


def version() -> Call[schemas.ServerVersion]:
    """Read the server's version and the API version it speaks."""
    return Call("GET", "/version", p.one(schemas.ServerVersion))


# ---------------------------------------------------------------- flows


def create_flow(flow: schemas.FlowCreate) -> Call[schemas.Flow]:
    """Create a flow; an existing name answers the existing flow."""
    return Call("POST", "/flows", p.one(schemas.Flow), body=p.body(flow))


def read_flow(id: Id) -> Call[schemas.Flow]:
    """Read a flow by id."""
    return Call("GET", f"/flows/{seg(id)}", p.one(schemas.Flow))


def read_flow_by_name(name: str) -> Call[schemas.Flow]:
    """Read a flow by name (``_`` and ``-`` match each other)."""
    return Call("GET", f"/flows/name/{seg(name)}", p.one(schemas.Flow))


def list_flows(
    *, name: str | None = None, limit: int = 200, offset: int = 0
) -> Call[list[schemas.Flow]]:
    """List flows, optionally only the one called ``name``."""
    params = {"name": name, "limit": limit, "offset": offset}
    return Call("GET", "/flows", p.many(p.FLOWS), params=params)


def delete_flow(id: Id) -> Call[None]:
    """Delete a flow with its deployments and runs."""
    return Call("DELETE", f"/flows/{seg(id)}", p.nothing)


# ---------------------------------------------------------------- deployments


def upsert_deployment(deployment: schemas.DeploymentCreate) -> Call[schemas.Deployment]:
    """Create a deployment, or update the one with the same flow name and name."""
    return Call("POST", "/deployments", p.one(schemas.Deployment), body=p.body(deployment))


def read_deployment(id: Id) -> Call[schemas.Deployment]:
    """Read a deployment by id."""
    return Call("GET", f"/deployments/{seg(id)}", p.one(schemas.Deployment))


def read_deployment_by_name(name: str) -> Call[schemas.Deployment]:
    """Read a deployment by its full name ``FLOW/NAME``.

    Raises:
        ValueError: ``name`` has no ``/``.
        NotFound: no such deployment; ``suggestions`` lists the flow's deployments.
    """
    flow, sep, deployment = name.partition("/")
    if not sep or not flow or not deployment:
        raise ValueError(f"a deployment's full name is FLOW/NAME, got {name!r}")
    path = f"/deployments/name/{seg(flow)}/{seg(deployment)}"
    return Call("GET", path, p.one(schemas.Deployment))


def list_deployments(
    *,
    flow_name: str | None = None,
    work_pool_name: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Call[list[schemas.Deployment]]:
    """List deployments, optionally of one flow or one work pool."""
    params = {
        "flow_name": flow_name,
        "work_pool_name": work_pool_name,
        "limit": limit,
        "offset": offset,
    }
    return Call("GET", "/deployments", p.many(p.DEPLOYMENTS), params=params)


def update_deployment(id: Id, update: schemas.DeploymentUpdate) -> Call[schemas.Deployment]:
    """Change the fields set in ``update``."""
    path = f"/deployments/{seg(id)}"
    return Call("PATCH", path, p.one(schemas.Deployment), body=p.patch(update))


def delete_deployment(id: Id) -> Call[None]:
    """Delete a deployment."""
    return Call("DELETE", f"/deployments/{seg(id)}", p.nothing)


def create_deployment_run(
    deployment_id: Id, run: schemas.DeploymentRunCreate
) -> Call[schemas.FlowRun]:
    """Schedule a run of a deployment (the same ``idempotency_key`` answers the same run)."""
    path = f"/deployments/{seg(deployment_id)}/runs"
    idempotent = run.idempotency_key is not None
    return Call("POST", path, p.one(schemas.FlowRun), body=p.body(run), idempotent=idempotent)


# ---------------------------------------------------------------- flow runs


def create_flow_run(run: schemas.FlowRunCreate) -> Call[schemas.FlowRunStarted]:
    """Create a run of a flow (and the flow if it is new)."""
    idempotent = run.idempotency_key is not None
    parse = p.one(schemas.FlowRunStarted)
    return Call("POST", "/flow-runs", parse, body=p.body(run), idempotent=idempotent)


def read_flow_run(id: Id) -> Call[schemas.FlowRun]:
    """Read a flow run by id."""
    return Call("GET", f"/flow-runs/{seg(id)}", p.one(schemas.FlowRun))


def list_flow_runs(
    *,
    flow_name: str | None = None,
    deployment_name: str | None = None,
    deployment_id: Id | None = None,
    work_pool_name: str | None = None,
    state: list[str] | None = None,
    late: bool | None = None,
    limit: int = 200,
    offset: int = 0,
) -> Call[list[schemas.FlowRun]]:
    """List flow runs, newest first; ``state`` keeps runs in any of the given states,
    ``late=True`` only SCHEDULED runs past their start by more than the late threshold."""
    params = {
        "flow_name": flow_name,
        "deployment_name": deployment_name,
        "deployment_id": str(deployment_id) if deployment_id is not None else None,
        "work_pool_name": work_pool_name,
        "state": [str(s).upper() for s in state] if state else None,
        "late": None if late is None else str(late).lower(),
        "limit": limit,
        "offset": offset,
    }
    return Call("GET", "/flow-runs", p.many(p.FLOW_RUNS), params=params)


def update_flow_run(id: Id, update: schemas.FlowRunUpdate) -> Call[schemas.FlowRun]:
    """Change the fields set in ``update``."""
    return Call("PATCH", f"/flow-runs/{seg(id)}", p.one(schemas.FlowRun), body=p.patch(update))


def delete_flow_run(id: Id) -> Call[None]:
    """Delete a flow run."""
    return Call("DELETE", f"/flow-runs/{seg(id)}", p.nothing)


def set_flow_run_state(id: Id, transition: schemas.StateTransition) -> Call[schemas.FlowRunStarted]:
    """Move a run to another state; ``lease_token`` is set when the move granted a lease.

    Raises:
        Conflict: the transition was refused; ``current_state`` is the run's state.
    """
    path = f"/flow-runs/{seg(id)}/state"
    idempotent = transition.idempotency_key is not None
    body = p.body(transition)
    return Call("POST", path, p.one(schemas.FlowRunStarted), body=body, idempotent=idempotent)


def read_flow_run_states(id: Id) -> Call[list[schemas.State]]:
    """Read a run's state history, oldest first."""
    return Call("GET", f"/flow-runs/{seg(id)}/states", p.many(p.STATES))


def cancel_flow_run(id: Id) -> Call[schemas.FlowRun]:
    """Cancel a run: a scheduled run becomes CANCELLED, a started one CANCELLING."""
    # Asking twice for the same cancellation is harmless, so it may be retried.
    return Call("POST", f"/flow-runs/{seg(id)}/cancel", p.one(schemas.FlowRun))


def resume_flow_run(id: Id, run_input: dict[str, Any] | None = None) -> Call[schemas.FlowRun]:
    """Resume a PAUSED run with ``run_input``: a paused run goes back to RUNNING, a
    suspended one to SCHEDULED.

    Raises:
        Conflict: the run is not PAUSED. InvalidInput: the input does not fit its pause's
            input schema (the run stays PAUSED).
    """
    body = p.body(schemas.ResumeRequest(run_input=run_input))
    # not retried once sent: a second resume of a resumed run is refused (409)
    path = f"/flow-runs/{seg(id)}/resume"
    return Call("POST", path, p.one(schemas.FlowRun), body=body, idempotent=False)


# ---------------------------------------------------------------- task runs and logs


def create_task_runs(records: list[schemas.TaskRunRecord]) -> Call[int]:
    """Record final task runs (upserted by id); answers how many were stored."""
    body = [p.body(record) for record in records]
    return Call("POST", "/task-runs", p.count, body=body)


def list_task_runs(
    *, flow_run_id: Id, limit: int = 1000, offset: int = 0
) -> Call[list[schemas.TaskRun]]:
    """List the task runs of a flow run."""
    params = {"flow_run_id": str(flow_run_id), "limit": limit, "offset": offset}
    return Call("GET", "/task-runs", p.many(p.TASK_RUNS), params=params)


def read_task_run(id: Id) -> Call[schemas.TaskRun]:
    """Read a task run by id."""
    return Call("GET", f"/task-runs/{seg(id)}", p.one(schemas.TaskRun))


def create_logs(logs: list[schemas.LogCreate]) -> Call[int]:
    """Store log lines; answers how many were stored."""
    body = [p.body(log) for log in logs]
    return Call("POST", "/logs", p.count, body=body, idempotent=False)


def read_logs(
    *,
    flow_run_id: Id,
    after_id: int | None = None,
    min_level: int | None = None,
    limit: int = 1000,
) -> Call[list[schemas.Log]]:
    """Read a run's logs, oldest first; ``after_id`` pages forward from a log's id."""
    params = {
        "flow_run_id": str(flow_run_id),
        "after_id": after_id,
        "min_level": min_level,
        "limit": limit,
    }
    return Call("GET", "/logs", p.many(p.LOGS), params=params)
