"""The thread that ships queued task runs and log lines to the server, in batches."""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dockyard.exceptions import ApiError, DockyardError
from dockyard.sdk.context import id_text

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = ["LogRow", "Shipper", "TaskRunRow", "log_json", "task_run_json", "warn"]

# A final task run: id (int of its UUID), flow run id (text), name, task_key, state, start,
# end (epoch seconds), cache_key, cached, attempts, error, tags.
TaskRunRow = tuple[
    int, str, str, str, str, float, float, str | None, bool, int, str | None, tuple[str, ...]
]
# A log line: flow run id (text), task run id (int, or None), level, logger name, message,
# time (epoch seconds).
LogRow = tuple[str, int | None, int, str, str, float]

TASK_RUN_BATCH = 500
LOG_BATCH = 1000
SHIP_INTERVAL = 0.5
FLUSH_TIMEOUT = 120.0


def warn(message: str) -> None:
    """Print one line about tracking on the real standard error."""
    stream = getattr(sys.stderr, "dockyard_original", sys.stderr)
    print(f"dockyard: {message}", file=stream, flush=True)


class _Clock:
    """Turns epoch seconds into ISO 8601 text, cheaply for many times in the same second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, epoch: float) -> str:
        """Return ``epoch`` as UTC ISO 8601 text with microseconds."""
        second = int(epoch)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._prefix}.{int((epoch - second) * 1e6):06d}Z"


def task_run_json(row: TaskRunRow, clock: _Clock) -> dict[str, Any]:
    """Return the JSON of a ``TaskRunRecord`` for a queued row (defaults left out)."""
    id, flow_run_id, name, key, state, start, end, cache_key, cached, attempts, error, tags = row
    record: dict[str, Any] = {
        "id": id_text(id),
        "flow_run_id": flow_run_id,
        "name": name,
        "task_key": key,
        "state": state,
        "start_time": clock.iso(start),
        "end_time": clock.iso(end),
    }
    if cache_key is not None:
        record["cache_key"] = cache_key
        record["cached"] = cached
    if attempts != 1:
        record["attempts"] = attempts
    if error is not None:
        record["error"] = error
    if tags:
        record["tags"] = list(tags)
    return record


def log_json(row: LogRow, clock: _Clock) -> dict[str, Any]:
    """Return the JSON of a ``LogCreate`` for a queued log row."""
    flow_run_id, task_run_id, level, name, message, created = row
    return {
        "flow_run_id": flow_run_id,
        "task_run_id": id_text(task_run_id) if task_run_id is not None else None,
        "level": level,
        "name": name,
        "message": message,
        "timestamp": clock.iso(created),
    }


class Shipper(threading.Thread):
    """The one thread that sends queued task runs and logs, in batches.

    It wakes every :data:`SHIP_INTERVAL` seconds, when a queue holds a full batch, or when
    asked to flush; it then sends everything queued. A batch the server refuses, or cannot
    take after the client's retries, is dropped with one line on standard error: tracking
    never fails a flow.
    """

    def __init__(self, api: ServerApi, task_runs: deque[TaskRunRow], logs: deque[LogRow]) -> None:
        super().__init__(name="dockyard-shipper", daemon=True)
        self._api = api
        self._task_runs = task_runs
        self._logs = logs
        self._wake = threading.Event()
        self._waiters: deque[threading.Event] = deque()
        self._stopping = False
        self._warned: set[str] = set()
        self._clock = _Clock()

    def wake(self) -> None:
        """Ship now rather than at the next interval."""
        self._wake.set()

    def flush(self) -> None:
        """Return once everything queued before the call is sent (or given up)."""
        done = threading.Event()
        self._waiters.append(done)
        self._wake.set()
        deadline = time.monotonic() + FLUSH_TIMEOUT
        while not done.wait(0.5):
            if not self.is_alive() or time.monotonic() > deadline:
                warn("gave up waiting for task runs and logs to reach the server")
                return

    def stop(self) -> None:
        """Ship everything left, then end the thread."""
        self._stopping = True
        self._wake.set()
        self.join(FLUSH_TIMEOUT)

    def run(self) -> None:
        while True:
            self._wake.wait(SHIP_INTERVAL)
            self._wake.clear()
            stopping = self._stopping
            waiters = [self._waiters.popleft() for _ in range(len(self._waiters))]
            self._ship(self._task_runs, TASK_RUN_BATCH, task_run_json, self._api.create_task_runs)
            self._ship(self._logs, LOG_BATCH, log_json, self._api.create_logs)
            for waiter in waiters:
                waiter.set()
            if stopping:
                return

    def _ship(
        self,
        queue: deque[Any],
        size: int,
        to_json: Callable[[Any, _Clock], dict[str, Any]],
        send: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        while queue:
            batch = []
            popleft, clock = queue.popleft, self._clock
            try:
                for _ in range(size):
                    batch.append(to_json(popleft(), clock))
            except IndexError:
                pass
            self._guarded(send, batch)

    def _guarded(self, send: Callable[..., None], *args: Any) -> None:
        try:
            send(*args)
        except (ApiError, DockyardError) as exc:
            self._warn_once(type(exc).__name__, f"could not send run records: {exc}")
        except Exception:
            self._warn_once("bug", f"could not send run records:\n{traceback.format_exc()}")

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warn(message)
