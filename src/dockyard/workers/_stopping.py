"""How a worker is asked to stop, and how its waits end early when it is."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("dockyard.worker")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignal:
    """Set once the worker should stop; every wait of the worker's loop ends when it is.

    Create it inside the worker's event loop; :meth:`set_threadsafe` may be called from any
    thread (or before the loop runs).
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    def is_set(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def set_threadsafe(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has ended: nothing to stop
            self._loop.call_soon_threadsafe(self._event.set)

    async def unless_stopped(self, call: Awaitable[T]) -> T | None:
        """Return what ``call`` answers, or None if a stop came first (``call`` is cancelled).

        An answer that arrived together with the stop is still returned.
        """
        task = asyncio.ensure_future(call)
        stop = asyncio.ensure_future(self._event.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return None

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if a stop comes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """Within the block, Ctrl-C and SIGTERM set the signal (main thread only).

        The first signal asks for a clean stop; handlers are then removed, so a second one
        acts at once (KeyboardInterrupt, or the default end of SIGTERM).
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        for number in SIGNALS:
            self._loop.add_signal_handler(number, self._on_signal, number)
        try:
            yield
        finally:
            for number in SIGNALS:
                self._loop.remove_signal_handler(number)

    def _on_signal(self, number: int) -> None:
        name = signal.Signals(number).name
        log.info("%s: stopping; started runs go on (press Ctrl-C again to quit at once)", name)
        for other in SIGNALS:
            self._loop.remove_signal_handler(other)
        self._event.set()


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failures in a row: 0.5, 1, 2, ... up to 15."""
    return float(min(15.0, 0.5 * 2 ** (failures - 1)))
