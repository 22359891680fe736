"""The deployment of the flow run in progress: ``dockyard.runtime.deployment.<attribute>``.

Read when asked. Only a deployment's run (started by a worker, ``serve`` or the engine) has
one; elsewhere, and in its subflows, the attributes are None, or an empty dict:

- ``id``: the deployment's id, as text.
- ``name``: its name.
- ``version``: its ``version``.
- ``parameters``: the parameters of this run: the deployment's, overridden by the run's
  (without the flow's defaults).
- ``flow_run_id``: the id of the flow run in progress, as text.
"""

from __future__ import annotations

from typing import Any

from dockyard.runtime import flow_run
from dockyard.runtime._getters import attribute
from dockyard.sdk.runtime.context import FLOW_RUN, RunRecord

__all__ = ["get_flow_run_id", "get_id", "get_name", "get_parameters", "get_version"]


def _record() -> RunRecord | None:
    run = FLOW_RUN.get()
    return run.record if run is not None else None


def get_id() -> str | None:
    """The deployment's id, as text."""
    record = _record()
    return str(record.deployment_id) if record and record.deployment_id else None


def get_name() -> str | None:
    """The deployment's name."""
    record = _record()
    return record.deployment_name if record is not None else None


def get_version() -> str | None:
    """The deployment's version."""
    record = _record()
    return record.deployment_version if record is not None else None


def get_parameters() -> dict[str, Any]:
    """The parameters of this run: the deployment's, overridden by the run's."""
    record = _record()
    return dict(record.parameters) if record is not None else {}


def get_flow_run_id() -> str | None:
    """The id of the flow run in progress, as text."""
    return flow_run.get_id()


_GETTERS = {
    "flow_run_id": get_flow_run_id,
    "id": get_id,
    "name": get_name,
    "parameters": get_parameters,
    "version": get_version,
}


def __getattr__(name: str) -> Any:
    return attribute(__name__, _GETTERS, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_GETTERS))
