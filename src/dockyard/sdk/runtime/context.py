"""What a running flow or task knows about its run, carried in context variables.

Threads the SDK starts (``Task.submit``, timeouts) run with a copy of the submitting context,
and asyncio tasks copy it by themselves, so code anywhere inside a run finds it with
:func:`get_run_context`.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from dockyard.sdk.flows import Flow
    from dockyard.sdk.runtime.cache import RunResults
    from dockyard.sdk.runtime.task_runners import TaskRunner
    from dockyard.sdk.runtime.tracking import RunHandle, Tracker
    from dockyard.sdk.tasks import Task
    from dockyard.settings import Settings

__all__ = [
    "FLOW_RUN",
    "TASK_RUN",
    "FlowRunContext",
    "FlowRunInfo",
    "RunRecord",
    "TaskRunContext",
    "TaskRunInfo",
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


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What the server holds on a deployment's flow run, as the engine read it before the
    flow started. A flow called in a plain way makes its run itself and has none.

    Attributes:
        scheduled_start_time: when the run was scheduled to start (UTC).
        attempt: the run's attempt: 1, more after crash retries.
        tags: the run's tags.
        parent_flow_run_id: the flow run that triggered this one, if any.
        job_variables: the run's own job variables (overrides of the deployment's).
        deployment_id: its deployment's id (also ``deployment_name``, ``deployment_version``).
        parameters: the parameters it runs with: the deployment's, overridden by the run's.
    """

    scheduled_start_time: datetime | None = None
    attempt: int = 1
    tags: tuple[str, ...] = ()
    parent_flow_run_id: uuid.UUID | None = None
    job_variables: dict[str, Any] = dataclasses.field(default_factory=dict)
    deployment_id: uuid.UUID | None = None
    deployment_name: str | None = None
    deployment_version: str | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_server(
        cls, run: dict[str, Any], deployment: dict[str, Any], parameters: dict[str, Any]
    ) -> RunRecord:
        """Return the record of a run from the server's JSON of the run and its deployment."""
        attempt = run.get("attempt")
        return cls(
            scheduled_start_time=_utc(run.get("scheduled_start")),
            attempt=attempt if isinstance(attempt, int) and attempt > 0 else 1,
            tags=tuple(str(tag) for tag in run.get("tags") or ()),
            parent_flow_run_id=_uuid(run.get("parent_flow_run_id")),
            job_variables=dict(run.get("job_variables") or {}),
            deployment_id=_uuid(deployment.get("id")),
            deployment_name=deployment.get("name"),
            deployment_version=deployment.get("version"),
            parameters=dict(parameters),
        )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _utc(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


@dataclasses.dataclass(frozen=True)
class FlowRunInfo:
    """A flow run, as ``get_run_context().flow_run`` shows it (taken when asked).

    ``parameters`` include the defaults; ``run_count`` counts the attempts, 1 on the first;
    ``scheduled_start_time`` is when a plain call started its run.
    """

    id: uuid.UUID
    name: str
    flow_name: str
    parameters: dict[str, Any]
    tags: list[str]
    run_count: int
    scheduled_start_time: datetime
    deployment_id: uuid.UUID | None
    parent_flow_run_id: uuid.UUID | None
    job_variables: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class TaskRunInfo:
    """A task run, as ``get_run_context().task_run`` shows it (taken when asked)."""

    id: uuid.UUID
    name: str
    task_name: str
    parameters: dict[str, Any]
    tags: list[str]
    run_count: int
    flow_run_id: uuid.UUID | None


class FlowRunContext:
    """A flow run in progress, as seen from inside it.

    Attributes:
        flow: the :class:`~dockyard.Flow` being run.
        flow_run: the run (:class:`FlowRunInfo`: ``id``, ``name``, ``parameters``, ``tags``,
            ``run_count``, ...).
        flow_run_id: the run's id (also when the run is not tracked by a server).
        flow_run_name: the run's name.
        parameters: the run's parameters, after validation.
        parent: the flow run that called this one (for a subflow), else None.
        tracked: whether a server records this run.
        record: what the server said of a deployment's run when the engine took it, else None.
        run_count: the attempt in progress, 1 on the first (more after crash retries).
        tags: the run's tags.
    """

    __slots__ = (
        "_counters",
        "_lock",
        "_task_runner",
        "flow",
        "handle",
        "log_prints",
        "parameters",
        "parent",
        "record",
        "results",
        "run_count",
        "settings",
        "started",
        "tags",
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
        record: RunRecord | None = None,
    ) -> None:
        self.flow = flow
        self.handle = handle
        self.parameters = parameters
        self.parent = parent
        self.tracker = tracker
        self.settings = settings
        self.log_prints = log_prints
        self.record = record
        # what the run keeps of its task results (dockyard.sdk.runtime.cache); None: nothing
        self.results: RunResults | None = None
        self.run_count = record.attempt if record is not None else 1
        self.tags = list(record.tags) if record is not None else list(flow.tags)
        self.started = datetime.now(UTC)
        self._counters: dict[str, itertools.count[int]] = {}
        self._task_runner: TaskRunner | None = None
        self._lock = threading.Lock()

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """Return the flow run in progress (also seen from its tasks), or None."""
        return FLOW_RUN.get()

    @property
    def flow_run(self) -> FlowRunInfo:
        """The run: its id, name, parameters, tags, run count, ..."""
        record = self.record
        parent = self.parent
        return FlowRunInfo(
            id=self.handle.id,
            name=self.handle.name,
            flow_name=self.flow.name,
            parameters=self.parameters,
            tags=list(self.tags),
            run_count=self.run_count,
            scheduled_start_time=(record and record.scheduled_start_time) or self.started,
            deployment_id=record.deployment_id if record is not None else None,
            parent_flow_run_id=(
                parent.handle.id
                if parent is not None
                else record.parent_flow_run_id
                if record is not None
                else None
            ),
            job_variables=dict(record.job_variables) if record is not None else {},
        )

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

    def task_runner(self, default: Callable[[], TaskRunner]) -> TaskRunner:
        """Return the task runner of this run's submitted tasks, entered at first use: a
        copy of the flow's ``task_runner``, or ``default()`` if it has none."""
        runner = self._task_runner
        if runner is None:
            with self._lock:
                runner = self._task_runner
                if runner is None:
                    template = self.flow.task_runner
                    runner = default() if template is None else template.duplicate()
                    self._task_runner = runner = runner.__enter__()
        return runner

    def wait_for_tasks(self, *, cancel: bool = False, wait: bool = True) -> None:
        """Wait until every submitted task has finished (leave the task runner); ``cancel``
        drops the unstarted.

        ``wait=False`` returns at once (the engine then ends its process).
        """
        with self._lock:
            runner, self._task_runner = self._task_runner, None
        if runner is not None:
            runner.shutdown(wait=wait, cancel=cancel)

    def __repr__(self) -> str:
        return f"FlowRunContext(flow={self.flow.name!r}, flow_run_id={self.flow_run_id})"


class TaskRunContext:
    """A task run in progress, as seen from inside it (and by ``cache_key_fn``).

    Attributes:
        task: the :class:`~dockyard.Task` being run.
        task_run: the run (:class:`TaskRunInfo`: ``id``, ``name``, ``parameters``, ``tags``,
            ``run_count``, ...).
        task_run_name: its name (``task-name-N``).
        flow_run: the context of the flow run it belongs to (a :class:`FlowRunContext`), or
            None for a task called outside any flow.
        parameters: the arguments of the call by parameter name, defaults included.
        run_count: the attempt in progress, 1 on the first.
        tags: the run's tags: the task's, then those of enclosing ``tags(...)`` blocks.
    """

    __slots__ = (
        "args",
        "flow_run",
        "id",
        "kwargs",
        "log_prints",
        "run_count",
        "tags",
        "task",
        "task_run_name",
    )

    def __init__(
        self,
        task: Task[..., Any],
        id: int,
        task_run_name: str,
        flow_run: FlowRunContext | None,
        log_prints: bool,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.task = task
        self.id = id
        self.task_run_name = task_run_name
        self.flow_run = flow_run
        self.log_prints = log_prints
        self.args = args
        self.kwargs = kwargs
        self.run_count = 1
        # the task's own tags; those of enclosing `tags(...)` blocks are added when there are
        self.tags = task.tags

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """Return the task run in progress, or None."""
        return TASK_RUN.get()

    @property
    def task_run_id(self) -> uuid.UUID:
        """The task run's id."""
        return uuid.UUID(int=self.id)

    @property
    def parameters(self) -> dict[str, Any]:
        """The arguments of the call by parameter name, defaults included (made when asked:
        a plain task call does not pay for it)."""
        signature = self.task.signature
        return signature.with_defaults(signature.bind(self.args, self.kwargs or {}))

    @property
    def task_run(self) -> TaskRunInfo:
        """The run: its id, name, parameters, tags, run count, ..."""
        flow_run = self.flow_run
        return TaskRunInfo(
            id=self.task_run_id,
            name=self.task_run_name,
            task_name=self.task.name,
            parameters=self.parameters,
            tags=list(self.tags),
            run_count=self.run_count,
            flow_run_id=flow_run.handle.id if flow_run is not None else None,
        )

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
