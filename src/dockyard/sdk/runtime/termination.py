"""What SIGTERM does to the engine: stop the flow now, report how the run ended, exit.

A worker sends SIGTERM to a run's process to cancel it (then SIGKILL after a grace period);
an orchestrator sends it to stop a container. The engine turns the first SIGTERM into
:class:`~dockyard.exceptions.FlowRunTerminated` raised in its main thread (or, for an
``async def`` flow, a cancellation of the flow's task), so that the flow's code stops at
once and the run still reports its end: CANCELLED when it was asked to cancel, CRASHED
("terminated by signal SIGTERM") otherwise. The flow's ``on_cancellation`` or
``on_crashed`` hooks then run (:mod:`dockyard.sdk.runtime.hooks`), within the sender's grace period
(a worker's SIGKILL follows it). A second SIGTERM ends the process at once, hooks or not.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import FlowRunTerminated

if TYPE_CHECKING:
    import asyncio

    from dockyard.sdk.runtime.tracking import RunHandle

__all__ = ["Termination"]


class Termination:
    """The engine's SIGTERM handling, for the run it holds (once it holds one)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.handle: RunHandle | None = None
        self._previous: Any = None

    def install(self) -> None:
        """Raise FlowRunTerminated in the main thread on SIGTERM (main thread only)."""
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._on_signal)
            if self._previous is None:
                self._previous = previous

    def uninstall(self) -> None:
        """Give SIGTERM back the handler it had before :meth:`install`."""
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def hold(self, handle: RunHandle) -> None:
        """The run the engine now holds: a later SIGTERM is recorded on its handle."""
        self.handle = handle
        if self.signal_name is not None:
            handle.terminated = self.signal_name

    def _record(self, number: int) -> None:
        if self.signal_name is not None:
            # asked twice: the first one's reporting is taking too long
            os._exit(128 + number)
        self.signal_name = signal.Signals(number).name
        if self.handle is not None:
            self.handle.terminated = self.signal_name

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self._record(number)
        raise FlowRunTerminated(f"terminated by signal {self.signal_name}")

    def cancel_on_signal(self, task: asyncio.Task[object]) -> None:
        """While an ``async def`` flow runs, SIGTERM cancels its task instead of raising.

        Call from inside the running loop; :meth:`restore` undoes it.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._cancel, task)

    def _cancel(self, task: asyncio.Task[object]) -> None:
        self._record(signal.SIGTERM)
        task.cancel(f"terminated by signal {self.signal_name}")

    def restore(self) -> None:
        """Back to raising in the main thread (after an ``async def`` flow)."""
        import asyncio

        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGTERM)
        self.install()
