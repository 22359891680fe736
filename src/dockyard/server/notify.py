"""Waking long-polls when runs may have become claimable.

In one process an asyncio event does it. With PostgreSQL, write transactions that change run
states also ``NOTIFY``, and every server process ``LISTEN``s, so a run created through one
replica wakes the long-polls held by another.

A change of a run in a work pool wakes only the claims waiting on that pool (and every
waiter on no pool: an engine waiting on its pause, a concurrency slot): the notification
names the pools (``NOTIFY dockyard_runs, 'id,id'``). Any other change wakes everyone. So a
created run costs one claim per worker of its pool, not one per worker of the fleet.

The listening connection can be lost (``pg_terminate_backend``, a PostgreSQL restart, a
network cut), and notifications sent meanwhile are lost with it. :class:`PostgresListener`
notices (asyncpg's termination callback, and a ``SELECT 1`` every ``check_seconds`` for a
connection that died silently), reconnects with a doubling backoff, and while it is down it
wakes every waiter each ``fallback_seconds``: a long-poll then looks again at that pace, so
no wait lasts longer than that. After a reconnect it wakes everyone once, for what was missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

CHANNEL = "dockyard_runs"
MAX_POOLS_NAMED = 100  # 100 ids of 36 characters and commas: well below 8,000 bytes
log = logging.getLogger("dockyard.server")


class Notifier:
    """Edge-triggered wake-ups: for everyone, or for the waiters on some work pools; and a
    closed flag for shutdown."""

    def __init__(self) -> None:
        self._event = asyncio.Event()  # set by every notify
        self._pools: dict[uuid.UUID, asyncio.Event] = {}  # set by a notify of that pool
        self.closed = False

    def notify(self, pools: Iterable[uuid.UUID] | None = None) -> None:
        """Wake the waiters on ``pools`` (None: on every pool) and every waiter on none."""
        event, self._event = self._event, asyncio.Event()
        event.set()
        woken = list(self._pools) if pools is None else [p for p in pools if p in self._pools]
        for pool in woken:
            self._pools.pop(pool).set()

    def arm(self, pool: uuid.UUID | None = None) -> asyncio.Event:
        """The event the next :meth:`notify` (of ``pool``, when given) sets. A waiter arms
        *before* it looks at the database and waits on what it armed after: a change
        committed while it looked then still wakes it, where a wait begun after the look
        would miss it."""
        if pool is None:
            return self._event
        return self._pools.setdefault(pool, asyncio.Event())

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


def wake(session: Any, pool: uuid.UUID | None = None) -> None:
    """Have the session's transaction, once committed, wake the claims waiting on ``pool``
    (None: every waiter)."""
    if pool is None:
        session.info["wake"] = True
    else:
        session.info.setdefault("wake_pools", set()).add(pool)


def to_wake(session: Any) -> tuple[bool, set[uuid.UUID] | None]:
    """What :func:`wake` asked of the session: (anything at all, the pools; None: everyone)."""
    if session.info.get("wake"):
        return True, None
    pools = session.info.get("wake_pools")
    return bool(pools), pools


def payload(pools: set[uuid.UUID] | None) -> str:
    """What a NOTIFY carries: the pools' ids, or "" for everyone (also when they are too many
    for PostgreSQL's 8,000 bytes of payload)."""
    if not pools or len(pools) > MAX_POOLS_NAMED:
        return ""
    return ",".join(sorted(str(pool) for pool in pools))


def pools_of(text: str) -> set[uuid.UUID] | None:
    """The pools a NOTIFY names; None (everyone) for "" or anything else not a list of ids."""
    try:
        return {uuid.UUID(part) for part in text.split(",")} if text else None
    except ValueError:
        return None


class Wakeable(Protocol):
    def notify(self, pools: Iterable[uuid.UUID] | None = None) -> None: ...


@dataclass(frozen=True)
class ListenerState:
    """What ``GET /api/health`` shows of a listener: whether it listens now, since when
    (connected or lost), and how many times it reconnected since the server started."""

    connected: bool
    since: datetime
    reconnects: int


@dataclass(frozen=True)
class ListenerTimers:
    """The listener's timers, in seconds: the fallback wake-up while it is down, the
    liveness check while it is up, and the first and longest wait between reconnects."""

    fallback: float = 1.0
    check: float = 5.0
    retry_first: float = 0.5
    retry_max: float = 10.0


class PostgresListener:
    """A dedicated asyncpg connection that LISTENs on :attr:`channel` and forwards to a
    notifier, kept alive by a supervising task (see the module's docstring)."""

    channel = CHANNEL

    def __init__(self, dsn: str, notifier: Wakeable, timers: ListenerTimers | None = None) -> None:
        self.dsn = dsn
        self.notifier = notifier
        self.timers = timers or ListenerTimers()
        self._conn: Any = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._state = ListenerState(connected=False, since=_now(), reconnects=0)

    @property
    def state(self) -> ListenerState:
        return self._state

    async def start(self) -> None:
        """Connect (or, if PostgreSQL cannot be reached now, begin retrying) and supervise."""
        try:
            await self._connect()
        except Exception as exc:  # the supervisor retries; waiters get the fallback timer
            log.warning("cannot LISTEN on %s yet (%s); retrying", self.channel, _why(exc))
        self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._drop()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, text: str) -> None:
        self.notifier.notify(pools_of(text))

    def _on_terminated(self, conn: Any) -> None:
        if conn is self._conn:  # not a connection this listener already dropped
            self._lost.set()

    async def _connect(self) -> None:
        import asyncpg

        # named, so that an operator (or a test) can tell whose LISTEN a backend is
        name = f"dockyard listen {self.channel} pid {os.getpid()}"
        conn = await asyncpg.connect(
            self.dsn, timeout=self.timers.check, server_settings={"application_name": name}
        )
        try:
            await conn.add_listener(self.channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn
        self._lost.clear()
        self._state = ListenerState(True, _now(), self._state.reconnects)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
            if not conn.is_closed():  # close timed out: end it
                conn.terminate()

    async def _supervise(self) -> None:
        while True:
            if self._conn is not None:
                await self._watch()
            else:
                await self._reconnect()

    async def _watch(self) -> None:
        """Return once the connection is lost (dropped, and marked so)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.timers.check)
            if not self._lost.is_set():
                try:
                    await self._conn.fetchval("SELECT 1", timeout=self.timers.check)
                    continue
                except Exception as exc:
                    reason = _why(exc)
            else:
                reason = "the connection was closed"
            log.warning("LISTEN connection on %s lost (%s); reconnecting", self.channel, reason)
            self._state = ListenerState(False, _now(), self._state.reconnects)
            await self._drop()
            self.notifier.notify()  # what it might have missed just now
            return

    async def _reconnect(self) -> None:
        """Try again with a doubling backoff until connected; meanwhile a ticker wakes the
        waiters every ``fallback`` seconds, however long a try takes."""
        ticker = asyncio.create_task(self._tick())
        delay = self.timers.retry_first
        try:
            while True:
                try:
                    await self._connect()
                except Exception as exc:
                    log.warning(
                        "LISTEN on %s: reconnect failed (%s); next try in %.1f s",
                        self.channel,
                        _why(exc),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.timers.retry_max)
                    continue
                self._state = ListenerState(True, _now(), self._state.reconnects + 1)
                log.info("LISTEN on %s reconnected", self.channel)
                self.notifier.notify()  # notifications sent while down were lost
                return
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    async def _tick(self) -> None:
        while True:
            self.notifier.notify()
            await asyncio.sleep(self.timers.fallback)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _now() -> datetime:
    return datetime.now(UTC)
