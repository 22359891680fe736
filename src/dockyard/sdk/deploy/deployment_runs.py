"""Creating runs of deployments from Python: :func:`run_deployment`.

The run it returns is the server's record of it, with its ``state`` as a
:class:`~dockyard.sdk.runtime.states.State` (``run.state.is_completed()``, ``run.state.result()``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from dockyard.sdk.runtime.states import State, StateType, from_server, to_server

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.schemas import Deployment, FlowRun

__all__ = ["DeploymentFlowRun", "RunState", "find_deployment", "run_deployment"]


class RunState(State):
    """The state of a deployment's flow run, as the server reported it.

    A COMPLETED one holds the result the server stored (``state.result()``). It also
    compares equal to the server's name of the state (``run.state == "COMPLETED"``), and
    ``str()`` gives that name.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return to_server(self) == other
        return super().__eq__(other)

    __hash__ = None

    def __str__(self) -> str:
        return to_server(self)


if TYPE_CHECKING:

    class DeploymentFlowRun(FlowRun):
        state: RunState  # type: ignore[assignment]

else:

    def __getattr__(name: str) -> Any:
        if name == "DeploymentFlowRun":
            return _deployment_flow_run()
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _deployment_flow_run() -> type[DeploymentFlowRun]:
    """Make the class at first use: it needs pydantic, which ``import dockyard.deployments``
    does not load."""
    from pydantic import ConfigDict, field_serializer

    from dockyard.schemas import FlowRun

    class Made(FlowRun):
        """A flow run of a deployment, as :func:`run_deployment` returns it: the server's
        record of the run, with its ``state`` as a :class:`RunState`."""

        model_config = ConfigDict(from_attributes=True, arbitrary_types_allowed=True)

        state: RunState  # type: ignore[assignment]

        @field_serializer("state")
        def _state_name(self, state: RunState) -> str:
            return str(state)

    Made.__module__ = __name__
    Made.__name__ = Made.__qualname__ = "DeploymentFlowRun"
    return cast("type[DeploymentFlowRun]", Made)


def _with_state(run: FlowRun) -> DeploymentFlowRun:
    """Return ``run`` with its state as a :class:`RunState`."""
    plain = from_server(str(run.state), run.state_message, run.end_time or run.start_time)
    state = RunState(plain.type, plain.name, plain.message, plain.timestamp)
    if state.type is StateType.COMPLETED:
        state.data = run.result
    fields = {name: getattr(run, name) for name in type(run).model_fields}
    return _deployment_flow_run().model_construct(**{**fields, "state": state})


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
) -> DeploymentFlowRun:
    """Create a run of a deployment and return it, by default once it is final.

    ::

        from dockyard.deployments import run_deployment

        run = run_deployment("get-repo-info/my-first-deployment", {"repo_name": "a/b"})
        print(run.state, run.state.result())

    Args:
        name: the deployment's full name ``FLOW/NAME`` (or its id).
        parameters: the run's parameters, over the deployment's.
        job_variables: the run's job variables, over the deployment's and the pool's.
        timeout: None waits until the run is final (COMPLETED, FAILED, CANCELLED, or
            CRASHED with no crash retry left); 0 returns at once; N waits at most N seconds
            and returns the run as it is then.
        scheduled_start: when the run is due (default: now).

    Returns:
        The run (a :class:`DeploymentFlowRun`): its ``state`` is a State, whose
        ``result()`` gives the run's stored result, or raises for a run that did not
        complete.

    Raises:
        NotFound: no such deployment (the message lists the flow's deployments).
        InvalidInput: the server refused a parameter or job variable.
    """
    from dockyard.client import Client
    from dockyard.schemas import DeploymentRunCreate
    from dockyard.sdk.deploy.waiting import wait_for_run

    request = DeploymentRunCreate(
        parameters=dict(parameters or {}),
        job_variables=dict(job_variables or {}),
        scheduled_start=scheduled_start,
        idempotency_key=str(uuid.uuid4()),
    )
    with Client() as client:
        deployment = find_deployment(client, name)
        run = client.create_deployment_run(deployment.id, request)
        if timeout is None or timeout > 0:
            run = wait_for_run(client, run.id, timeout=timeout)
    return _with_state(run)
