"""Taking slots of global concurrency limits: the steps shared by the sync and async
façades (:mod:`dockyard.concurrency.sync`, :mod:`dockyard.concurrency.asyncio`).

- :class:`Ask` checks what was asked (before any request) and builds each acquire call;
  its :meth:`~Ask.outcome` reads the answer: the lease to give back, a warning for names
  without a limit, or a ``TimeoutError`` once ``timeout_seconds`` has passed.
- An acquire is a long-poll: the server answers as soon as the slots are free; the client
  calls again (each call waits at most :data:`LONG_POLL`) until its timeout.
- While a block holds slots, :data:`KEEPER` (one daemon thread for the whole process, for
  sync and async code alike) renews their lease every third of its duration. A holder
  that dies stops renewing: its slots come back when the lease expires.
"""

from __future__ import annotations

import contextvars
import heapq
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard._names import name_problem
from dockyard.sdk.api import ServerApi
from dockyard.sdk.runtime import logs
from dockyard.sdk.runtime.context import FLOW_RUN, FlowRunContext, TaskRunContext, get_run_context

if TYPE_CHECKING:
    from dockyard.settings import Settings

__all__ = ["KEEPER", "LONG_POLL", "Ask", "connect"]

# the longest one acquire call waits on the server (it may wait less: its own setting)
LONG_POLL = 30.0
HOLDER_MAX = 200
MIN_LEASE, MAX_LEASE = 1.0, 86_400.0  # dockyard.schemas.concurrency, without pydantic

_warned: set[str] = set()
_warned_lock = threading.Lock()


def connect() -> tuple[ServerApi, Settings]:
    """The server calls and the settings: inside a run, its own; elsewhere, loaded."""
    context = FLOW_RUN.get()
    if context is not None:
        settings = context.settings
    else:
        from dockyard.settings import load

        settings = load()
    return ServerApi(settings.api_url, settings.api_key), settings


def asking(
    names: str | list[str],
    occupy: int,
    timeout_seconds: float | None,
    strict: bool,
    mode: str,
) -> tuple[ServerApi, Ask]:
    """The server calls, and the call's ask checked (before any request is sent)."""
    api, settings = connect()
    lease_seconds = settings.concurrency_lease_seconds
    return api, Ask.of(
        names, occupy, timeout_seconds, strict, mode=mode, lease_seconds=lease_seconds
    )


@dataclass(frozen=True)
class Ask:
    """One ``concurrency()`` or ``rate_limit()`` call: what it asks, checked."""

    names: list[str]
    occupy: int
    timeout_seconds: float | None
    strict: bool
    mode: str
    lease_seconds: float
    holder: str | None
    started: float

    @classmethod
    def of(
        cls,
        names: str | list[str],
        occupy: int,
        timeout_seconds: float | None,
        strict: bool,
        *,
        mode: str,
        lease_seconds: float,
    ) -> Ask:
        """Check the arguments; raise ``ValueError`` (``TypeError``) saying what is wrong."""
        given = [names] if isinstance(names, str) else list(names)
        if not given:
            raise ValueError("name at least one concurrency limit")
        for name in given:
            if not isinstance(name, str):
                raise TypeError(f"a concurrency limit's name is a str, not {name!r}")
            problem = name_problem(name)
            if problem:
                raise ValueError(f"{name!r} is not a concurrency limit's name: it {problem}")
        if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
            raise ValueError(f"occupy must be a whole number of slots, 1 or more, not {occupy!r}")
        if timeout_seconds is not None and not timeout_seconds >= 0:
            raise ValueError(
                f"timeout_seconds must be 0 or more (or None), not {timeout_seconds!r}"
            )
        distinct = list(dict.fromkeys(given))  # the same limit twice is the same limit
        return cls(
            distinct,
            occupy,
            timeout_seconds,
            bool(strict),
            mode,
            # the server's bounds: a setting outside them must not fail every acquire
            min(max(lease_seconds, MIN_LEASE), MAX_LEASE),
            _holder(),
            time.monotonic(),
        )

    def wait(self) -> float:
        """How long the next acquire call may wait on the server."""
        if self.timeout_seconds is None:
            return LONG_POLL
        return max(0.0, min(LONG_POLL, self.started + self.timeout_seconds - time.monotonic()))

    def call(self, api: ServerApi) -> dict[str, Any]:
        """One acquire call (a long-poll of :meth:`wait` seconds)."""
        return api.acquire_concurrency_slots(
            self.names,
            self.occupy,
            mode=self.mode,
            lease_seconds=self.lease_seconds,
            wait=self.wait(),
            strict=self.strict,
            holder=self.holder,
        )

    def outcome(self, answer: dict[str, Any]) -> tuple[bool, str | None]:
        """Read an answer: whether the slots were taken, and the lease to give back.

        Raises:
            TimeoutError: not taken, and ``timeout_seconds`` has passed.
        """
        if answer.get("acquired"):
            _warn_missing(answer.get("missing") or [])
            return True, answer.get("lease_id")
        if self.timeout_seconds is not None and self.wait() <= 0:
            full = answer.get("full") or self.names
            raise TimeoutError(
                f"timed out after {self.timeout_seconds} s waiting for {self.occupy} "
                f"slot{'s' if self.occupy != 1 else ''} of concurrency limit "
                f"{_listed(self.names)} ({_listed(full)} had no room); raise the limit "
                "(`dockyard gcl update NAME --limit N`) or the timeout"
            )
        return False, None


def _listed(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _holder() -> str:
    """Who holds the slots, as `dockyard gcl inspect` shows it."""
    where = f"pid {os.getpid()} on {socket.gethostname()}"
    run = get_run_context()
    if isinstance(run, TaskRunContext):
        where = f"task run '{run.task_run_name}', {where}"
    elif isinstance(run, FlowRunContext):
        where = f"flow run '{run.flow_run_name}', {where}"
    return where[:HOLDER_MAX]


def _warn_missing(names: list[str]) -> None:
    """Warn once per process for each name that has no limit."""
    with _warned_lock:
        new = [name for name in names if name not in _warned]
        _warned.update(new)
    if new:
        logs.get_logger("concurrency").warning(
            "no concurrency limit named %s: nothing was held for it; create it with "
            "`dockyard gcl create %s --limit N`, or pass strict=True to make this an error",
            _listed(new),
            new[0],
        )


# ---------------------------------------------------------------- keeping leases


@dataclass
class _Held:
    api: ServerApi
    lease_seconds: float
    names: list[str]
    context: contextvars.Context


class LeaseKeeper:
    """One daemon thread that renews every lease this process holds, each every third of
    its duration, until it is released (:meth:`forget`)."""

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self._due: list[tuple[float, str]] = []
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def keep(self, lease_id: str, api: ServerApi, lease_seconds: float, names: list[str]) -> None:
        context = contextvars.copy_context()  # its warnings go to the run's logs
        with self._wake:
            self._held[lease_id] = _Held(api, lease_seconds, names, context)
            heapq.heappush(self._due, (time.monotonic() + lease_seconds / 3, lease_id))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="dockyard-concurrency-leases", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def forget(self, lease_id: str) -> None:
        with self._wake:
            self._held.pop(lease_id, None)

    def holds(self, lease_id: str) -> bool:
        with self._wake:
            return lease_id in self._held

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    timeout = self._due[0][0] - time.monotonic() if self._due else None
                    self._wake.wait(timeout)
                _, lease_id = heapq.heappop(self._due)
                held = self._held.get(lease_id)
            if held is not None:
                self._renew(lease_id, held)

    def _renew(self, lease_id: str, held: _Held) -> None:
        try:
            kept = held.api.renew_concurrency_lease(lease_id, held.lease_seconds)
        except Exception as exc:  # the server is away: try again at the next turn
            kept = True
            held.context.run(
                _log, logging.WARNING, "could not renew the lease of %s: %s", held, exc
            )
        with self._wake:
            if lease_id not in self._held:
                return
            if not kept:
                del self._held[lease_id]
            else:
                heapq.heappush(self._due, (time.monotonic() + held.lease_seconds / 3, lease_id))
        if not kept:
            held.context.run(
                _log,
                logging.WARNING,
                "the slots of %s are no longer held: the lease expired (this process could not "
                "renew it in time) or the limit was deleted or reset; the block goes on "
                "without them",
                held,
                None,
            )

    def after_fork(self) -> None:
        """A forked child holds none of its parent's leases, nor its thread."""
        self._held.clear()
        self._due.clear()
        self._wake = threading.Condition()
        self._thread = None


def _log(level: int, message: str, held: _Held, exc: BaseException | None) -> None:
    what = f"concurrency limit {_listed(held.names)}"
    args = (what, exc) if exc is not None else (what,)
    logs.get_logger("concurrency").log(level, message, *args)


KEEPER = LeaseKeeper()
os.register_at_fork(after_in_child=KEEPER.after_fork)


# ---------------------------------------------------------------- the twins


def take(api: ServerApi, ask: Ask) -> str | None:
    """Acquire, waiting as long as ``ask`` allows; return the lease to give back (None:
    nothing to give back), kept renewed until :func:`give_back`."""
    while True:
        taken, lease_id = ask.outcome(ask.call(api))
        if taken:
            if lease_id is not None:
                KEEPER.keep(lease_id, api, ask.lease_seconds, ask.names)
            return lease_id


async def atake(api: ServerApi, ask: Ask) -> str | None:
    """:func:`take` for async code: each long-poll waits in a thread, off the event loop.

    Cancelled while a call is under way, it gives back what that call takes.
    """
    import asyncio

    loop = asyncio.get_running_loop()
    while True:
        call = loop.run_in_executor(None, ask.call, api)
        try:
            answer = await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(lambda done: _give_back_late(api, done))
            raise
        taken, lease_id = ask.outcome(answer)
        if taken:
            if lease_id is not None:
                KEEPER.keep(lease_id, api, ask.lease_seconds, ask.names)
            return lease_id


def _give_back_late(api: ServerApi, done: Any) -> None:
    if done.cancelled() or done.exception() is not None:
        return
    lease_id = done.result().get("lease_id")
    if lease_id:
        threading.Thread(target=give_back, args=(api, lease_id, []), daemon=True).start()


def give_back(api: ServerApi, lease_id: str, names: list[str]) -> None:
    """Stop renewing the lease and release it. A failure only warns: the block's own outcome
    matters more, and the slots come back when the lease expires anyway."""
    KEEPER.forget(lease_id)
    try:
        api.release_concurrency_lease(lease_id)
    except Exception as exc:
        logs.get_logger("concurrency").warning(
            "could not release the slots of concurrency limit %s (%s); they come back when "
            "their lease expires",
            _listed(names) or lease_id,
            exc,
        )


async def agive_back(api: ServerApi, lease_id: str, names: list[str]) -> None:
    """:func:`give_back` for async code, off the event loop."""
    import asyncio

    await asyncio.to_thread(give_back, api, lease_id, names)
