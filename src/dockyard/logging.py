"""Logging from flows and tasks.

::

    from dockyard import flow
    from dockyard.logging import get_run_logger

    @flow
    def my_flow() -> None:
        get_run_logger().info("shipped to the run's logs, with the run's id and name")

:func:`get_run_logger` is the current run's logger (it raises
:class:`~dockyard.exceptions.MissingContextError` outside a run); inside
``with disable_run_logger():`` it is a logger that does nothing, to call a task's function
directly in a test (``my_task.fn()``). :func:`get_logger` is the logger of whatever run is
current where it logs, and works outside runs too. Their records also go up the standard
``logging`` tree, where the root logger's handlers and pytest's ``caplog`` see them.
"""

from __future__ import annotations

from dockyard.sdk.runtime.logs import RunLogger, disable_run_logger, get_logger, get_run_logger

__all__ = ["RunLogger", "disable_run_logger", "get_logger", "get_run_logger"]
