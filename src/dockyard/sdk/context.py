"""What a running flow or task knows about its run, carried in context variables.

Threads the SDK starts (``Task.submit``, timeouts) run with a copy of the submitting context,
and asyncio tasks copy it by themselves, so code anywhere inside a run finds it with
:func:`get_run_context`.
"""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from dockyard.sdk.flows import Flow
    from dockyard.sdk.tasks import Task
    from dockyard.sdk.tracking import RunHandle, Tracker
    from dockyard.settings import Settings

__all__ = [
    "FLOW_RUN",
    "TASK_RUN",
    "FlowRunContext",
    "TaskRunContext",
    "get_run_context",
    "id_text",
    "new_id",
]

_getrandbits = random.getrandbits
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id() -> int:
    """Return a new random (version 4) UUID as an int: cheaper than ``uuid.uuid4()``.

    Task runs are numerous, so their ids are drawn from :mod:`random` (seeded from the OS,
    reseeded in forked children) and turned into text only when shipped.
    """
    return (_getrandbits(128) & _V4_CLEAR) | _V4_SET


def id_text(value: int) -> str:
    """Return the canonical text of the UUID whose int is ``value``."""
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class FlowRunContext:
    """A flow run in progress, as seen from inside it.

    Attributes:
        flow: the :class:`~dockyard.Flow` being run.
        flow_run_id: the run's id (also when the run is not tracked by a server).
        flow_run_name: the run's name.
        parameters: the run's parameters, after validation.
        parent: the flow run that called this one (for a subflow), else None.
        tracked: whether a server records this run.
    """

    __slots__ = (
        "_counters",
        "_executor",
        "_lock",
        "flow",
        "handle",
        "log_prints",
        "parameters",
        "parent",
        "settings",
        "tracker",
    )

    def __init__(
        self,
        *,
        flow: Flow[..., Any],
        handle: RunHandle,
        parameters: dict[str, Any],
        parent: FlowRunContext | None,
        tracker: Tracker,
        settings: Settings,
        log_prints: bool,
    ) -> None:
        self.flow = flow
        self.handle = handle
        self.parameters = parameters
        self.parent = parent
        self.tracker = tracker
        self.settings = settings
        self.log_prints = log_prints
        self._counters: dict[str, itertools.count[int]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def flow_run_id(self) -> uuid.UUID:
        """The run's id."""
        return self.handle.id

    @property
    def flow_run_name(self) -> str:
        """The run's name (given by the server when tracked)."""
        return self.handle.name

    @property
    def tracked(self) -> bool:
        """Whether a server records this run."""
        return self.tracker.tracked

    def next_task_run_name(self, task: Task[..., Any]) -> str:
        """Return the name of the next run of ``task`` in this flow run: ``name-0``, ...."""
        counter = self._counters.get(task.task_key)
        if counter is None:
            counter = self._counters.setdefault(task.task_key, itertools.count())
        return f"{task.name}-{next(counter)}"

    def executor(self) -> ThreadPoolExecutor:
        """Return the thread pool of this run's submitted tasks (made at first use)."""
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(thread_name_prefix="dockyard-task")
        return self._executor

    def wait_for_tasks(self, *, cancel: bool = False, wait: bool = True) -> None:
        """Wait until every submitted task has finished; ``cancel`` drops the unstarted.

        ``wait=False`` returns at once (the engine then ends its process).
        """
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=cancel)

    def __repr__(self) -> str:
        return f"FlowRunContext(flow={self.flow.name!r}, flow_run_id={self.flow_run_id})"


class TaskRunContext:
    """A task run in progress, as seen from inside it (and by ``cache_key_fn``).

    Attributes:
        task: the :class:`~dockyard.Task` being run.
        task_run_name: its name (``task-name-N``).
        flow_run: the flow run it belongs to, or None for a task called outside any flow.
    """

    __slots__ = ("flow_run", "id", "log_prints", "task", "task_run_name")

    def __init__(
        self,
        task: Task[..., Any],
        id: int,
        task_run_name: str,
        flow_run: FlowRunContext | None,
        log_prints: bool,
    ) -> None:
        self.task = task
        self.id = id
        self.task_run_name = task_run_name
        self.flow_run = flow_run
        self.log_prints = log_prints

    @property
    def task_run_id(self) -> uuid.UUID:
        """The task run's id."""
        return uuid.UUID(int=self.id)

    def __repr__(self) -> str:
        return f"TaskRunContext(task={self.task.name!r}, task_run_id={self.task_run_id})"


FLOW_RUN: ContextVar[FlowRunContext | None] = ContextVar("dockyard_flow_run", default=None)
TASK_RUN: ContextVar[TaskRunContext | None] = ContextVar("dockyard_task_run", default=None)


def get_run_context() -> FlowRunContext | TaskRunContext | None:
    """Return the innermost run in progress: the task run, else the flow run, else None."""
    return TASK_RUN.get() or FLOW_RUN.get()


def resolve_log_prints(own: bool | None) -> bool:
    """Return whether a run with ``log_prints=own`` sends prints to its logs."""
    if own is not None:
        return own
    current = get_run_context()
    return current.log_prints if current is not None else False
