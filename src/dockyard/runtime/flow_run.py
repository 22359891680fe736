"""The flow run in progress: ``dockyard.runtime.flow_run.<attribute>``, read when asked.

Inside a task run it is the flow run the task belongs to. Attributes (outside a flow run:
None, an empty dict or list, 0 for ``run_count``):

- ``id``: the run's id, as text.
- ``name``: the run's name.
- ``flow_name``, ``flow_version``: the flow's name and ``version``.
- ``parameters``: the run's parameters, defaults included.
- ``tags``: the run's tags.
- ``scheduled_start_time``: when the run was scheduled to start (a UTC ``datetime``); for a
  flow that was called, when its run started; outside a run, now.
- ``run_count``: the attempt in progress, 1 on the first (retries count, crash retries too).
- ``deployment_id``: the run's deployment, as text, for a deployment's run.
- ``parent_flow_run_id``: the flow run that started this one: a subflow's parent, or the run
  that triggered this deployment's run.
- ``parent_deployment_id``: that parent's deployment, if it is a deployment's run.
- ``job_variables``: the run's own job variables (a deployment's run).
- ``api_url``, ``ui_url``: the run in the server's API and its page in the UI (tracked runs).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from dockyard.exceptions import DockyardError
from dockyard.runtime._getters import attribute
from dockyard.sdk.runtime.context import FLOW_RUN, FlowRunContext

__all__ = [
    "get_api_url",
    "get_deployment_id",
    "get_flow_name",
    "get_flow_version",
    "get_id",
    "get_job_variables",
    "get_name",
    "get_parameters",
    "get_parent_deployment_id",
    "get_parent_flow_run_id",
    "get_run_count",
    "get_scheduled_start_time",
    "get_tags",
    "get_ui_url",
]


def get_id() -> str | None:
    """The run's id, as text."""
    run = FLOW_RUN.get()
    return run.handle.id_text if run is not None else None


def get_name() -> str | None:
    """The run's name."""
    run = FLOW_RUN.get()
    return run.handle.name if run is not None else None


def get_flow_name() -> str | None:
    """The name of the flow being run."""
    run = FLOW_RUN.get()
    return run.flow.name if run is not None else None


def get_flow_version() -> str | None:
    """The ``version`` of the flow being run."""
    run = FLOW_RUN.get()
    return run.flow.version if run is not None else None


def get_parameters() -> dict[str, Any]:
    """The run's parameters, defaults included."""
    run = FLOW_RUN.get()
    return dict(run.parameters) if run is not None else {}


def get_tags() -> list[str]:
    """The run's tags."""
    run = FLOW_RUN.get()
    return list(run.tags) if run is not None else []


def get_scheduled_start_time() -> datetime:
    """When the run was scheduled to start (when it started, for a flow that was called)."""
    run = FLOW_RUN.get()
    if run is None:
        return datetime.now(UTC)
    return run.flow_run.scheduled_start_time


def get_run_count() -> int:
    """The attempt in progress, 1 on the first; 0 outside a flow run."""
    run = FLOW_RUN.get()
    return run.run_count if run is not None else 0


def get_deployment_id() -> str | None:
    """The run's deployment, as text."""
    run = FLOW_RUN.get()
    return _text(run.record.deployment_id) if run is not None and run.record else None


def get_parent_flow_run_id() -> str | None:
    """The flow run that started this one, as text."""
    run = FLOW_RUN.get()
    return _text(run.flow_run.parent_flow_run_id) if run is not None else None


def get_parent_deployment_id() -> str | None:
    """The deployment of the flow run that started this one, as text.

    The parent of a subflow is known here; the parent of a deployment's run is read from the
    server when this is asked (None if the server does not answer).
    """
    run = FLOW_RUN.get()
    if run is None:
        return None
    if run.parent is not None:
        record = run.parent.record
        return _text(record.deployment_id) if record is not None else None
    parent_id = run.record.parent_flow_run_id if run.record is not None else None
    if parent_id is None or not run.tracked:
        return None
    try:
        parent = run.tracker.api.read_flow_run(parent_id)
    except DockyardError:
        return None
    deployment_id = parent.get("deployment_id")
    return str(deployment_id) if deployment_id else None


def get_job_variables() -> dict[str, Any]:
    """The run's own job variables (a deployment's run; else empty)."""
    run = FLOW_RUN.get()
    return dict(run.record.job_variables) if run is not None and run.record else {}


def get_api_url() -> str | None:
    """The run in the server's API (a tracked run)."""
    run = FLOW_RUN.get()
    if run is None or not run.tracked:
        return None
    return f"{_api(run)}/flow-runs/{run.handle.id_text}"


def get_ui_url() -> str | None:
    """The run's page in the server's UI (a tracked run, with a server API at ``.../api``)."""
    run = FLOW_RUN.get()
    if run is None or not run.tracked or not _api(run).endswith("/api"):
        return None
    return f"{_api(run)[: -len('/api')]}/runs/{run.handle.id_text}"


def _api(run: FlowRunContext) -> str:
    return run.settings.api_url.rstrip("/")


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


_GETTERS = {
    "api_url": get_api_url,
    "deployment_id": get_deployment_id,
    "flow_name": get_flow_name,
    "flow_version": get_flow_version,
    "id": get_id,
    "job_variables": get_job_variables,
    "name": get_name,
    "parameters": get_parameters,
    "parent_deployment_id": get_parent_deployment_id,
    "parent_flow_run_id": get_parent_flow_run_id,
    "run_count": get_run_count,
    "scheduled_start_time": get_scheduled_start_time,
    "tags": get_tags,
    "ui_url": get_ui_url,
}


def __getattr__(name: str) -> Any:
    return attribute(__name__, _GETTERS, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_GETTERS))
