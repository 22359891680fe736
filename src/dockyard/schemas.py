"""Request and response models shared by the client and the server.

Field names are snake_case in Python and on the wire. Times are timezone-aware UTC.
"""

from __future__ import annotations

import enum
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# re-exported: the state sets are defined once, in a module the CLI reads without pydantic
from dockyard._states import ACTIVE_STATES as ACTIVE_STATES
from dockyard._states import FINAL_STATES as FINAL_STATES

API_VERSION = "1"

_POOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _no_slash(value: str) -> str:
    if "/" in value:
        raise ValueError("must not contain '/'")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _pool_name(value: str) -> str:
    if not _POOL_NAME.match(value):
        raise ValueError("may contain only letters, digits, '-', '_' and '.'")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_slash)]
PoolName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_pool_name)]


def utcnow() -> datetime:
    return datetime.now(UTC)


class StateType(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    AWAITING_RETRY = "AWAITING_RETRY"


class PoolStatus(enum.StrEnum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkerStatus(enum.StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ---------------------------------------------------------------- server


class ServerVersion(Response):
    server_version: str
    api_version: str
    # how long a lease lasts after its last renewal on this server (the engine renews and
    # waits by it, whatever its own machine's settings say)
    lease_seconds: float | None = None


class ErrorBody(Response):
    detail: str
    field: str | None = None
    hint: str | None = None
    current_state: StateType | None = None
    suggestions: list[str] | None = None


# ---------------------------------------------------------------- flows


class FlowCreate(Model):
    name: Name
    description: str | None = None
    tags: list[str] = Field(default_factory=list)


class Flow(Response):
    id: uuid.UUID
    name: str
    description: str | None
    tags: list[str]
    created: datetime


# ---------------------------------------------------------------- schedules


class CatchUp(enum.StrEnum):
    """What to do with scheduled runs missed while nothing could start them."""

    LATEST = "latest"  # run only the most recent missed slot, cancel the older ones
    ALL = "all"  # run every missed slot
    SKIP = "skip"  # cancel every missed slot


class ScheduleCreate(Model):
    """One of ``cron``, ``interval`` (seconds) or ``rrule``; times are in ``timezone``.

    The server refuses (422, naming the field) a schedule whose times come closer together
    than its minimum interval (``DOCKYARD_SCHEDULER_MIN_INTERVAL_SECONDS``, 10 s by default),
    or that has no start time in the next ten years. An ``rrule`` is one RRULE, without
    COUNT. An ``anchor_date`` without a zone is read in ``timezone``.
    """

    cron: str | None = Field(default=None, max_length=200)
    interval: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    anchor_date: datetime | None = None
    rrule: str | None = Field(default=None, max_length=2000)
    timezone: str = Field(default="UTC", max_length=100)
    active: bool = True


class ScheduleUpdate(Model):
    active: bool | None = None


class Schedule(Response):
    id: uuid.UUID
    deployment_id: uuid.UUID
    cron: str | None
    interval: float | None
    anchor_date: datetime | None
    rrule: str | None
    timezone: str
    active: bool
    created: datetime
    # why the scheduler could not make runs from it on its last pass (it skips it until the
    # schedule works again, or is deleted); None when it works
    error: str | None = None


# ---------------------------------------------------------------- deployments


class DeploymentCreate(Model):
    """Create or update (by flow name and deployment name) a deployment."""

    flow_name: Name
    name: Name
    entrypoint: str | None = None
    path: str | None = None
    description: str | None = None
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_schema: dict[str, Any] = Field(default_factory=dict)
    work_pool_name: PoolName | None = None
    work_queue_name: Name | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)
    image: str | None = None
    pull_steps: list[dict[str, Any]] = Field(default_factory=list)
    paused: bool = False
    concurrency_limit: int | None = Field(default=None, ge=1)
    crash_retries: int = Field(default=0, ge=0)
    # None leaves a deployment's schedules as they are; a list replaces them
    schedules: list[ScheduleCreate] | None = None
    catchup: CatchUp = CatchUp.LATEST
    max_lateness_seconds: float | None = Field(default=None, gt=0)


class DeploymentUpdate(Model):
    description: str | None = None
    version: str | None = None
    tags: list[str] | None = None
    parameters: dict[str, Any] | None = None
    work_queue_name: Name | None = None
    job_variables: dict[str, Any] | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(default=None, ge=1)
    crash_retries: int | None = Field(default=None, ge=0)
    catchup: CatchUp | None = None
    max_lateness_seconds: float | None = Field(default=None, gt=0)


class Deployment(Response):
    id: uuid.UUID
    flow_id: uuid.UUID
    flow_name: str
    name: str
    entrypoint: str | None
    path: str | None
    description: str | None
    version: str | None
    tags: list[str]
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any]
    work_pool_name: str | None
    work_queue_name: str | None
    job_variables: dict[str, Any]
    image: str | None
    pull_steps: list[dict[str, Any]]
    paused: bool
    concurrency_limit: int | None
    crash_retries: int
    schedules: list[Schedule] = Field(default_factory=list)
    catchup: CatchUp = CatchUp.LATEST
    max_lateness_seconds: float | None = None
    status: PoolStatus
    created: datetime
    updated: datetime


# ---------------------------------------------------------------- flow runs


class State(Response):
    type: StateType
    message: str | None = None
    timestamp: datetime


class FlowRunCreate(Model):
    """A run of a flow. Runs of deployments are made with :class:`DeploymentRunCreate`."""

    flow_name: Name
    name: Name | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    state: StateType = StateType.RUNNING
    tags: list[str] = Field(default_factory=list)
    parent_flow_run_id: uuid.UUID | None = None
    idempotency_key: str | None = Field(default=None, max_length=200)


class DeploymentRunCreate(Model):
    name: Name | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    scheduled_start: datetime | None = None
    tags: list[str] = Field(default_factory=list)
    idempotency_key: str | None = Field(default=None, max_length=200)


class StateTransition(Model):
    """Ask to move a run to ``state``.

    ``idempotency_key``: a retry of the same transition answers the current run instead of 409.
    ``lease_token``: the token of the lease the caller holds (engines and workers); every
    transition of a leased run needs it.
    ``expected_state``: the state the caller decided from; when the run is in another one
    by now, the answer is 409 with ``current_state`` (a compare-and-set: decide again).
    ``crash_retry``: for CRASHED, whether the deployment's ``crash_retries`` may start a
    new attempt; false when the cause would fail the same way again (a missing image).
    """

    state: StateType
    message: str | None = None
    idempotency_key: str | None = Field(default=None, max_length=200)
    lease_token: uuid.UUID | None = None
    expected_state: StateType | None = None
    crash_retry: bool = True
    result: Any = None


class FlowRun(Response):
    id: uuid.UUID
    name: str
    flow_id: uuid.UUID
    flow_name: str
    deployment_id: uuid.UUID | None
    deployment_name: str | None
    work_pool_name: str | None
    work_queue_name: str | None
    parent_flow_run_id: uuid.UUID | None
    parameters: dict[str, Any]
    job_variables: dict[str, Any]
    tags: list[str]
    state: StateType
    state_message: str | None
    scheduled_start: datetime | None
    start_time: datetime | None
    end_time: datetime | None
    created: datetime
    attempt: int
    worker_name: str | None
    infrastructure_id: str | None
    lease_expires: datetime | None
    idempotency_key: str | None
    result: Any = None
    # SCHEDULED and past its start by more than the server's late threshold
    late: bool = False


class FlowRunStarted(FlowRun):
    """A run created directly in RUNNING: the caller holds its lease."""

    lease_token: uuid.UUID | None


class FlowRunUpdate(Model):
    """What the process holding a run records about it; ``lease_token`` is its lease."""

    infrastructure_id: str | None = None
    lease_token: uuid.UUID | None = None


# ---------------------------------------------------------------- task runs and logs


class TaskRunRecord(Model):
    """One record per task run, sent once it is final (upserted by id)."""

    id: uuid.UUID
    flow_run_id: uuid.UUID
    name: str = Field(min_length=1, max_length=200)
    task_key: str = Field(default="", max_length=500)
    state: StateType
    start_time: datetime | None = None
    end_time: datetime | None = None
    cache_key: str | None = None
    cached: bool = False
    attempts: int = 1
    error: str | None = None
    tags: list[str] = Field(default_factory=list)


class TaskRun(Response):
    id: uuid.UUID
    flow_run_id: uuid.UUID
    name: str
    task_key: str
    state: StateType
    start_time: datetime | None
    end_time: datetime | None
    cache_key: str | None
    cached: bool
    attempts: int
    error: str | None
    tags: list[str]


class LogCreate(Model):
    flow_run_id: uuid.UUID
    task_run_id: uuid.UUID | None = None
    level: int = 20
    name: str = ""
    message: str
    timestamp: datetime = Field(default_factory=utcnow)


class Log(Response):
    id: int
    flow_run_id: uuid.UUID
    task_run_id: uuid.UUID | None
    level: int
    name: str
    message: str
    timestamp: datetime


# ---------------------------------------------------------------- pools, queues, workers


class WorkPoolCreate(Model):
    name: PoolName
    type: str = Field(min_length=1)
    description: str | None = None
    base_job_template: dict[str, Any] | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False


class WorkPoolUpdate(Model):
    description: str | None = None
    base_job_template: dict[str, Any] | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    clear_concurrency_limit: bool = False
    paused: bool | None = None


class WorkPool(Response):
    id: uuid.UUID
    name: str
    type: str
    description: str | None
    base_job_template: dict[str, Any]
    concurrency_limit: int | None
    paused: bool
    status: PoolStatus
    last_polled: datetime | None
    created: datetime


class WorkQueueCreate(Model):
    name: Name
    description: str | None = None
    priority: int | None = Field(default=None, ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False


class WorkQueueUpdate(Model):
    description: str | None = None
    priority: int | None = Field(default=None, ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    clear_concurrency_limit: bool = False
    paused: bool | None = None


class WorkQueue(Response):
    id: uuid.UUID
    name: str
    work_pool_name: str
    description: str | None
    priority: int
    concurrency_limit: int | None
    paused: bool
    created: datetime


class Worker(Response):
    id: uuid.UUID
    name: str
    work_pool_name: str | None
    type: str
    version: str | None
    status: WorkerStatus
    last_heartbeat: datetime
    created: datetime


class WorkerType(Response):
    type: str
    description: str
    base_job_template: dict[str, Any]


# ---------------------------------------------------------------- dispatch


class WorkerHeartbeat(Model):
    """A worker (``work_pool_name`` set) or a serve process (``deployment_ids`` set) is alive.

    ``run_ids``: the PENDING runs it holds, whose leases the heartbeat renews.
    """

    name: Name
    work_pool_name: PoolName | None = None
    deployment_ids: list[uuid.UUID] = Field(default_factory=list)
    type: str = Field(default="process", min_length=1)
    version: str | None = None
    run_ids: list[uuid.UUID] = Field(default_factory=list)


class HeartbeatAnswer(Response):
    worker_id: uuid.UUID
    # runs of this worker asked to cancel: stop their infrastructure
    cancel: list[uuid.UUID]
    # runs it named that it no longer holds (crashed, handed to another attempt, gone)
    lost: list[uuid.UUID]


class ClaimRequest(Model):
    """Long-poll for due runs. Answers at once when some are due, else waits up to ``wait``."""

    worker_name: Name
    work_pool_name: PoolName | None = None
    work_queue_names: list[str] = Field(default_factory=list)
    deployment_ids: list[uuid.UUID] = Field(default_factory=list)
    limit: int = Field(default=1, ge=1, le=50)
    wait: float = Field(default=0.0, ge=0.0, le=300.0)


class ClaimedRun(Response):
    """A claimed run and how to start it.

    ``base_job_template`` is its pool's, ``job_variables`` the deployment's merged with the
    run's. The worker renders them with :func:`dockyard.job_templates.configuration`: only
    the template's own ``{{ $NAME }}`` placeholders read the worker's environment, never
    text inside a value a deployment or a run supplied.
    """

    flow_run: FlowRun
    lease_token: uuid.UUID
    base_job_template: dict[str, Any]
    job_variables: dict[str, Any]
    deployment_path: str | None = None


class LeaseRenewal(Model):
    lease_token: uuid.UUID
