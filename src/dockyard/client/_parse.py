"""Building blocks of calls: path segments, bodies, and parsers of answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from dockyard import schemas

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


def seg(value: Id) -> str:
    """Return ``value`` quoted as one path segment (a name may hold spaces or '?')."""
    return quote(str(value), safe="")


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
