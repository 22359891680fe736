"""Watching launched runs (their output, their exit) and heartbeats (cancel, loss).

Every :data:`WATCH_INTERVAL` seconds the worker echoes its runs' new output lines and reads
their exit codes; a run whose infrastructure exited is finished (:mod:`._finish`), tried
again with backoff while the server cannot be reached (its output file is kept until then:
it may hold the final state its engine handed over). On its own timer the worker
heartbeats; the answer names runs asked to cancel (their infrastructure is killed) and runs
the worker no longer holds (it stops watching them once they outlive a grace period).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid

from dockyard._version import __version__
from dockyard.client import AsyncClient
from dockyard.exceptions import DockyardError
from dockyard.schemas import ClaimedRun, HeartbeatAnswer, WorkerHeartbeat
from dockyard.settings import Settings
from dockyard.workers import _finish
from dockyard.workers._infrastructure import Infrastructure
from dockyard.workers._runs import H, Launched
from dockyard.workers._stopping import backoff

log = logging.getLogger("dockyard.worker")

WATCH_INTERVAL = 0.1


class Watching(Infrastructure[H]):
    """The runs a worker launched, watched until their infrastructure exits."""

    # set by BaseWorker
    name: str
    pool: str | None
    deployment_ids: list[uuid.UUID]
    settings: Settings
    _unlaunched: dict[uuid.UUID, ClaimedRun]
    _client: AsyncClient | None = None

    def __init__(self) -> None:
        self._running: dict[uuid.UUID, Launched[H]] = {}
        self._background: set[asyncio.Task[None]] = set()  # kills, hooks processes

    @property
    def client(self) -> AsyncClient:
        """The client of the running worker."""
        if self._client is None:
            raise RuntimeError("the worker is not running")
        return self._client

    def _slot_freed(self) -> None:
        """Called when a run leaves the watch (the claim loop may take another)."""

    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            await self._watch_once()

    async def _watch_once(self) -> None:
        """Echo new output, and finish the runs whose infrastructure exited."""
        entries = list(self._running.values())
        if not entries:
            return
        echoed = await asyncio.to_thread(self._poll, entries)
        if echoed:
            sys.stdout.write("".join(line + "\n" for line in echoed))
            sys.stdout.flush()
        for entry in entries:
            await self._check(entry)

    def _poll(self, entries: list[Launched[H]]) -> list[str]:
        """Read exit codes, and the new output lines to echo (called in a thread)."""
        echoed = []
        for entry in entries:
            try:
                if entry.exit_code is None:
                    entry.exit_code = self.exit_code(entry.handle)
                if entry.stream:
                    lines = entry.output.new_lines(final=entry.exit_code is not None)
                    echoed += [f"{entry.run.name} | {line}" for line in lines]
            except Exception:
                log.exception("%s: could not check its %s", entry.label, self.noun)
        return echoed

    async def _check(self, entry: Launched[H]) -> None:
        now = time.monotonic()
        if entry.exit_code is None:
            grace = self.settings.heartbeat_seconds
            if entry.lost_since is not None and now - entry.lost_since > grace:
                # the server ended it or moved it on (crashed while this worker was cut
                # off, and retried elsewhere): its engine stops at its next lease renewal,
                # and this stops it even if it never renews
                log.warning(
                    "%s is no longer this worker's; stopping its %s", entry.label, self.noun
                )
                self._halt(entry)
                self._forget(entry)
            return
        if now < entry.retry_at:
            return
        try:
            log.info("%s", await _finish.finish(self.client, entry, self._infrastructure(entry)))
            if entry.ended_unheard is not None:
                self.call_final_hooks(entry.handle, entry.run, entry.ended_unheard)
        except DockyardError as exc:  # unreachable, refused, or no answer in time
            entry.failures += 1
            # After an outage the server gives a lease one more period: a final state the
            # engine handed over must reach it well within that.
            delay = min(backoff(entry.failures), self.settings.lease_seconds / 4)
            entry.retry_at = now + delay
            log.warning("%s ended; could not report it yet: %s", entry.label, exc)
            return
        except Exception:
            log.exception("%s ended; reporting it failed", entry.label)
        self._forget(entry)

    def _infrastructure(self, entry: Launched[H]) -> str:
        return f"its {self.noun} ({self.id_label} {self.infrastructure_id(entry.handle)})"

    def _forget(self, entry: Launched[H]) -> None:
        self._running.pop(entry.run.id, None)
        entry.output.remove()
        self._slot_freed()

    async def _heartbeat_loop(self) -> None:
        # never let a PENDING run's lease run out between two beats
        interval = min(self.settings.heartbeat_seconds, self.settings.lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                answer = await self._heartbeat()
            except DockyardError as exc:  # unreachable, refused, or no answer in time
                log.warning("heartbeat failed: %s", exc)
                continue
            except Exception:
                log.exception("heartbeat failed")
                continue
            self._answered(answer)

    async def _heartbeat(self) -> HeartbeatAnswer:
        held = [i for i, entry in self._running.items() if entry.lost_since is None]
        beat = WorkerHeartbeat(
            name=self.name,
            work_pool_name=self.pool,
            deployment_ids=self.deployment_ids,
            type=self.type if self.pool else "serve",
            version=__version__,
            run_ids=[*held, *self._unlaunched],
        )
        return await self.client.heartbeat(beat)

    def _answered(self, answer: HeartbeatAnswer) -> None:
        """Act on a heartbeat's answer: kill the runs asked to cancel, note the lost ones."""
        for run_id in answer.cancel:
            entry = self._running.get(run_id)
            if entry is not None:
                self._cancel(entry)
        for run_id in answer.lost:
            entry = self._running.get(run_id)
            if entry is not None and entry.lost_since is None:
                entry.lost_since = time.monotonic()

    def _cancel(self, entry: Launched[H]) -> None:
        """Stop the infrastructure of a run asked to cancel (once), without waiting for it."""
        if entry.cancelling:
            return
        log.info("cancelling %s: stopping its %s", entry.label, self.noun)
        self._halt(entry)

    def _halt(self, entry: Launched[H]) -> None:
        """Stop a run's infrastructure (once), without waiting for it."""
        if entry.cancelling:
            return
        entry.cancelling = True
        task = asyncio.create_task(self._kill(entry))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _kill(self, entry: Launched[H]) -> None:
        try:
            await asyncio.to_thread(self.kill, entry.handle, self.kill_grace_seconds)
        except Exception:
            log.exception("%s: could not stop its %s", entry.label, self.noun)
