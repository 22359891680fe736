"""Request and response models of events and automations (``/api/events``, ``/api/automations``).

An event names what happened (``dockyard.flow-run.Failed``), the resource it happened to (a
dict of labels with at least ``dockyard.resource.id``), related resources (label dicts with a
``dockyard.resource.role``) and a JSON payload. An automation is a trigger (which events,
how many within how long) and the actions it starts. The public classes of
``dockyard.events``, ``dockyard.events.actions`` and ``dockyard.automations`` are these.
"""

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator

from dockyard.schemas import (
    TEXT,
    Flag,
    Json,
    JsonObject,
    LongText,
    Model,
    Name,
    PositiveInt32,
    Response,
)

RESOURCE_ID = "dockyard.resource.id"
RESOURCE_NAME = "dockyard.resource.name"
RESOURCE_ROLE = "dockyard.resource.role"
# the server's own events start with this; an emitted event may not
RESERVED_PREFIX = "dockyard."
MAX_LABELS = 50
MAX_RELATED = 50
MAX_PAYLOAD_BYTES = 64 * 1024
MAX_WITHIN = 366 * 24 * 3600.0


def _event_name(value: Any) -> Any:
    if isinstance(value, str) and (not value.isprintable() or value != value.strip()):
        raise ValueError("must be printable text without leading or trailing whitespace")
    return value


EventName = Annotated[str, Field(min_length=1, max_length=256), TEXT, AfterValidator(_event_name)]
LabelKey = Annotated[str, Field(min_length=1, max_length=256), TEXT]
LabelValue = Annotated[str, Field(max_length=1024), TEXT]


def _labels(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"has {len(value)} labels, more than {MAX_LABELS}")
    return value


Labels = Annotated[dict[LabelKey, LabelValue], AfterValidator(_labels)]


def _resource(value: dict[str, str]) -> dict[str, str]:
    if not value.get(RESOURCE_ID):
        raise ValueError(
            f"must have the label '{RESOURCE_ID}' (what the event is about, e.g. "
            "'acme.table.orders')"
        )
    return value


def _payload(value: dict[str, Any]) -> dict[str, Any]:
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise ValueError(f"is {size} bytes of JSON, more than {MAX_PAYLOAD_BYTES}")
    return value


def _not_reserved(value: str) -> str:
    if value.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"names starting with '{RESERVED_PREFIX}' are the server's own; name yours after "
            "your system, e.g. 'acme.table.refreshed'"
        )
    return value


class EventCreate(Model):
    """An event to emit (``POST /events``). ``id`` makes a retry of the same event harmless:
    an id already stored is answered with the event stored."""

    event: Annotated[EventName, AfterValidator(_not_reserved)]
    resource: Annotated[Labels, AfterValidator(_resource)]
    related: Annotated[list[Labels], Field(max_length=MAX_RELATED)] = Field(default_factory=list)
    payload: Annotated[JsonObject, AfterValidator(_payload)] = Field(default_factory=dict)
    id: uuid.UUID | None = None


class Event(Response):
    """An event as stored. ``position`` orders events for readers (``after=`` cursors)."""

    id: uuid.UUID
    occurred: datetime
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]]
    payload: dict[str, Any]
    position: int | None = None


class EventPage(Response):
    """Events, and the cursor to pass as ``after`` to get those that come next."""

    events: list[Event]
    cursor: int


# ---------------------------------------------------------------- triggers


Pattern = Annotated[str, Field(min_length=1, max_length=1024), TEXT]
Match = dict[LabelKey, Pattern | list[Pattern]]


def _sorted_set(value: list[str]) -> list[str]:
    return sorted(set(value))


def _seconds(value: Any) -> Any:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _related(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


class EventTrigger(Model):
    """Which events fire an automation.

    ``expect``: event names (a trailing ``*`` matches any end; none: every event).
    ``match``: labels of the event's resource, each a value or a list of values (``*`` at
    the end matches any end). ``match_related``: labels one related resource must all have
    (a list of such dicts: each must be met by some related resource). ``threshold``
    events within ``within`` seconds fire it, at most once per window; ``for_each`` labels
    (a resource label, or ``related:ROLE:LABEL``) count apart for each of their values.
    """

    type: Literal["event"] = "event"
    expect: Annotated[list[Pattern], AfterValidator(_sorted_set)] = Field(default_factory=list)
    match: Match = Field(default_factory=dict)
    match_related: Annotated[list[Match], BeforeValidator(_related)] = Field(default_factory=list)
    for_each: Annotated[list[LabelKey], AfterValidator(_sorted_set)] = Field(default_factory=list)
    threshold: PositiveInt32 = 1
    within: Annotated[
        float, Field(ge=0, le=MAX_WITHIN, validate_default=True), BeforeValidator(_seconds)
    ] = 0.0

    @field_validator("within")
    @classmethod
    def _window(cls, within: float, info: ValidationInfo) -> float:
        threshold = info.data.get("threshold", 1)
        if threshold > 1 and within <= 0:
            raise ValueError(
                f"a threshold of {threshold} needs a window: set within to the seconds the "
                "events must come within, e.g. 600"
            )
        return within


class DeploymentEventTrigger(EventTrigger):
    """A trigger that runs the deployment it is given to (``flow.deploy(triggers=[...])``)
    with ``parameters``. ``name``: its automation's name (default: made from the
    deployment's)."""

    name: Name | None = None
    enabled: Flag = True
    parameters: JsonObject = Field(default_factory=dict)

    def event_trigger(self) -> EventTrigger:
        """The trigger alone, without what the deployment's automation takes."""
        return EventTrigger(**self.model_dump(exclude={"name", "enabled", "parameters"}))


# ---------------------------------------------------------------- actions


def _http_url(value: Any) -> Any:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("must be a URL of visible ASCII characters (percent-encode the others)")
    return value


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not an HTTP header name")
        if not text.isascii() or not text.isprintable():
            raise ValueError(f"the value of header {name!r} must be printable ASCII text")
    return value


class CallWebhook(Model):
    """POST JSON to ``url``. ``body``: the JSON to send, its strings' ``{{ name }}``
    placeholders filled (see docs/automations.md); default: the event, the flow run's id,
    name, state and UI URL."""

    type: Literal["call-webhook"] = "call-webhook"
    url: Annotated[str, Field(min_length=8, max_length=2048), TEXT, AfterValidator(_http_url)]
    headers: Annotated[dict[LabelKey, LabelValue], AfterValidator(_headers)] = Field(
        default_factory=dict
    )
    body: Json | None = None


class RunDeployment(Model):
    """Create a run of a deployment (None: the event's own deployment)."""

    type: Literal["run-deployment"] = "run-deployment"
    deployment_id: uuid.UUID | None = None
    parameters: JsonObject = Field(default_factory=dict)
    job_variables: JsonObject = Field(default_factory=dict)


class PauseDeployment(Model):
    """Pause a deployment (None: the event's own)."""

    type: Literal["pause-deployment"] = "pause-deployment"
    deployment_id: uuid.UUID | None = None


class ResumeDeployment(Model):
    """Resume a deployment (None: the event's own)."""

    type: Literal["resume-deployment"] = "resume-deployment"
    deployment_id: uuid.UUID | None = None


class _PoolAction(Model):
    work_pool_id: uuid.UUID | None = None
    work_pool_name: Annotated[str, Field(min_length=1, max_length=100), TEXT] | None = None

    @field_validator("work_pool_name")
    @classmethod
    def _one_pool(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and info.data.get("work_pool_id") is not None:
            raise ValueError("give the pool's id or its name, not both")
        return name


class PauseWorkPool(_PoolAction):
    """Pause a work pool, by id or name (neither: the event's own)."""

    type: Literal["pause-work-pool"] = "pause-work-pool"


class ResumeWorkPool(_PoolAction):
    """Resume a work pool, by id or name (neither: the event's own)."""

    type: Literal["resume-work-pool"] = "resume-work-pool"


class CancelFlowRun(Model):
    """Cancel the flow run the event is about."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"


Action = Annotated[
    CallWebhook
    | RunDeployment
    | PauseDeployment
    | ResumeDeployment
    | PauseWorkPool
    | ResumeWorkPool
    | CancelFlowRun,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------- automations


class AutomationCreate(Model):
    """An automation: ``trigger`` fires it, each of ``actions`` runs once per firing."""

    name: Name
    description: LongText | None = None
    enabled: Flag = True
    trigger: EventTrigger
    actions: Annotated[list[Action], Field(min_length=1, max_length=20)]


class AutomationUpdate(Model):
    """Enable or disable an automation (``PATCH``); ``PUT`` replaces it whole."""

    enabled: Flag


class ActionResult(Response):
    """One action of one firing: PENDING (to do, or retrying), SUCCEEDED or FAILED."""

    id: uuid.UUID
    action_index: int
    type: str
    event_id: uuid.UUID
    status: str
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    created: datetime
    updated: datetime


class Automation(Response):
    """An automation, with its latest action results (newest first)."""

    id: uuid.UUID
    name: str
    description: str | None
    enabled: bool
    trigger: EventTrigger
    actions: list[Action]
    deployment_id: uuid.UUID | None
    created: datetime
    updated: datetime
    results: list[ActionResult] = Field(default_factory=list)

    def trigger_summary(self) -> str:
        """One line: the events expected, and the threshold."""
        text = ", ".join(self.trigger.expect) or "any event"
        if self.trigger.threshold > 1 or self.trigger.within > 0:
            text += f" ({self.trigger.threshold} within {self.trigger.within:g} s)"
        return text

    def actions_summary(self) -> str:
        return ", ".join(action.type for action in self.actions)

    def last_result(self) -> str:
        """The latest action's status, with its error."""
        if not self.results:
            return "-"
        result = self.results[0]
        text = f"{result.status} ({result.type})"
        return f"{text}: {result.last_error}" if result.last_error else text
