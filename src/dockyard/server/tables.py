"""Database tables (SQLAlchemy 2 ORM). Changes to these go through a migration."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite a datetime is text, "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's own format, so
    # databases written either way read the same). These write and read it in one step with
    # the C datetime methods; the general path costs a few microseconds more per value, which
    # adds up over a batch of task runs.

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            offset = value.utcoffset()
            if offset is None:
                raise ValueError("naive datetime given to the database")
            if offset:
                value = value.astimezone(UTC)
            return value.isoformat(" ", "microseconds")[:26]  # without its "+00:00"

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def process(value: str | None) -> datetime | None:
            if value is None:
                return None
            return datetime.fromisoformat(value).replace(tzinfo=UTC)

        return process


class JSONType(TypeDecorator[Any]):
    """JSONB on PostgreSQL, JSON elsewhere; the PostgreSQL dialect is imported only there."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def insert_for(dialect_name: str) -> Any:
    """The ``insert`` of the dialect, for its ``ON CONFLICT`` clauses (SQLite or PostgreSQL)."""
    if dialect_name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSONType, uuid.UUID: Uuid}


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class FlowRow(Base):
    __tablename__ = "flows"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # name with '_' turned into '-': lookups accept either spelling
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created: Mapped[datetime] = _created()


class WorkPoolRow(Base):
    __tablename__ = "work_pools"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(100), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    base_job_template: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    last_polled: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # the readiness last announced by an event (READY, NOT_READY): each change is emitted once
    status: Mapped[str] = mapped_column(String(20), default="NOT_READY", server_default="NOT_READY")
    created: Mapped[datetime] = _created()


class WorkQueueRow(Base):
    __tablename__ = "work_queues"
    __table_args__ = (UniqueConstraint("work_pool_id", "name"),)
    id: Mapped[uuid.UUID] = _id()
    work_pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("work_pools.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer)
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = _created()


class WorkerRow(Base):
    """A worker of a pool, or a serve process (``work_pool_id`` empty)."""

    __tablename__ = "workers"
    __table_args__ = (UniqueConstraint("work_pool_id", "name"),)
    id: Mapped[uuid.UUID] = _id()
    work_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("work_pools.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(100))
    version: Mapped[str | None] = mapped_column(String(50))
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the readiness last announced by an event (READY, NOT_READY): each change is emitted once
    status: Mapped[str] = mapped_column(String(20), default="NOT_READY", server_default="NOT_READY")
    created: Mapped[datetime] = _created()


class DeploymentRow(Base):
    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("flow_id", "name"),)
    id: Mapped[uuid.UUID] = _id()
    flow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flows.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    entrypoint: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    parameter_schema: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    work_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("work_pools.id", ondelete="SET NULL")
    )
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("work_queues.id", ondelete="SET NULL")
    )
    job_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    image: Mapped[str | None] = mapped_column(Text)
    pull_steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    concurrency_limit: Mapped[int | None] = mapped_column(Integer)
    crash_retries: Mapped[int] = mapped_column(Integer, default=0)
    catchup: Mapped[str] = mapped_column(String(10), default="latest", server_default="latest")
    max_lateness_seconds: Mapped[float | None] = mapped_column(Float)
    # the serve process that runs this deployment (no pool)
    serve_worker_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workers.id", ondelete="SET NULL")
    )
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ScheduleRow(Base):
    __tablename__ = "deployment_schedules"
    id: Mapped[uuid.UUID] = _id()
    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    cron: Mapped[str | None] = mapped_column(String(200))
    interval: Mapped[float | None] = mapped_column(Float)
    anchor_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rrule: Mapped[str | None] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(String(100), default="UTC")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # why the scheduler could not make runs from it on its last pass (it skips it meanwhile)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created()


class FlowRunRow(Base):
    """A flow run. Every ORM write of one is a compare-and-set on ``version``.

    SQLAlchemy adds ``WHERE version = <the version read>`` to each UPDATE and DELETE of a
    run and bumps it: a write decided from a state that another transaction changed since
    matches no row and raises ``StaleDataError`` instead of overwriting (see
    ``orchestration``).
    """

    __tablename__ = "flow_runs"
    __table_args__ = (
        # a key names one run of a deployment (or, for runs of no deployment, of a flow)
        UniqueConstraint("idempotency_scope", "idempotency_key"),
        Index("ix_flow_runs_due", "state", "scheduled_start"),
        Index("ix_flow_runs_created", "created"),
        # a pool's runs in some states (live, scheduled), and those that ended since a moment
        Index("ix_flow_runs_pool_state", "work_pool_id", "state", "end_time"),
    )
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200))
    flow_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flows.id", ondelete="CASCADE"), index=True
    )
    # indexed first in ix_flow_runs_deployment_when and ix_flow_runs_pool_state
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL")
    )
    work_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("work_pools.id", ondelete="SET NULL")
    )
    work_queue_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("work_queues.id", ondelete="SET NULL")
    )
    # indexed: a run page's subflows, and the SET NULL when a parent run is deleted
    parent_flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="SET NULL"), index=True
    )
    # the schedule that made this run (its not-started runs go when the schedule changes)
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deployment_schedules.id", ondelete="SET NULL"), index=True
    )
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    job_variables: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    state: Mapped[str] = mapped_column(String(20))
    state_message: Mapped[str | None] = mapped_column(Text)
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    worker_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("workers.id", ondelete="SET NULL")
    )
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    lease_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    infrastructure_id: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # the deployment's id, or the flow's for a run of no deployment; kept when either goes
    idempotency_scope: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # paused and suspended runs (``models.pausing``): the key of the pause in progress (or
    # of the last one), when it fails unresumed, whether its process exited (suspended: no
    # lease, no slot), the JSON schema its input must fit, and the input each resumed pause
    # was given, by key (a repeated pause with a resumed key answers its input at once)
    pause_key: Mapped[str | None] = mapped_column(String(200))
    pause_expires: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    pause_input_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    run_inputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, server_default="{}")
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    created: Mapped[datetime] = _created()

    __mapper_args__ = {"version_id_col": version}


def run_time() -> Any:
    """A run's time as the UI lists, counts and charts runs (``ui.queries.when``): its start,
    else its end (a run cancelled before its start), else when it is due, else its creation.

    Indexed as this very expression (below): a query reads a time range off an index only
    when it says it the same way. SQLite cannot reflect an index on an expression, so a
    later migration that copies ``flow_runs`` in batch mode must create these three again.
    """
    return func.coalesce(
        FlowRunRow.start_time, FlowRunRow.end_time, FlowRunRow.scheduled_start, FlowRunRow.created
    )


Index("ix_flow_runs_when", run_time())
Index("ix_flow_runs_deployment_when", FlowRunRow.deployment_id, run_time())
Index("ix_flow_runs_state_when", FlowRunRow.state, run_time())


class FlowRunStateRow(Base):
    """Every transition of a run, with its time (the UI's timeline)."""

    __tablename__ = "flow_run_states"
    __table_args__ = (UniqueConstraint("flow_run_id", "idempotency_key"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(20))
    message: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))


class TaskRunRow(Base):
    __tablename__ = "task_runs"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    flow_run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    task_key: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cache_key: Mapped[str | None] = mapped_column(Text)
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)


class LogRow(Base):
    __tablename__ = "logs"
    __table_args__ = (Index("ix_logs_run_id", "flow_run_id", "id"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    flow_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flow_runs.id", ondelete="CASCADE"))
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    level: Mapped[int] = mapped_column(Integer, default=20)
    name: Mapped[str] = mapped_column(String(200), default="")
    message: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VariableRow(Base):
    """A named JSON value that flows read at run time (``dockyard.variables``)."""

    __tablename__ = "variables"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # any JSON value; JSON null is stored as such, not as SQL NULL
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SecretRow(Base):
    """A named value stored encrypted (``dockyard.blocks.system.Secret``)."""

    __tablename__ = "secrets"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # a Fernet token (URL-safe base64 text) of the value's JSON, under the server's key
    ciphertext: Mapped[str] = mapped_column(Text)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# ----------------------------------------------------------------------------- artifacts


class ArtifactRow(Base):
    """What a run published for people (``dockyard.artifacts``). Rows of one key are its
    versions, the newest (by ``created``) the key's latest; a row without a key stands alone.
    A deleted flow run leaves its artifacts, unlinked."""

    __tablename__ = "artifacts"
    __table_args__ = (
        Index("ix_artifacts_key_created", "key", "created"),
        Index("ix_artifacts_created", "created"),
    )
    id: Mapped[uuid.UUID] = _id()
    key: Mapped[str | None] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    data: Mapped[Any] = mapped_column(JSONType, nullable=True)
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("flow_runs.id", ondelete="SET NULL"), index=True
    )
    # no foreign key: a task run's row is written when the run ends, after its artifacts
    task_run_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# ---------------------------------------------------------------- global concurrency limits


class ConcurrencyLimitRow(Base):
    """A global concurrency limit: at most ``limit`` slots in use at once
    (``dockyard.concurrency``). Slots in use are those of its live leases, plus the slots
    rate limits took, which decay at ``slot_decay_per_second`` (``decaying_slots`` as of
    ``decayed_at``)."""

    __tablename__ = "concurrency_limits"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    limit: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    slot_decay_per_second: Mapped[float] = mapped_column(Float, default=0.0)
    decaying_slots: Mapped[float] = mapped_column(Float, default=0.0)
    decayed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ConcurrencyLeaseRow(Base):
    """Slots of one limit held under one lease until ``expires`` (the holder renews it). One
    lease (``id``) may hold slots of several limits: a row per limit."""

    __tablename__ = "concurrency_leases"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    limit_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("concurrency_limits.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    slots: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str | None] = mapped_column(String(200))
    created: Mapped[datetime] = _created()
    expires: Mapped[datetime] = mapped_column(UTCDateTime)


# ----------------------------------------------------------------- paused and suspended runs


# ------------------------------------------------------------------- events and automations


class EventRow(Base):
    """Something that happened (``dockyard.events``): a flow run's state change, a pool or a
    worker becoming ready or not, or an event someone emitted.

    ``seq`` is the order rows were written in; ``position`` the order readers get them in,
    given by the evaluator once a row is visible (``server.automations``): on PostgreSQL a
    row with a lower ``seq`` can commit after one with a higher, a position never does. An
    event without a position has not been evaluated yet.
    """

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_occurred", "occurred"),)
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    occurred: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event: Mapped[str] = mapped_column(String(256))
    resource_id: Mapped[str] = mapped_column(String(512), index=True)
    resource: Mapped[dict[str, Any]] = mapped_column(JSONType)
    related: Mapped[list[dict[str, str]]] = mapped_column(JSONType, default=list)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    position: Mapped[int | None] = mapped_column(BigInteger, unique=True)


class AutomationRow(Base):
    """A trigger and the actions it starts (``dockyard.automations``)."""

    __tablename__ = "automations"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSONType)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    # the deployment whose trigger this is (``flow.deploy(triggers=...)``): it goes with it
    deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AutomationBucketRow(Base):
    """The count of a threshold trigger's window, one per value of its ``for_each`` labels
    (``key``: their hash)."""

    __tablename__ = "automation_buckets"
    __table_args__ = (UniqueConstraint("automation_id", "key"),)
    id: Mapped[uuid.UUID] = _id()
    automation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(64))
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer, default=0)
    fired: Mapped[bool] = mapped_column(Boolean, default=False)


class AutomationActionRow(Base):
    """One action of one firing of an automation: the outbox its delivery works through.

    One row per (automation, the event that fired it, action index): the unique constraint
    is what makes a firing act once even if two evaluators got that far.
    """

    __tablename__ = "automation_actions"
    __table_args__ = (
        UniqueConstraint("automation_id", "event_id", "action_index"),
        Index("ix_automation_actions_due", "status", "next_attempt"),
    )
    id: Mapped[uuid.UUID] = _id()
    automation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("automations.id", ondelete="CASCADE")
    )
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    action_index: Mapped[int] = mapped_column(Integer)
    action: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # what the action acts on and its webhook's body reads: the event, the automation's name
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # when a delivery may take it next; a delivery that claims it moves this one lease ahead
    next_attempt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = _created()
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


# ------------------------------------------------------------------------------- api keys


class ApiKeyRow(Base):
    """An API key: its name, scope and the HMAC of its secret part, never the secret itself.

    A key reads ``dk_<id hex>_<secret>``; the server finds its row by ``id`` (the primary
    key: one indexed read) and compares ``digest`` in constant time.
    """

    __tablename__ = "api_keys"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(255), unique=True)
    scope: Mapped[str] = mapped_column(String(20))
    digest: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = _created()
    # written at most once a minute per key, not on every request
    last_used: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[datetime | None] = mapped_column(UTCDateTime)
