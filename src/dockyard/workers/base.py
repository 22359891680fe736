"""The base worker: claims runs, launches their infrastructure, watches it, heartbeats.

One asyncio loop runs three tasks:

- claim: long-poll the server for due runs (as many as the worker can start now, at most
  :data:`BATCH`), launch each and record its infrastructure id;
- watch: every 0.1 s, echo the runs' new output and notice the infrastructure that exited
  (see :mod:`dockyard.workers._watch` and :mod:`dockyard.workers._finish`);
- heartbeat, on its own timer: keeps the worker (and its pool) READY, renews the leases of
  the PENDING runs it holds, kills the runs asked to cancel, stops the runs it lost.

Stopping (Ctrl-C, SIGTERM, :meth:`BaseWorker.stop`) stops claiming, hands back claimed runs
that were not launched, and leaves launched runs to finish under their own lease.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import socket
import sys
import uuid
from collections.abc import Sequence
from typing import Any

from dockyard import job_templates
from dockyard import settings as settings_module
from dockyard._printable import printable
from dockyard.client import AsyncClient
from dockyard.exceptions import ApiError, LaunchError, ServerUnreachable
from dockyard.schemas import ClaimedRun, ClaimRequest, FlowRunUpdate
from dockyard.schemas import StateType as S
from dockyard.settings import Settings
from dockyard.workers import _finish
from dockyard.workers._output import OutputFile
from dockyard.workers._runs import H, Launched, label
from dockyard.workers._stopping import StopSignal, backoff
from dockyard.workers._watch import Watching

__all__ = ["BATCH", "BaseWorker", "default_name"]

log = logging.getLogger("dockyard.worker")

BATCH = 10  # most runs one claim takes: a worker never hoards runs others could start


def default_name() -> str:
    """``<hostname>-<6 random hex digits>``."""
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


class BaseWorker(Watching[H]):
    """Claims runs of a work pool (or of served deployments) and runs each on infrastructure.

    A worker type subclasses it, sets :attr:`type`, and implements :meth:`launch`,
    :meth:`kill`, :meth:`exit_code` and :meth:`infrastructure_id`; :meth:`recover` is
    optional. ``tests/workers/test_contract.py`` holds the tests every type must pass.

    Args:
        pool: the work pool to claim runs from.
        work_queues: claim only from these queues of the pool (default: all of them).
        deployment_ids: claim the runs of these deployments instead of a pool's; the
            heartbeat keeps them READY. This is how a serve process works::

                ProcessWorker(deployment_ids=[d.id for d in deployments], name="my-serve",
                              limit=4).run()

        name: the worker's name (default ``<hostname>-<random>``); a worker restarted with
            the same name is told about its runs' cancellations.
        limit: most runs at once (default: no limit).
        run_once: claim the runs due now, run them to the end, then return.
        settings: API URL and key, heartbeat, lease and long-poll timings (default:
            :func:`dockyard.settings.load`).

    :meth:`run` blocks until the worker is stopped: by Ctrl-C or SIGTERM when it runs in the
    main thread, or by :meth:`stop` from any thread. Started runs are not stopped with it.
    """

    def __init__(
        self,
        *,
        pool: str | None = None,
        work_queues: Sequence[str] = (),
        deployment_ids: Sequence[uuid.UUID] = (),
        name: str | None = None,
        limit: int | None = None,
        run_once: bool = False,
        settings: Settings | None = None,
    ) -> None:
        if bool(pool) == bool(deployment_ids):
            raise ValueError("a worker claims from a work pool or for deployments: give one")
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.pool = pool
        self.work_queues = list(work_queues)
        self.deployment_ids = list(deployment_ids)
        self.name = name or default_name()
        self.limit = limit
        self.run_once = run_once
        self.settings = settings or settings_module.load()
        super().__init__()
        self._unlaunched: dict[uuid.UUID, ClaimedRun] = {}
        self._stop: StopSignal | None = None
        self._stop_asked = False

    # ------------------------------------------------------------ running

    def run(self) -> None:
        """Work until stopped, or with ``run_once`` until the runs due now are done.

        Raises:
            IncompatibleServer: the server speaks another API version.
            ServerUnreachable: no server answers at start.
            NotFound: the work pool does not exist.
        """
        _ensure_logging()
        asyncio.run(self.arun())

    def stop(self) -> None:
        """Stop claiming, hand back unlaunched runs, return from :meth:`run` (thread-safe)."""
        self._stop_asked = True
        if self._stop is not None:
            self._stop.set_threadsafe()

    async def arun(self) -> None:
        """:meth:`run` for a caller that already runs an event loop."""
        self._stop = StopSignal()
        self._slot_event = asyncio.Event()
        if self._stop_asked:
            self._stop.set()
        settings = self.settings
        client = AsyncClient(api_url=settings.api_url, api_key=settings.api_key)
        with self._stop.on_signals():  # from the start: a Ctrl-C never ends in a traceback
            async with client:
                self._client = client
                await client.check_compatible()
                await self._heartbeat()  # the pool turns READY now; a missing pool raises here
                await self._recover()
                log.info("%s; waiting for runs", self._describe())
                await self._work(self._stop)

    async def _work(self, stop: StopSignal) -> None:
        loops = [asyncio.create_task(self._heartbeat_loop())]
        loops.append(asyncio.create_task(self._watch_loop()))
        try:
            await self._claim_loop(stop)
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._hand_back()
            await self._watch_once()  # runs that just ended are reported, not left behind
            self._leave()

    def _describe(self) -> str:
        if self.pool:
            where = f"work pool '{self.pool}'"
        else:
            where = f"{len(self.deployment_ids)} deployment(s)"
        queues = f" (queues: {', '.join(self.work_queues)})" if self.work_queues else ""
        limit = f", at most {self.limit} runs at once" if self.limit else ""
        return f"worker '{self.name}' ({self.type}) on {where}{queues}{limit}"

    # ------------------------------------------------------------ claim and launch

    async def _claim_loop(self, stop: StopSignal) -> None:
        failures = 0
        while not stop.is_set():
            free = self._free_slots()
            if free == 0:
                self._slot_event.clear()  # no await since counting: no slot can be missed
                await stop.unless_stopped(self._slot_event.wait())
                continue
            try:
                claimed = await stop.unless_stopped(self.client.claim(self._claim_request(free)))
            except (ServerUnreachable, ApiError) as exc:
                failures += 1
                log.warning("could not claim runs: %s (again in %.1f s)", exc, backoff(failures))
                await stop.sleep(backoff(failures))
                continue
            except Exception:
                failures += 1
                log.exception("claiming runs failed (again in %.1f s)", backoff(failures))
                await stop.sleep(backoff(failures))
                continue
            failures = 0
            if claimed is None:
                return
            await self._launch_all(claimed, stop)
            if self.run_once and not claimed:
                while self._running and not stop.is_set():
                    self._slot_event.clear()
                    await stop.unless_stopped(self._slot_event.wait())
                return

    def _free_slots(self) -> int:
        if self.limit is None:
            return BATCH
        return min(BATCH, max(0, self.limit - len(self._running) - len(self._unlaunched)))

    def _claim_request(self, free: int) -> ClaimRequest:
        return ClaimRequest(
            worker_name=self.name,
            work_pool_name=self.pool,
            work_queue_names=self.work_queues,
            deployment_ids=self.deployment_ids,
            limit=free,
            wait=0.0 if self.run_once else self.settings.long_poll_seconds,
        )

    async def _launch_all(self, claimed: list[ClaimedRun], stop: StopSignal) -> None:
        for one in claimed:
            self._unlaunched[one.flow_run.id] = one
            log.info("claimed %s", label(one.flow_run))
        for one in claimed:
            if stop.is_set():
                return  # the rest is handed back
            try:
                await self._launch(one)
            except Exception:
                log.exception("%s: launching it failed", label(one.flow_run))
                self._unlaunched.pop(one.flow_run.id, None)

    async def _launch(self, claimed: ClaimedRun) -> None:
        run = claimed.flow_run
        config = job_templates.configuration(
            claimed.base_job_template, claimed.job_variables, os.environ
        )
        retryable = True
        try:
            handle = await asyncio.to_thread(self.launch, claimed, config)
        except LaunchError as exc:
            reason, retryable = str(exc), exc.retryable
        except Exception as exc:
            log.exception("%s: the %s worker failed to launch it", label(run), self.type)
            reason = f"the worker failed to launch it ({type(exc).__name__}: {exc})"
        else:
            del self._unlaunched[run.id]
            await self._started(claimed, handle, config)
            return
        output = OutputFile(self.output_path(run.id))
        message = f"its {self.noun} could not start: {reason}"
        if not retryable:
            message += " (not retried: starting it again would fail the same way)"
        try:
            line = await _finish.crash_unlaunched(
                self.client, run, claimed.lease_token, message, output, crash_retry=retryable
            )
            log.error("%s", line)
        except (ServerUnreachable, ApiError) as exc:
            log.error(
                "%s could not start (%s) and could not be reported: %s", label(run), reason, exc
            )
        output.remove()
        del self._unlaunched[run.id]

    async def _started(self, claimed: ClaimedRun, handle: H, config: dict[str, Any]) -> None:
        run = claimed.flow_run
        output = OutputFile(self.output_path(run.id))
        stream = config.get("stream_output", True) is not False
        self._running[run.id] = Launched(run, claimed.lease_token, handle, output, stream)
        infrastructure_id = self.infrastructure_id(handle)
        log.info("started %s (%s %s)", label(run), self.id_label, infrastructure_id)
        try:
            update = FlowRunUpdate(
                infrastructure_id=infrastructure_id, lease_token=claimed.lease_token
            )
            await self.client.update_flow_run(run.id, update)
        except (ServerUnreachable, ApiError) as exc:
            log.warning("%s: could not record its %s: %s", label(run), self.id_label, exc)

    async def _recover(self) -> None:
        """Watch again the runs :meth:`recover` found; stop at once those asked to cancel
        while no worker was there (the next heartbeat may be seconds away)."""
        for run_id, (handle, token) in (await asyncio.to_thread(self.recover)).items():
            run = await self.client.read_flow_run(run_id)
            output = OutputFile(self.output_path(run_id))
            entry = Launched(run, token, handle, output, stream=False)
            self._running[run_id] = entry
            log.info(
                "watching %s again (%s %s)",
                label(run),
                self.id_label,
                self.infrastructure_id(handle),
            )
            if run.state == S.CANCELLING:
                self._cancel(entry)

    def _slot_freed(self) -> None:
        self._slot_event.set()

    # ------------------------------------------------------------ stopping

    async def _hand_back(self) -> None:
        message = f"handed back by worker '{self.name}', which stopped before starting it"
        for claimed in list(self._unlaunched.values()):
            run = claimed.flow_run
            try:
                now = await _finish.set_state(
                    self.client, run, claimed.lease_token, S.SCHEDULED, message
                )
            except (ServerUnreachable, ApiError) as exc:
                log.warning("could not hand back %s: %s", label(run), exc)
            else:
                log.info("handed back %s (%s)", label(run), now.state)
            del self._unlaunched[run.id]

    def _leave(self) -> None:
        if self._running:
            names = ", ".join(f"'{entry.run.name}'" for entry in self._running.values())
            log.info("stopped; runs left to finish under their own lease: %s", names)
            return
        log.info("stopped")
        if self._output_dir is not None:
            shutil.rmtree(self._output_dir, ignore_errors=True)


def _ensure_logging() -> None:
    """Print the worker's lines when nothing else was set up to show them."""
    logger = logging.getLogger("dockyard.worker")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    if not logger.hasHandlers():
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(_PrintableFormatter("%(asctime)s | %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)


class _PrintableFormatter(logging.Formatter):
    """A worker's lines hold what the server and runs said (state messages, errors): their
    control characters are shown as escapes, never acted on by the terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record), lines=True)
