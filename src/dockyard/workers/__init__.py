"""Workers: claim runs from a work pool and run each on its infrastructure.

:class:`BaseWorker` holds the loop (claim, launch, watch, heartbeat, cancel); a worker type
subclasses it and implements a small interface (see :mod:`dockyard.workers._infrastructure`).
:func:`worker_class` finds the class of a pool's type::

    from dockyard.workers import worker_class

    worker_class("process")(pool="my-pool", limit=4).run()
"""

from __future__ import annotations

import importlib
from typing import Any

from dockyard.exceptions import DockyardError, LaunchError
from dockyard.workers.base import BaseWorker
from dockyard.workers.process import ProcessWorker

__all__ = ["WORKER_TYPES", "BaseWorker", "LaunchError", "ProcessWorker", "worker_class"]

# type name -> "module:class" of its worker, imported when a worker of that type starts
WORKER_TYPES = {
    "process": "dockyard.workers.process:ProcessWorker",
    "docker": "dockyard.workers.docker:DockerWorker",
}


def worker_class(type_name: str) -> type[BaseWorker[Any]]:
    """The worker class of a pool type.

    Raises:
        DockyardError: no worker implements that type here.
    """
    target = WORKER_TYPES.get(type_name)
    if target is None:
        known = ", ".join(sorted(WORKER_TYPES))
        raise DockyardError(
            f"no worker here runs work pools of type '{type_name}' (worker types: {known}); "
            "use a pool of one of those types, or a Dockyard installation that has this one"
        )
    module_name, _, class_name = target.partition(":")
    found: type[BaseWorker[Any]] = getattr(importlib.import_module(module_name), class_name)
    return found
