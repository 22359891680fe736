"""Tracking: what a flow run tells the server, and the thread that ships it in batches.

One :class:`Tracker` serves a top-level flow run and every subflow and task inside it. Flow
runs are created and moved between states synchronously (a few calls per run). Task-run
records and log lines are only appended to queues on the run's path; one background thread
(:class:`Shipper`) drains them in batches, so no task waits for the network. Everything is
flushed before a flow run reports its final state.
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import DockyardError, FlowRunAborted
from dockyard.sdk.shipping import LOG_BATCH, TASK_RUN_BATCH, LogRow, Shipper, TaskRunRow, warn

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = ["LeaseKeeper", "LeaseRenewer", "LocalTracker", "RunHandle", "Tracker", "warn"]


class RunHandle:
    """One flow run as this process reports on it: id, name and the lease token it holds.

    ``abort(reason)`` marks the run as no longer ours (fenced off by the server, or
    cancelled): the next task call, and the flow's end, raise FlowRunAborted. A lease keeper
    (heartbeat) calls it when the server refuses a renewal, or answers that the run was
    asked to cancel (``cancel_requested``). ``terminated`` names the signal that stopped the
    engine running the flow (``"SIGTERM"``), if one did.
    """

    __slots__ = (
        "aborted",
        "cancel_requested",
        "id",
        "id_text",
        "lease_token",
        "name",
        "terminated",
    )

    def __init__(self, id: uuid.UUID, name: str, lease_token: uuid.UUID | None = None) -> None:
        self.id = id
        self.id_text = str(id)
        self.name = name
        self.lease_token = lease_token
        self.aborted: str | None = None
        self.cancel_requested = False
        self.terminated: str | None = None

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
            self._thread.join(self._interval + 30)

    def _loop(self) -> None:
        while not self._closed.wait(self._interval):
            with self._lock:
                handles = list(self._handles.values())
            for handle in handles:
                self._renew(handle)

    def _renew(self, handle: RunHandle) -> None:
        assert handle.lease_token is not None
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
        if state == "CANCELLING":
            self._abort(handle, f"flow run {handle.id} was cancelled", cancelled=True)

    def _abort(self, handle: RunHandle, reason: str, *, cancelled: bool = False) -> None:
        self.stop(handle)
        handle.abort(reason, cancelled=cancelled)


class Tracker:
    """Reports the runs of one top-level flow run to a server."""

    tracked = True

    def __init__(self, api: ServerApi, lease_keeper: LeaseKeeper | None = None) -> None:
        self.api = api
        self.lease_keeper = lease_keeper or LeaseKeeper()
        self._task_runs: deque[TaskRunRow] = deque()
        self._logs: deque[LogRow] = deque()
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
    ) -> RunHandle:
        """Create a RUNNING flow run on the server and return its handle.

        Raises:
            ServerUnreachable: no server answered.
        """
        id, name, token = self.api.create_flow_run(
            flow_name=flow_name,
            parameters=parameters,
            parent_flow_run_id=parent.id if parent is not None else None,
            tags=tags,
        )
        return RunHandle(id, name, token)

    def set_state(
        self, handle: RunHandle, state: str, *, message: str | None = None, result: Any = None
    ) -> None:
        """Move a run to ``state``.

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
        queue.append(row)
        if len(queue) == TASK_RUN_BATCH:  # once per full batch, not on every later append
            self._shipper.wake()

    def add_log(self, row: LogRow) -> None:
        """Queue a log line for the next batch (never waits)."""
        queue = self._logs
        queue.append(row)
        if len(queue) == LOG_BATCH:
            self._shipper.wake()

    def flush(self) -> None:
        """Return once every record queued before the call has been sent (or given up)."""
        if not self._closed:
            self._shipper.flush()

    def close(self) -> None:
        """Flush and stop the shipping thread."""
        if not self._closed:
            self._closed = True
            self.lease_keeper.close()
            self._shipper.stop()


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
    ) -> RunHandle:
        id = uuid.uuid4()
        return RunHandle(id, f"{flow_name}-{id.hex[:8]}")

    def set_state(
        self, handle: RunHandle, state: str, *, message: str | None = None, result: Any = None
    ) -> None:
        return None

    def cancel_requested(self, handle: RunHandle) -> bool:
        return False

    def add_task_run(self, row: TaskRunRow) -> None:
        return None

    def add_log(self, row: LogRow) -> None:
        return None
