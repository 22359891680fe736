"""Artifacts made from Python: their links to the run that makes them, their data as JSON,
and what happens in a run the server does not track.

- Inside a flow run (in the flow or any of its tasks) an artifact is linked to the
  innermost flow run, and to the task run that made it.
- Outside any run it is stored unlinked, on the server the settings name.
- Inside a run that went on untracked (no server answered when it started), nothing is
  sent: a warning in the run's logs says so, and the id returned names no stored artifact.
  An artifact is a report for people; its absence must not fail work that runs without a
  server.

The server checks the data (:mod:`dockyard.schemas.artifacts`); here a key is checked before
anything is sent, and a table is turned into JSON the way a person reads it (tuples as
lists, NaN and infinities as empty cells, other objects as their text).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dockyard._names import artifact_key_problem
from dockyard._values import JSON_MAX_DEPTH
from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN
from dockyard.sdk.runtime.logs import get_logger

if TYPE_CHECKING:
    from dockyard.sdk.api import ServerApi

__all__ = ["check_key", "create", "progress_value", "read_latest", "table_data", "update"]

Api = Callable[[], "ServerApi"]


def check_key(key: str | None) -> None:
    """Refuse a key no artifact can have, before anything is sent.

    Raises:
        ValueError: the message says what is wrong and the key to write instead.
    """
    if key is None:
        return
    problem = artifact_key_problem(key) if isinstance(key, str) else "must be a str"
    if problem:
        raise ValueError(f"{key!r} is not an artifact's key: it {problem}")


def create(api: Api, kind: str, data: Any, key: str | None, description: str | None) -> uuid.UUID:
    """Create an artifact of type ``kind``; return its id (see the module's rules)."""
    check_key(key)
    if description is not None and not isinstance(description, str):
        raise TypeError(f"description must be a str or None, not {type(description).__name__}")
    body: dict[str, Any] = {"type": kind, "key": key, "description": description, "data": data}
    flow_run = FLOW_RUN.get()
    if flow_run is not None:
        if not flow_run.tracked:
            named = f" '{key}'" if key else ""
            get_logger("artifacts").warning(
                "the %s artifact%s was not stored: this flow run is not tracked by a server",
                kind,
                named,
            )
            return uuid.uuid4()
        body["flow_run_id"] = str(flow_run.flow_run_id)
        task_run = TASK_RUN.get()
        if task_run is not None and task_run.flow_run is flow_run:
            body["task_run_id"] = str(task_run.task_run_id)
    answer = api().create_artifact(body)
    return uuid.UUID(answer["id"])


def update(
    api: Api, artifact_id: uuid.UUID | str, progress: float, description: str | None
) -> None:
    """Set a progress artifact's progress (and description, when one is given)."""
    artifact = uuid.UUID(str(artifact_id))
    body: dict[str, Any] = {"data": progress_value(progress)}
    if description is not None:
        body["description"] = description
    flow_run = FLOW_RUN.get()
    if flow_run is not None and not flow_run.tracked:
        return  # its creation was not sent either, and warned
    api().update_artifact(artifact, body)


def read_latest(api: Api, key: str) -> dict[str, Any] | None:
    """The latest version of ``key`` as the server answers it (JSON), or None."""
    check_key(key)
    return api().read_latest_artifact(key)


def progress_value(progress: Any) -> float:
    """``progress`` as a number to send; the server checks its range (0 to 100).

    Raises:
        TypeError: it is not a number.
        ValueError: it is NaN or infinite (JSON cannot carry it).
    """
    if isinstance(progress, bool) or not isinstance(progress, int | float):
        raise TypeError(f"progress must be a number from 0 to 100, not {progress!r}")
    if not math.isfinite(progress):
        raise ValueError(f"progress must be a number from 0 to 100, not {progress!r}")
    return float(progress)


def table_data(table: Any) -> Any:
    """``table`` as JSON: rows and cells in lists, NaN and infinities as null (an empty
    cell), keys and objects that are not JSON as their text. The shape is the server's to
    check: its answer says what a table is."""
    return _json_ready(table, 0)


def _json_ready(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= JSON_MAX_DEPTH:
        raise ValueError(f"the table nests more than {JSON_MAX_DEPTH} levels deep; flatten it")
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item, depth + 1) for item in value]
    return str(value)
