"""Waking long-polls when runs may have become claimable.

In one process an asyncio event does it. With PostgreSQL, write transactions that change run
states also ``NOTIFY``, and every server process ``LISTEN``s, so a run created through one
replica wakes the long-polls held by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

CHANNEL = "dockyard_runs"
log = logging.getLogger("dockyard.server")


class Notifier:
    """An edge-triggered wake-up for everyone waiting, and a closed flag for shutdown."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def arm(self) -> asyncio.Event:
        """The event the next :meth:`notify` sets. A waiter arms *before* it looks at the
        database and waits on what it armed after: a change committed while it looked then
        still wakes it, where a wait begun after the look would miss it."""
        return self._event

    async def wait(self, timeout: float, armed: asyncio.Event | None = None) -> None:
        """Return when notified (since ``armed`` was taken, or since now), closed, or after
        ``timeout`` seconds."""
        if self.closed or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((armed or self._event).wait(), timeout)

    def close(self) -> None:
        self.closed = True
        self.notify()


class PostgresListener:
    """A dedicated asyncpg connection that LISTENs and forwards to a ``Notifier``."""

    def __init__(self, dsn: str, notifier: Notifier) -> None:
        self.dsn = dsn
        self.notifier = notifier
        self._conn: Any = None

    async def start(self) -> None:
        import asyncpg

        self._conn = await asyncpg.connect(self.dsn)
        await self._conn.add_listener(CHANNEL, self._on_notify)

    def _on_notify(self, *_args: Any) -> None:
        self.notifier.notify()

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None
