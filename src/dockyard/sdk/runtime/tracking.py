"""Tracking: what a flow run tells the server, and the thread that ships it in batches.

One :class:`Tracker` serves a top-level flow run and every subflow and task inside it. Flow
runs are created and moved between states synchronously (a few calls per run). Task-run
records and log lines are only appended to queues on the run's path; one background thread
(:class:`Shipper`) drains them in batches, so no task waits for the network.

A run's end (:meth:`Tracker.end_run`) flushes those queues, then reports the final state.
Both wait for a server that does not answer, with backoff, for as long as the run's lease
allows (:func:`report_final`): the lease keeper goes on renewing meanwhile, so a server back
within that time gets the final state as if nothing happened. A final state that could still
not be reported stays on the run's handle (``unreported``); the engine then hands it to its
worker (:mod:`dockyard.sdk.engine`).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import DockyardError, FlowRunAborted, FlowRunTerminated
from dockyard.sdk.runtime.shipping import (
    FLUSH_TIMEOUT,
    LOG_BATCH,
    MAX_QUEUED,
    TASK_RUN_BATCH,
    LogRow,
    Shipper,
    TaskRunRow,
    backoff,
    retryable,
    warn,
)

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = [
    "LeaseKeeper",
    "LeaseRenewer",
    "LocalTracker",
    "RunHandle",
    "Tracker",
    "report_final",
    "warn",
]

# The share of its lease a run spends trying to report its final state: the rest is left to
# the worker it then hands the state to, before the server's reaper would crash the run.
LEASE_SHARE = 2 / 3
# A run stopped by a signal tries this long only: a second signal, or SIGKILL after the
# sender's grace (10 s for workers and `docker stop`), would end it before it hands over.
TERMINATED_SECONDS = 3.0
# A call of the final report waits at least this long for an answer, even past the lease.
MIN_CALL_SECONDS = 2.0
# The lease keeper's thread is not waited for longer than this once closed.
JOIN_SECONDS = 2.0


class RunHandle:
    """One flow run as this process reports on it: id, name and the lease token it holds.

    ``abort(reason)`` marks the run as no longer ours (fenced off by the server, or
    cancelled): the next task call, and the flow's end, raise FlowRunAborted. A lease keeper
    (heartbeat) calls it when the server refuses a renewal, or answers that the run was
    asked to cancel (``cancel_requested``). ``terminated`` names the signal that stopped the
    engine running the flow (``"SIGTERM"``), if one did. ``renewed_at``: when (monotonic
    clock) the server last confirmed the lease, counted from before the call. ``unreported``:
    the final state (state, message, result) the server could not be told.
    """

    __slots__ = (
        "aborted",
        "cancel_requested",
        "id",
        "id_text",
        "lease_token",
        "name",
        "renewed_at",
        "terminated",
        "unreported",
    )

    def __init__(
        self,
        id: uuid.UUID,
        name: str,
        lease_token: uuid.UUID | None = None,
        *,
        renewed_at: float | None = None,
    ) -> None:
        self.id = id
        self.id_text = str(id)
        self.name = name
        self.lease_token = lease_token
        self.renewed_at = time.monotonic() if renewed_at is None else renewed_at
        self.aborted: str | None = None
        self.cancel_requested = False
        self.terminated: str | None = None
        self.unreported: tuple[str, str | None, Any] | None = None

    def abort(self, reason: str, *, cancelled: bool = False) -> None:
        """Mark the run as no longer this process's, for ``reason`` (a cancellation or not)."""
        self.aborted = reason
        self.cancel_requested = self.cancel_requested or cancelled

    @property
    def fenced(self) -> bool:
        """Whether the server took the run from this process (not for a cancellation)."""
        return self.aborted is not None and not self.cancel_requested

    def check(self) -> None:
        """Raise FlowRunAborted if the run was aborted."""
        if self.aborted is not None:
            raise FlowRunAborted(self.aborted)


class LeaseKeeper:
    """Keeps the leases of running flow runs alive while their flows run.

    The server lets a lease expire ``lease_seconds`` after its last renewal and then declares
    the run CRASHED. This base keeps nothing (for untracked runs); :class:`LeaseRenewer`
    renews them.
    """

    def start(self, handle: RunHandle) -> None:
        """Begin keeping ``handle``'s lease (called once the run is RUNNING)."""

    def stop(self, handle: RunHandle) -> None:
        """Stop keeping ``handle``'s lease (called before the run's final state)."""

    def close(self) -> None:
        """Stop keeping every lease."""


class LeaseRenewer(LeaseKeeper):
    """Renews the leases of running flow runs from one thread, every ``interval`` seconds.

    When the server refuses a renewal (409: the run was declared CRASHED and may run again
    elsewhere) or answers that the run was asked to cancel (CANCELLING), the run's handle is
    aborted: the flow stops at its next task call and reports nothing more, and the lease is
    left to expire (the server then ends a cancelled run CANCELLED). A server that does not
    answer is tried again at the next interval.
    """

    def __init__(self, api: ServerApi, interval: float) -> None:
        self._api = api
        self._interval = max(0.01, interval)
        self._handles: dict[uuid.UUID, RunHandle] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    def start(self, handle: RunHandle) -> None:
        if handle.lease_token is None:
            return
        with self._lock:
            self._handles[handle.id] = handle
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="dockyard-lease", daemon=True
                )
                self._thread.start()

    def stop(self, handle: RunHandle) -> None:
        with self._lock:
            self._handles.pop(handle.id, None)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            # a renewal in flight may wait for its answer; the thread is a daemon
            self._thread.join(JOIN_SECONDS)

    def _loop(self) -> None:
        while not self._closed.wait(self._interval):
            with self._lock:
                handles = list(self._handles.values())
            for handle in handles:
                self._renew(handle)

    def _renew(self, handle: RunHandle) -> None:
        assert handle.lease_token is not None
        asked = time.monotonic()
        try:
            state = self._api.renew_lease(handle.id, handle.lease_token)
        except FlowRunAborted as exc:
            self._abort(handle, str(exc))
            return
        except DockyardError as exc:
            if not self._warned:
                self._warned = True
                warn(f"could not renew the lease of flow run {handle.id}: {exc}")
            return
        handle.renewed_at = asked
        if state == "CANCELLING":
            self._abort(handle, f"flow run {handle.id} was cancelled", cancelled=True)

    def _abort(self, handle: RunHandle, reason: str, *, cancelled: bool = False) -> None:
        self.stop(handle)
        handle.abort(reason, cancelled=cancelled)


class Tracker:
    """Reports the runs of one top-level flow run to a server.

    Args:
        api: the server calls.
        lease_keeper: keeps the runs' leases (default: keeps nothing).
        lease_seconds: the server's lease length (``DOCKYARD_LEASE_SECONDS``): how long a
            final state may wait for the server.
    """

    tracked = True

    def __init__(
        self,
        api: ServerApi,
        lease_keeper: LeaseKeeper | None = None,
        *,
        lease_seconds: float = 30.0,
    ) -> None:
        self.api = api
        self.lease_keeper = lease_keeper or LeaseKeeper()
        self.lease_seconds = lease_seconds
        # full queues drop their oldest rows: memory stays bounded through any outage
        self._task_runs: deque[TaskRunRow] = deque(maxlen=MAX_QUEUED)
        self._logs: deque[LogRow] = deque(maxlen=MAX_QUEUED)
        self._shipper = Shipper(api, self._task_runs, self._logs)
        self._shipper.start()
        self._closed = False

    def start_run(
        self,
        *,
        flow_name: str,
        parameters: dict[str, Any],
        parent: RunHandle | None,
        tags: list[str],
        name: str | None = None,
    ) -> RunHandle:
        """Create a RUNNING flow run on the server (named ``name``, else by the server) and
        return its handle.

        Raises:
            ServerUnreachable: no server answered.
        """
        asked = time.monotonic()
        id, given, token = self.api.create_flow_run(
            flow_name=flow_name,
            parameters=parameters,
            parent_flow_run_id=parent.id if parent is not None else None,
            tags=tags,
            name=name,
        )
        return RunHandle(id, given, token, renewed_at=asked)

    def set_state(
        self, handle: RunHandle, state: str, *, message: str | None = None, result: Any = None
    ) -> None:
        """Move a run to ``state`` on its way (a final state goes through :meth:`end_run`).

        Raises:
            FlowRunAborted: the server refused: the run is no longer this process's.
        """
        try:
            self.api.set_state(
                handle.id, state, lease_token=handle.lease_token, message=message, result=result
            )
        except FlowRunAborted as exc:
            handle.abort(str(exc))
            raise
        except DockyardError as exc:
            # Without a server the run cannot be reported; the flow itself goes on.
            warn(f"could not report flow run {handle.id} as {state}: {exc}")

    def end_run(
        self, handle: RunHandle, state: str, *, message: str | None = None, result: Any = None
    ) -> bool:
        """Flush the queued task runs and logs, then report the run's final state.

        Both wait for the server as long as the run's lease allows (:func:`report_final`);
        the lease is kept meanwhile, and let go once this returns. Returns whether the
        server took the final state; when it did not, ``handle.unreported`` holds it.

        Raises:
            FlowRunAborted: the server refused: the run is no longer this process's.
        """
        began = time.monotonic()
        try:
            try:
                stopped = began if handle.terminated else None
                window = _deadline(handle, self.lease_seconds, began, stopped) - began
                self._shipper.flush(max(0.0, window))
            except FlowRunTerminated:
                return _not_reported(handle, (state, message, result), "stopped by a signal")
            return report_final(
                self.api,
                handle,
                state,
                lease_seconds=self.lease_seconds,
                message=message,
                result=result,
                began=began,
            )
        finally:
            self.lease_keeper.stop(handle)

    def cancel_requested(self, handle: RunHandle) -> bool:
        """Whether the run was asked to cancel (it is CANCELLING on the server)."""
        if handle.cancel_requested:
            return True
        try:
            return bool(self.api.read_flow_run(handle.id)["state"] == "CANCELLING")
        except DockyardError as exc:
            warn(f"could not read the state of flow run {handle.id}: {exc}")
            return False

    def add_task_run(self, row: TaskRunRow) -> None:
        """Queue a final task run for the next batch (never waits)."""
        queue = self._task_runs
        size = len(queue)
        if size == MAX_QUEUED:  # the append lets the oldest go
            self._shipper.task_runs.dropped += 1
        queue.append(row)
        if size + 1 == TASK_RUN_BATCH:  # once per full batch, not on every later append
            self._shipper.wake()

    def add_log(self, row: LogRow) -> None:
        """Queue a log line for the next batch (never waits)."""
        queue = self._logs
        size = len(queue)
        if size == MAX_QUEUED:
            self._shipper.logs.dropped += 1
        queue.append(row)
        if size + 1 == LOG_BATCH:
            self._shipper.wake()

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Wait until every record queued before the call has been sent; False on timeout."""
        if self._closed:
            return True
        return self._shipper.flush(timeout)

    def close(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Send what is left (waiting up to ``timeout`` for the server) and stop the thread."""
        if not self._closed:
            self._closed = True
            self.lease_keeper.close()
            self._shipper.stop(timeout)


class LocalTracker(Tracker):
    """Tracks nothing: the runs of a flow called while no server is reachable."""

    tracked = False

    def __init__(self) -> None:
        self.lease_keeper = LeaseKeeper()
        self._closed = True

    def start_run(
        self,
        *,
        flow_name: str,
        parameters: dict[str, Any],
        parent: RunHandle | None,
        tags: list[str],
        name: str | None = None,
    ) -> RunHandle:
        id = uuid.uuid4()
        return RunHandle(id, name or f"{flow_name}-{id.hex[:8]}")

    def set_state(
        self, handle: RunHandle, state: str, *, message: str | None = None, result: Any = None
    ) -> None:
        return None

    def end_run(
        self, handle: RunHandle, state: str, *, message: str | None = None, result: Any = None
    ) -> bool:
        return True

    def cancel_requested(self, handle: RunHandle) -> bool:
        return False

    def add_task_run(self, row: TaskRunRow) -> None:
        return None

    def add_log(self, row: LogRow) -> None:
        return None


# ---------------------------------------------------------------- the final state


def report_final(
    api: ServerApi,
    handle: RunHandle,
    state: str,
    *,
    lease_seconds: float,
    message: str | None = None,
    result: Any = None,
    began: float | None = None,
) -> bool:
    """Report ``handle``'s final state, trying again with backoff while its lease allows.

    The lease runs ``lease_seconds`` after its last renewal (``handle.renewed_at``): this
    keeps trying for :data:`LEASE_SHARE` of it, and never longer than one lease in all (the
    rest is the worker's, to report the state handed to it). Once a signal stopped the run
    it tries for :data:`TERMINATED_SECONDS` only. Every try carries the same idempotency key,
    so a try whose answer was lost is answered as done. Returns whether the server took the
    state; when it did not, ``handle.unreported`` holds it.

    Raises:
        FlowRunAborted: the server refused: the run is no longer this process's.
    """
    began = time.monotonic() if began is None else began
    final = (state, message, result)
    key = f"final:{uuid.uuid4()}"
    terminated_at = began if handle.terminated else None
    failures = 0
    try:
        while True:
            now = time.monotonic()
            if handle.terminated and terminated_at is None:
                terminated_at = now
            deadline = _deadline(handle, lease_seconds, began, terminated_at)
            try:
                api.set_state(
                    handle.id,
                    state,
                    lease_token=handle.lease_token,
                    message=message,
                    result=result,
                    idempotency_key=key,
                    attempts=1,
                    timeout=min(30.0, max(MIN_CALL_SECONDS, deadline - now)),
                )
                return True
            except FlowRunAborted as exc:
                handle.abort(str(exc))
                raise
            except DockyardError as exc:
                if not retryable(exc):
                    return _not_reported(handle, final, str(exc))
                if handle.fenced:
                    raise FlowRunAborted(str(handle.aborted)) from exc
                failures += 1
                pause = backoff(failures)
                if time.monotonic() + pause >= deadline:
                    return _not_reported(handle, final, str(exc))
                if failures == 1:
                    warn(
                        f"could not report flow run {handle.id} as {state} yet ({exc}); "
                        f"trying again for up to {max(0.0, deadline - now):.0f} s"
                    )
            time.sleep(pause)
    except FlowRunTerminated:
        return _not_reported(handle, final, "stopped by a signal while reporting it")


def _deadline(
    handle: RunHandle, lease_seconds: float, began: float, terminated_at: float | None
) -> float:
    deadline = min(handle.renewed_at + lease_seconds * LEASE_SHARE, began + lease_seconds)
    if terminated_at is not None:
        deadline = min(deadline, terminated_at + TERMINATED_SECONDS)
    return deadline


def _not_reported(handle: RunHandle, final: tuple[str, str | None, Any], why: str) -> bool:
    handle.unreported = final
    warn(f"could not report flow run {handle.id} as {final[0]}: {why}")
    return False
