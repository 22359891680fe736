"""The thread that ships queued task runs and log lines to the server, in batches.

Records wait in two queues of at most :data:`MAX_QUEUED` rows each. While the server cannot
take them (no answer, or a server error) they stay queued, the batch in hand first, and are
tried again with backoff (:func:`backoff`); nothing is dropped for an outage. When a queue
is full, the oldest rows make room for new ones: memory stays bounded, and one warning at
the end counts what was lost. A batch the server refuses as such (a 4xx answer: it would be
refused again) is dropped with one line. A batch whose answer was lost may be stored twice:
a log line shown twice is better than a line lost.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dockyard._batching import MAX_BYTES, size_bound
from dockyard._values import TAG_MAX_LENGTH, clean_text
from dockyard.exceptions import ApiError, DockyardError, ServerUnreachable
from dockyard.sdk.runtime.context import id_text

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = [
    "LogRow",
    "Shipper",
    "TaskRunRow",
    "backoff",
    "log_json",
    "retryable",
    "task_run_json",
    "warn",
]

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
MAX_QUEUED = 100_000
SHIP_INTERVAL = 0.5
FLUSH_TIMEOUT = 120.0
BACKOFF_CAP = 2.0
# How long stop() waits for a call in flight once its own time is up (the thread is a daemon).
JOIN_GRACE = 5.0


# What the server's columns hold: a flow's own output is cleaned and cut to fit, so that it
# is recorded rather than refused (dockyard._values).
NAME_MAX = 200
TASK_KEY_MAX = 500


def backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failed tries in a row: 0.1, 0.2, ... up to 2."""
    return float(min(BACKOFF_CAP, 0.1 * 2 ** (failures - 1)))


def retryable(exc: DockyardError) -> bool:
    """Whether the same call may succeed later: no answer, or a failure on the server's side."""
    if isinstance(exc, ApiError):
        return exc.status >= 500 or exc.status in (408, 429)
    return isinstance(exc, ServerUnreachable)


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
        "name": clean_text(name, NAME_MAX),
        "task_key": clean_text(key, TASK_KEY_MAX),
        "state": state,
        "start_time": clock.iso(start),
        "end_time": clock.iso(end),
    }
    if cache_key is not None:
        record["cache_key"] = clean_text(cache_key)
        record["cached"] = cached
    if attempts != 1:
        record["attempts"] = attempts
    if error is not None:
        record["error"] = clean_text(error)
    if tags:
        record["tags"] = [clean_text(tag, TAG_MAX_LENGTH) for tag in tags]
    return record


def log_json(row: LogRow, clock: _Clock) -> dict[str, Any]:
    """Return the JSON of a ``LogCreate`` for a queued log row."""
    flow_run_id, task_run_id, level, name, message, created = row
    return {
        "flow_run_id": flow_run_id,
        "task_run_id": id_text(task_run_id) if task_run_id is not None else None,
        "level": level,
        "name": clean_text(name, NAME_MAX),
        "message": clean_text(message),
        "timestamp": clock.iso(created),
    }


class _Stream:
    """One queue the shipper drains: its rows, how they become JSON, and where they go.

    ``held``: a batch the server did not take yet, sent before anything else. ``dropped``:
    rows the queue let go when full (counted by the tracker as it appends).
    """

    def __init__(
        self,
        what: str,
        queue: deque[Any],
        size: int,
        to_json: Callable[[Any, _Clock], dict[str, Any]],
        send: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self.what = what
        self.queue = queue
        self.size = size
        self.to_json = to_json
        self.send = send
        self.held: list[dict[str, Any]] | None = None
        self.dropped = 0

    def waiting(self) -> int:
        return len(self.queue) + len(self.held or ())


class Shipper(threading.Thread):
    """The one thread that sends queued task runs and logs, in batches.

    It wakes every :data:`SHIP_INTERVAL` seconds, when a queue holds a full batch, or when
    asked to flush; it then sends everything queued. While the server does not answer it
    tries again with backoff, keeping what it could not send (see the module's docstring):
    tracking never fails a flow, and never forgets a record because of an outage.
    """

    def __init__(self, api: ServerApi, task_runs: deque[TaskRunRow], logs: deque[LogRow]) -> None:
        super().__init__(name="dockyard-shipper", daemon=True)
        self.task_runs = _Stream(
            "task runs", task_runs, TASK_RUN_BATCH, task_run_json, api.create_task_runs
        )
        self.logs = _Stream("log lines", logs, LOG_BATCH, log_json, api.create_logs)
        self._wake = threading.Event()
        self._waiters: deque[threading.Event] = deque()
        self._stop_at: float | None = None
        self._failures = 0
        self._warned: set[str] = set()
        self._clock = _Clock()

    def wake(self) -> None:
        """Ship now rather than at the next interval."""
        self._wake.set()

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Wait until everything queued before the call is sent; False if that took too long."""
        done = threading.Event()
        self._waiters.append(done)
        self._wake.set()
        deadline = time.monotonic() + timeout
        while not done.wait(max(0.0, min(0.5, deadline - time.monotonic()))):
            if not self.is_alive() or time.monotonic() >= deadline:
                return False
        return True

    def stop(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Ship everything left, trying again for up to ``timeout`` seconds, then end."""
        self._stop_at = time.monotonic() + timeout
        self._wake.set()
        if self.is_alive():
            self.join(timeout + JOIN_GRACE)

    def run(self) -> None:
        while True:
            self._wake.wait(backoff(self._failures) if self._failures else SHIP_INTERVAL)
            self._wake.clear()
            stop_at = self._stop_at
            if stop_at is not None and self._failures and time.monotonic() >= stop_at:
                break  # out of time, and the server is not answering: no use trying again
            waiters = [self._waiters.popleft() for _ in range(len(self._waiters))]
            if self._ship(self.task_runs) and self._ship(self.logs):
                self._failures = 0
                for waiter in waiters:
                    waiter.set()
                if stop_at is not None:
                    break
            else:
                self._failures += 1
                self._waiters.extendleft(reversed(waiters))  # they still wait for these
        self._farewell()

    def _ship(self, stream: _Stream) -> bool:
        """Send ``stream``'s held batch, then its queue; False when the server did not answer."""
        if stream.held is not None:
            if not self._send(stream, stream.held):
                return False
            stream.held = None
        queue, size, to_json, clock = stream.queue, stream.size, stream.to_json, self._clock
        while queue:
            batch: list[dict[str, Any]] = []
            budget = MAX_BYTES  # the server takes at least twice this much in one request
            popleft = queue.popleft
            try:
                while len(batch) < size:
                    row = popleft()
                    record = to_json(row, clock)
                    cost = size_bound(record)
                    if batch and cost > budget:
                        queue.appendleft(row)  # the first of the next batch
                        break
                    batch.append(record)
                    budget -= cost
            except IndexError:
                pass
            if not self._send(stream, batch):
                stream.held = batch
                return False
        return True

    def _send(self, stream: _Stream, batch: list[dict[str, Any]]) -> bool:
        """Send one batch; False when it should be tried again (it was not taken)."""
        try:
            stream.send(batch)
        except DockyardError as exc:
            if retryable(exc):
                self._warn_once(
                    "unreachable",
                    f"could not send run records yet ({exc}); they wait and are sent as "
                    "soon as the server answers",
                )
                return False
            self._warn_once(type(exc).__name__, f"the server refused {stream.what}: {exc}")
        except Exception:
            self._warn_once("bug", f"could not send {stream.what}:\n{traceback.format_exc()}")
        return True

    def _farewell(self) -> None:
        """Say, once, what never reached the server."""
        lost = [
            f"{stream.dropped} {stream.what} (the oldest: more than {MAX_QUEUED} were waiting)"
            for stream in (self.task_runs, self.logs)
            if stream.dropped
        ]
        lost += [
            f"{stream.waiting()} {stream.what} (the server did not answer in time)"
            for stream in (self.task_runs, self.logs)
            if stream.waiting()
        ]
        if lost:
            warn(f"these run records never reached the server: {'; '.join(lost)}")

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            warn(message)
