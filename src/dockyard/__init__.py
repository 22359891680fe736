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
    from dockyard.sdk.cache import task_input_hash
    from dockyard.sdk.context import FlowRunContext, TaskRunContext, get_run_context
    from dockyard.sdk.futures import FutureList, TaskFuture
    from dockyard.sdk.images import DeploymentImage
    from dockyard.sdk.logs import get_logger, get_run_logger
    from dockyard.sdk.serve import serve
    from dockyard.sdk.tags import tags
    from dockyard.utilities.annotations import allow_failure, quote, unmapped

__all__ = [
    "DeploymentImage",
    "Flow",
    "FlowRunContext",
    "FutureList",
    "Task",
    "TaskFuture",
    "TaskRunContext",
    "__version__",
    "allow_failure",
    "flow",
    "get_logger",
    "get_run_context",
    "get_run_logger",
    "quote",
    "serve",
    "tags",
    "task",
    "task_input_hash",
    "unmapped",
]

# Names imported at first use, so that `import dockyard` stays light.
_LAZY = {
    "DeploymentImage": "dockyard.sdk.images",
    "get_logger": "dockyard.sdk.logs",
    "get_run_logger": "dockyard.sdk.logs",
    "tags": "dockyard.sdk.tags",
    "get_run_context": "dockyard.sdk.context",
    "FlowRunContext": "dockyard.sdk.context",
    "TaskRunContext": "dockyard.sdk.context",
    "TaskFuture": "dockyard.sdk.futures",
    "FutureList": "dockyard.sdk.futures",
    "unmapped": "dockyard.utilities.annotations",
    "allow_failure": "dockyard.utilities.annotations",
    "quote": "dockyard.utilities.annotations",
    "task_input_hash": "dockyard.sdk.cache",
    "serve": "dockyard.sdk.serve",
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
