"""Building blocks of calls: path segments, bodies, and parsers of answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from dockyard import schemas
from dockyard._names import path_segment
from dockyard.exceptions import DockyardError

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

Id = uuid.UUID | str
Parser = Callable[[httpx.Response], T]

# Lists are parsed in one pass by pydantic-core; the adapters are built once, on import.
FLOWS = TypeAdapter(list[schemas.Flow])
DEPLOYMENTS = TypeAdapter(list[schemas.Deployment])
FLOW_RUNS = TypeAdapter(list[schemas.FlowRun])
STATES = TypeAdapter(list[schemas.State])
TASK_RUNS = TypeAdapter(list[schemas.TaskRun])
LOGS = TypeAdapter(list[schemas.Log])
WORKER_TYPES = TypeAdapter(list[schemas.WorkerType])
WORK_POOLS = TypeAdapter(list[schemas.WorkPool])
WORK_QUEUES = TypeAdapter(list[schemas.WorkQueue])
WORKERS = TypeAdapter(list[schemas.Worker])
VARIABLES = TypeAdapter(list[schemas.Variable])
SECRETS = TypeAdapter(list[schemas.Secret])


def seg(value: Id) -> str:
    """Return ``value`` (a name or an id) encoded as exactly one path segment.

    Raises:
        DockyardError: ``value`` is empty, or holds a '/': no object has such a name or id
            (and the server would read an encoded '/' as a separator).
    """
    text = str(value)
    if not text:
        raise DockyardError("a name or id is empty; pass the name or id of the object to use")
    if "/" in text:
        raise DockyardError(f"nothing is named {text!r}: names and ids never contain '/'")
    return path_segment(text)


def body(model: BaseModel) -> Any:
    """Return the JSON body for a create model (every field, defaults included)."""
    return model.model_dump(mode="json")


def patch(model: BaseModel) -> Any:
    """Return the JSON body for an update model: only the fields the caller set."""
    return model.model_dump(mode="json", exclude_unset=True)


def one(model: type[M]) -> Parser[M]:
    """Return a parser of an answer holding one ``model``."""

    def parse(response: httpx.Response) -> M:
        return model.model_validate_json(response.content)

    return parse


def many(adapter: TypeAdapter[list[M]]) -> Parser[list[M]]:
    """Return a parser of an answer holding a list, validated by ``adapter``."""

    def parse(response: httpx.Response) -> list[M]:
        return adapter.validate_json(response.content)

    return parse


def nothing(response: httpx.Response) -> None:
    """Parse an answer without a body (204)."""


def count(response: httpx.Response) -> int:
    """Parse a ``{"count": n}`` answer."""
    return int(response.json()["count"])


def mapping(response: httpx.Response) -> dict[str, Any]:
    """Parse an answer holding a JSON object."""
    data = response.json()
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    return data
