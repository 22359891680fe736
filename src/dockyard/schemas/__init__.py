"""Request and response models shared by the client and the server.

Field names are snake_case in Python and on the wire. Times are timezone-aware UTC.
"""

import enum
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from dockyard import _names

# re-exported: the state sets are defined once, in a module the CLI reads without pydantic
from dockyard._states import ACTIVE_STATES as ACTIVE_STATES
from dockyard._states import FINAL_STATES as FINAL_STATES

# re-exported: the value rules live where clients read them without pydantic
from dockyard._values import INT32_MAX as INT32_MAX
from dockyard._values import INT64_MAX as INT64_MAX
from dockyard._values import JSON_MAX_DEPTH as JSON_MAX_DEPTH
from dockyard._values import TAG_MAX_LENGTH as TAG_MAX_LENGTH
from dockyard._values import TEXT_MAX_LENGTH as TEXT_MAX_LENGTH
from dockyard._values import VARIABLE_VALUE_MAX_BYTES as VARIABLE_VALUE_MAX_BYTES
from dockyard._values import json_problem as json_problem
from dockyard._values import text_problem as text_problem
from dockyard._values import variable_value_problem as variable_value_problem

API_VERSION = "1"


def _name(value: Any) -> Any:
    problem = _names.name_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


def _pool_name(value: Any) -> Any:
    problem = _names.pool_name_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


# Every name in a request is one of these two. The rule lives in dockyard._names, where code
# that must not load pydantic reads it too; the pattern shows OpenAPI readers the same rule.
# The check is a BeforeValidator after the Field, so it runs first: its message says what a
# name is, where pydantic would only call a lone surrogate "unparsable raw data".
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=_names.MAX_NAME,
        json_schema_extra={"pattern": _names.NAME_PATTERN},
    ),
    BeforeValidator(_name),
]
PoolName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=_names.MAX_POOL_NAME,
        json_schema_extra={"pattern": _names.POOL_NAME_PATTERN},
    ),
    BeforeValidator(_pool_name),
]


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- values
#
# What the server stores is what both databases hold: a request beyond it is refused with 422
# naming the field, never stored on one database and a 500 on the other.

# A request's integers, numbers and flags are of the JSON type the schema says, strictly:
# pydantic would also take ``true`` for 1, ``"1"`` for true and ``"2.5"`` for 2.5, which the
# OpenAPI schema does not allow. (A query parameter, which is text, opts out with
# ``Query(strict=False)``.)
Int32 = Annotated[int, Field(strict=True, ge=-INT32_MAX - 1, le=INT32_MAX)]
NonNegativeInt32 = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]
PositiveInt32 = Annotated[int, Field(strict=True, ge=1, le=INT32_MAX)]
NonNegativeInt64 = Annotated[int, Field(strict=True, ge=0, le=INT64_MAX)]
Flag = Annotated[bool, Field(strict=True)]


def _text(value: Any) -> Any:
    if isinstance(value, str) and (problem := text_problem(value)):
        raise ValueError(problem)
    return value


def _json(value: Any) -> Any:
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def _time(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIME.match(value)):
        return value
    raise ValueError("must be a time as ISO 8601 text, e.g. 2030-01-31T09:00:00Z")


# Every string a request stores follows TEXT and has the max_length of its column (a Text
# column's: TEXT_MAX_LENGTH), as ``Annotated[str, Field(max_length=...), TEXT]``; every
# free-form JSON value is Json. TEXT comes after the Field so that it runs first: pydantic
# would call a lone surrogate "unparsable raw data", and count the length before the rule.
TEXT = BeforeValidator(_text)
LongText = Annotated[str, Field(max_length=TEXT_MAX_LENGTH), TEXT]
Tag = Annotated[str, Field(max_length=TAG_MAX_LENGTH), TEXT]
Json = Annotated[Any, AfterValidator(_json)]
JsonObject = Annotated[dict[str, Any], AfterValidator(_json)]
# A time in a request is ISO 8601 text (``date-time`` in the schema): pydantic would read a
# number, or text of digits, as seconds since 1970.
TIME = BeforeValidator(_time)
# a time with its offset (no guess at what a time without one meant), that is a time of
# years 1 to 9999 once moved to UTC, as the server stores it
Timestamp = Annotated[
    AwareDatetime,
    Field(ge=datetime.min.replace(tzinfo=UTC), le=datetime.max.replace(tzinfo=UTC)),
    TIME,
]
# a duration in seconds
Seconds = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]


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
    PAUSED = "PAUSED"


class PoolStatus(enum.StrEnum):
    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkerStatus(enum.StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid", defer_build=True)


class Response(BaseModel):
    model_config = ConfigDict(from_attributes=True, defer_build=True)


# ---------------------------------------------------------------- server


class ServerVersion(Response):
    server_version: str
    api_version: str
    # how long a lease lasts after its last renewal on this server (the engine renews and
    # waits by it, whatever its own machine's settings say)
    lease_seconds: float | None = None


class ErrorBody(Response):
    """The body of every error answer (4xx): ``detail`` says what was wrong and what to do."""

    detail: str
    field: str | None = None
    hint: str | None = None
    current_state: StateType | None = None
    suggestions: list[str] | None = None


class FieldError(Response):
    field: str
    message: str


class ValidationErrorBody(ErrorBody):
    """The body of a 422: ``field`` names the (first) value refused, ``errors`` every one."""

    field: str
    errors: list[FieldError]


# ---------------------------------------------------------------- flows


class FlowCreate(Model):
    name: Name
    description: LongText | None = None
    tags: list[Tag] = Field(default_factory=list)


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
    COUNT. An ``anchor_date`` without a zone is read in ``timezone``; one with an offset is
    that instant (stored in UTC). An anchor that is not a time of years 1 to 9999 both in UTC
    and in ``timezone`` is refused (``schedules.anchor_date``).
    """

    cron: Annotated[str, Field(max_length=200), TEXT] | None = None
    interval: Seconds | None = None
    anchor_date: Annotated[datetime, TIME] | None = None
    rrule: Annotated[str, Field(max_length=2000), TEXT] | None = None
    timezone: Annotated[str, Field(max_length=100), TEXT] = "UTC"
    active: Flag = True


class ScheduleUpdate(Model):
    active: Flag | None = None


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
    entrypoint: LongText | None = None
    path: LongText | None = None
    description: LongText | None = None
    version: Annotated[str, Field(max_length=200), TEXT] | None = None
    tags: list[Tag] = Field(default_factory=list)
    parameters: JsonObject = Field(default_factory=dict)
    parameter_schema: JsonObject = Field(default_factory=dict)
    work_pool_name: PoolName | None = None
    work_queue_name: Name | None = None
    job_variables: JsonObject = Field(default_factory=dict)
    image: LongText | None = None
    pull_steps: list[JsonObject] = Field(default_factory=list)
    paused: Flag = False
    concurrency_limit: PositiveInt32 | None = None
    crash_retries: NonNegativeInt32 = 0
    # None leaves a deployment's schedules as they are; a list replaces them
    schedules: list[ScheduleCreate] | None = None
    catchup: CatchUp = CatchUp.LATEST
    max_lateness_seconds: Seconds | None = None


class DeploymentUpdate(Model):
    description: LongText | None = None
    version: Annotated[str, Field(max_length=200), TEXT] | None = None
    tags: list[Tag] | None = None
    parameters: JsonObject | None = None
    work_queue_name: Name | None = None
    job_variables: JsonObject | None = None
    paused: Flag | None = None
    concurrency_limit: PositiveInt32 | None = None
    crash_retries: NonNegativeInt32 | None = None
    catchup: CatchUp | None = None
    max_lateness_seconds: Seconds | None = None


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
    parameters: JsonObject = Field(default_factory=dict)
    state: StateType = StateType.RUNNING
    tags: list[Tag] = Field(default_factory=list)
    parent_flow_run_id: uuid.UUID | None = None
    idempotency_key: Annotated[str, Field(max_length=200), TEXT] | None = None


class DeploymentRunCreate(Model):
    name: Name | None = None
    parameters: JsonObject = Field(default_factory=dict)
    job_variables: JsonObject = Field(default_factory=dict)
    scheduled_start: Timestamp | None = None
    tags: list[Tag] = Field(default_factory=list)
    idempotency_key: Annotated[str, Field(max_length=200), TEXT] | None = None


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
    message: LongText | None = None
    idempotency_key: Annotated[str, Field(max_length=200), TEXT] | None = None
    lease_token: uuid.UUID | None = None
    expected_state: StateType | None = None
    crash_retry: Flag = True
    result: Json = None


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
    """What the process holding a run records about it; ``lease_token`` is its lease.

    ``name``: the name the flow gives its run (``flow_run_name``), set by the engine.
    """

    infrastructure_id: LongText | None = None
    name: Name | None = None
    lease_token: uuid.UUID | None = None


# ---------------------------------------------------------------- task runs and logs


class TaskRunRecord(Model):
    """One record per task run, sent once it is final (upserted by id)."""

    id: uuid.UUID
    flow_run_id: uuid.UUID
    name: Annotated[str, Field(min_length=1, max_length=200), TEXT]
    task_key: Annotated[str, Field(max_length=500), TEXT] = ""
    state: StateType
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    cache_key: LongText | None = None
    cached: Flag = False
    attempts: NonNegativeInt32 = 1
    error: LongText | None = None
    tags: list[Tag] = Field(default_factory=list)


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
    level: Int32 = 20
    name: Annotated[str, Field(max_length=200), TEXT] = ""
    message: LongText
    timestamp: Timestamp = Field(default_factory=utcnow)


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
    type: Annotated[str, Field(min_length=1, max_length=100), TEXT]
    description: LongText | None = None
    base_job_template: JsonObject | None = None
    concurrency_limit: NonNegativeInt32 | None = None
    paused: Flag = False


class WorkPoolUpdate(Model):
    description: LongText | None = None
    base_job_template: JsonObject | None = None
    concurrency_limit: NonNegativeInt32 | None = None
    clear_concurrency_limit: Flag = False
    paused: Flag | None = None


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
    description: LongText | None = None
    priority: PositiveInt32 | None = None
    concurrency_limit: NonNegativeInt32 | None = None
    paused: Flag = False


class WorkQueueUpdate(Model):
    description: LongText | None = None
    priority: PositiveInt32 | None = None
    concurrency_limit: NonNegativeInt32 | None = None
    clear_concurrency_limit: Flag = False
    paused: Flag | None = None


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
    type: Annotated[str, Field(min_length=1, max_length=100), TEXT] = "process"
    version: Annotated[str, Field(max_length=50), TEXT] | None = None
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
    work_queue_names: list[Name] = Field(default_factory=list)
    deployment_ids: list[uuid.UUID] = Field(default_factory=list)
    limit: int = Field(default=1, strict=True, ge=1, le=50)
    wait: float = Field(default=0.0, strict=True, ge=0.0, le=300.0, allow_inf_nan=False)


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
    # the API key the run's engine gets as DOCKYARD_API_KEY: of scope runner, good for this
    # run only (docs/api-keys.md); None when the server needs no keys
    runner_key: str | None = None


class LeaseRenewal(Model):
    lease_token: uuid.UUID


# ---------------------------------------------------------------- variables


def _variable_name(value: Any) -> Any:
    problem = _names.variable_name_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


def _variable_value(value: Any) -> Any:
    problem = variable_value_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A variable's name has its own rule, stricter than Name (see dockyard._names).
VariableName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=_names.MAX_VARIABLE_NAME,
        json_schema_extra={"pattern": _names.VARIABLE_NAME_PATTERN},
    ),
    BeforeValidator(_variable_name),
]
# Any JSON value, null included, at most VARIABLE_VALUE_MAX_BYTES of compact JSON text.
VariableValue = Annotated[Any, AfterValidator(_variable_value)]


class VariableCreate(Model):
    """A new variable: a named JSON value (409 when the name is taken)."""

    name: VariableName
    value: VariableValue
    tags: list[Tag] = Field(default_factory=list)


class VariableSet(Model):
    """A variable's whole content, for ``PUT /variables/name/{name}``: it is created, or
    replaced (its tags too)."""

    value: VariableValue
    tags: list[Tag] = Field(default_factory=list)


class VariableUpdate(Model):
    """Change a variable: the fields sent are set (``"value": null`` sets the value null)."""

    value: VariableValue = None
    tags: list[Tag] | None = None


class Variable(Response):
    id: uuid.UUID
    name: str
    value: Any
    tags: list[str]
    created: datetime
    updated: datetime


# ---------------------------------------------------------------- secrets


def _secret_value(value: Any) -> Any:
    # the message never quotes the value: a 422 must not echo a secret
    if not isinstance(value, str | dict | list):
        raise ValueError("must be a string, or a JSON object or array")
    problem = variable_value_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A string, or a JSON object or array, at most VARIABLE_VALUE_MAX_BYTES of compact JSON text.
SecretValue = Annotated[
    str | dict[str, Any] | list[Any],
    Field(json_schema_extra={"format": "password", "writeOnly": True}),
    BeforeValidator(_secret_value),
]


class SecretCreate(Model):
    """A new secret: a named value the server stores encrypted (409 when the name is taken).
    Its name follows the rule of a variable's."""

    name: VariableName
    value: SecretValue


class SecretSet(Model):
    """A secret's new value, for ``PUT /secrets/name/{name}``: it is created, or replaced."""

    value: SecretValue


class Secret(Response):
    """A secret without its value: only ``.../value`` answers that."""

    id: uuid.UUID
    name: str
    created: datetime
    updated: datetime


class SecretWithValue(Secret):
    value: str | dict[str, Any] | list[Any]


# ---------------------------------------------------------------- pause and resume

# A pause's key: the engine makes one per pause call of a run (``pause-1``, ...) unless the
# flow gives its own.
PauseKey = Annotated[str, Field(min_length=1, max_length=200), TEXT]


class PauseRequest(Model):
    """Pause a RUNNING run (``POST /flow-runs/{id}/pause``).

    ``lease_token``: the engine's, to pause its own run; without it only ``suspend`` is
    allowed (another process asks the run to stop: its engine is fenced off).
    ``timeout``: seconds until the pause fails the run unresumed. ``input_schema``: the
    JSON schema that a resume's ``run_input`` must fit. ``suspend``: the run's process exits
    and gives back its lease and slots; a resume schedules the run again.
    """

    key: PauseKey
    timeout: PositiveInt32 = 3600
    lease_token: uuid.UUID | None = None
    input_schema: JsonObject | None = None
    suspend: Flag = False


class ResumeRequest(Model):
    """Resume a PAUSED run, with the input its pause waits for (checked against its
    ``input_schema``; 422 naming the field when it does not fit)."""

    run_input: JsonObject | None = None


class FlowRunPause(Response):
    """A run's pause: the one in progress (``state`` PAUSED), else the last one.

    ``resumed``: whether the pause asked about (by key) was resumed; ``run_input`` is then
    the input it was given.
    """

    flow_run_id: uuid.UUID
    state: StateType
    key: str | None
    suspended: bool
    expires: datetime | None
    input_schema: dict[str, Any] | None
    resumed: bool = False
    run_input: Any = None
