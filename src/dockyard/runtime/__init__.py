"""Facts about the run in progress, read when asked.

::

    from dockyard import flow, runtime

    @flow
    def report() -> None:
        print(runtime.flow_run.name, runtime.flow_run.parameters, runtime.deployment.name)

Three modules, whose attributes are looked up each time they are read:
:mod:`~dockyard.runtime.flow_run`, :mod:`~dockyard.runtime.task_run` and
:mod:`~dockyard.runtime.deployment`. Where there is nothing to tell (outside a run, or
``deployment`` in a flow that was called rather than deployed) they answer None, or an
empty dict or list, or 0 for a count; they never raise.
"""

from __future__ import annotations

from dockyard.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
