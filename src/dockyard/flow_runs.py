"""Pausing, suspending and resuming flow runs.

::

    from dockyard import flow
    from dockyard.flow_runs import pause_flow_run, resume_flow_run, suspend_flow_run

    @flow
    def nightly():
        extract()
        name = pause_flow_run(wait_for_input=str, timeout=600)   # waits for a resume
        load(name)

    resume_flow_run(run_id, {"value": "prod"})   # from anywhere: a script, another flow

``pause_flow_run`` keeps the run's process waiting (it holds its infrastructure and its
concurrency slots); ``suspend_flow_run`` (a deployment's runs only) lets the process exit and
a worker start the run again from the top once it is resumed, reusing the results of the
tasks that completed before. Both return the input the run was resumed with. The rules are
in :mod:`dockyard.sdk.runtime.pausing` and docs/sdk.md ("Pause and resume").

In an ``async def`` flow (or other async code), the three return an awaitable: ``await
pause_flow_run(...)``.
"""

from __future__ import annotations

import uuid
from typing import Any

from dockyard.exceptions import FlowPauseTimeout
from dockyard.sdk.runtime import pausing as _pausing
from dockyard.sdk.server_calls import in_async_code as _in_async_code
from dockyard.sdk.server_calls import server_api as _api

__all__ = ["FlowPauseTimeout", "pause_flow_run", "resume_flow_run", "suspend_flow_run"]


def pause_flow_run(
    wait_for_input: type[Any] | None = None, timeout: int = 3600, key: str | None = None
) -> Any:
    """Pause the current flow run until it is resumed; its process waits.

    Args:
        wait_for_input: the input to wait for: a pydantic model (a
            :class:`~dockyard.input.RunInput`), or a simple type like ``int`` or ``str``
            (resumed with ``{"value": ...}``).
        timeout: seconds to wait; past them the run ends FAILED.
        key: names this pause; a pause whose key was resumed before (in an earlier start of
            the run) returns its input at once. Default: ``pause-1``, ``pause-2``, ... in the
            order of the calls.

    Returns:
        The input (an instance of the model, or the value of a simple type); None without
        ``wait_for_input``.

    Raises:
        MissingContextError: called outside a flow run (or inside a task).
        FlowPauseTimeout: nobody resumed it within ``timeout``.
        FlowRunAborted: it was cancelled while paused.
    """
    if _in_async_code():
        import asyncio

        return asyncio.to_thread(_pausing.pause, wait_for_input, timeout, key)
    return _pausing.pause(wait_for_input, timeout, key)


def suspend_flow_run(
    wait_for_input: type[Any] | None = None,
    timeout: int = 3600,
    key: str | None = None,
    flow_run_id: uuid.UUID | str | None = None,
) -> Any:
    """Suspend a flow run of a deployment: its process exits, and once resumed a worker runs
    it again from the top (the tasks that completed before are not run again).

    Args:
        wait_for_input, timeout, key: as for :func:`pause_flow_run`.
        flow_run_id: another RUNNING run to suspend (default: the current one); its process
            stops at its next lease renewal, and this call returns None at once.

    Returns:
        In the run started again after the resume: the input (or None). The first call does
        not return: the flow stops there.

    Raises:
        MissingContextError: called outside a flow run without ``flow_run_id``.
        DockyardError: the run has no deployment (nothing would start it again).
    """
    current = _pausing.current_run_id()
    if flow_run_id is not None and uuid.UUID(str(flow_run_id)) != current:
        other = uuid.UUID(str(flow_run_id))
        if _in_async_code():
            import asyncio

            return asyncio.to_thread(
                _pausing.suspend_other, _api(), other, wait_for_input, timeout, key
            )
        _pausing.suspend_other(_api(), other, wait_for_input, timeout, key)
        return None
    if _in_async_code():
        import asyncio

        return asyncio.to_thread(_pausing.suspend, wait_for_input, timeout, key)
    return _pausing.suspend(wait_for_input, timeout, key)


def resume_flow_run(flow_run_id: uuid.UUID | str, run_input: dict[str, Any] | None = None) -> Any:
    """Resume a PAUSED flow run, with the input its pause waits for.

    Raises:
        Conflict: the run is not PAUSED (``current_state`` says what it is).
        InvalidInput: ``run_input`` does not fit the pause's input model (``field`` names
            the value); the run stays PAUSED.
    """
    run_id = uuid.UUID(str(flow_run_id))
    if _in_async_code():
        import asyncio

        return asyncio.to_thread(_api().resume_flow_run, run_id, run_input)
    _api().resume_flow_run(run_id, run_input)
    return None
