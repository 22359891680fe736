"""Dockyard: write flows in plain Python; run them anywhere, tracked by a server.

::

    from dockyard import flow, task

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow(log_prints=True)
    def my_flow(n: int = 3) -> int:
        total = sum(add.map(range(n), 1).result())
        print(f"total: {total}")
        return total

Run a flow by calling it; deploy it to a work pool with ``my_flow.deploy(name, pool)``, or
serve it from this process with ``my_flow.serve(name)`` (several: ``serve(d1, d2)`` with
``d = my_flow.to_deployment(name)``); trigger runs with :mod:`dockyard.deployments`.

Importing this package is light: it loads the decorators only. What a run needs is imported
at the first call of a flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard._version import __version__
from dockyard.sdk.flows import Flow, flow
from dockyard.sdk.tasks import Task, task

if TYPE_CHECKING:
    from dockyard.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run
    from dockyard.sdk.deploy.images import DeploymentImage
    from dockyard.sdk.deploy.serve import serve
    from dockyard.sdk.runtime.cache import task_input_hash
    from dockyard.sdk.runtime.context import FlowRunContext, TaskRunContext, get_run_context
    from dockyard.sdk.runtime.futures import FutureList, TaskFuture
    from dockyard.sdk.runtime.logs import get_logger, get_run_logger
    from dockyard.sdk.runtime.states import State
    from dockyard.sdk.runtime.tags import tags
    from dockyard.utilities.annotations import allow_failure, quote, unmapped

__all__ = [
    "DeploymentImage",
    "Flow",
    "FlowRunContext",
    "FutureList",
    "State",
    "Task",
    "TaskFuture",
    "TaskRunContext",
    "__version__",
    "allow_failure",
    "flow",
    "get_logger",
    "get_run_context",
    "get_run_logger",
    "pause_flow_run",
    "quote",
    "resume_flow_run",
    "serve",
    "suspend_flow_run",
    "tags",
    "task",
    "task_input_hash",
    "unmapped",
]

# Names imported at first use, so that `import dockyard` stays light.
_LAZY = {
    "DeploymentImage": "dockyard.sdk.deploy.images",
    "get_logger": "dockyard.sdk.runtime.logs",
    "get_run_logger": "dockyard.sdk.runtime.logs",
    "tags": "dockyard.sdk.runtime.tags",
    "State": "dockyard.sdk.runtime.states",
    "get_run_context": "dockyard.sdk.runtime.context",
    "FlowRunContext": "dockyard.sdk.runtime.context",
    "TaskRunContext": "dockyard.sdk.runtime.context",
    "TaskFuture": "dockyard.sdk.runtime.futures",
    "FutureList": "dockyard.sdk.runtime.futures",
    "unmapped": "dockyard.utilities.annotations",
    "allow_failure": "dockyard.utilities.annotations",
    "quote": "dockyard.utilities.annotations",
    "task_input_hash": "dockyard.sdk.runtime.cache",
    "serve": "dockyard.sdk.deploy.serve",
    "pause_flow_run": "dockyard.flow_runs",
    "suspend_flow_run": "dockyard.flow_runs",
    "resume_flow_run": "dockyard.flow_runs",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'dockyard' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
