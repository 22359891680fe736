"""The run in progress, as code inside it sees it.

::

    from dockyard.context import get_run_context

    @task
    def where_am_i() -> str:
        run = get_run_context().task_run
        return f"{run.name} (attempt {run.run_count}) with {run.parameters}"

:func:`get_run_context` returns the innermost run: a :class:`TaskRunContext` inside a task
run (even one inside a flow run), else a :class:`FlowRunContext`; it raises
:class:`~dockyard.exceptions.MissingContextError` outside any run.
``FlowRunContext.get()`` and ``TaskRunContext.get()`` return that kind of run, or None
(``FlowRunContext.get()`` inside a task run gives the flow run the task belongs to).

A ``FlowRunContext`` has ``.flow`` (the :class:`~dockyard.Flow`) and ``.flow_run``; a
``TaskRunContext`` has ``.task`` (the :class:`~dockyard.Task`) and ``.task_run``. Those two
(:class:`FlowRunInfo`, :class:`TaskRunInfo`) have ``id``, ``name``, ``parameters``, ``tags``
and ``run_count``. For single values, :mod:`dockyard.runtime` is simpler, and answers
outside runs too.
"""

from __future__ import annotations

from dockyard.exceptions import MissingContextError
from dockyard.sdk.runtime import context as _context
from dockyard.sdk.runtime.context import FlowRunContext, FlowRunInfo, TaskRunContext, TaskRunInfo

__all__ = [
    "FlowRunContext",
    "FlowRunInfo",
    "TaskRunContext",
    "TaskRunInfo",
    "get_run_context",
]


def get_run_context() -> FlowRunContext | TaskRunContext:
    """Return the innermost run in progress: the task run, else the flow run.

    Raises:
        MissingContextError: no flow or task run is in progress here.
    """
    run = _context.get_run_context()
    if run is None:
        raise MissingContextError(
            "get_run_context() was called outside a flow or task run; call it inside a "
            "function decorated with @flow or @task, or use FlowRunContext.get() or "
            "TaskRunContext.get(), which return None outside a run"
        )
    return run
