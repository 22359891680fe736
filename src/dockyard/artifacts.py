"""Artifacts: what a run publishes for people to read on its page, in the UI's Artifacts
page and with ``dockyard artifact``: a Markdown report, a table, a link, a progress bar or an
image.

::

    from dockyard import flow
    from dockyard.artifacts import create_markdown_artifact, create_table_artifact

    @flow
    def report() -> None:
        create_markdown_artifact("# Done\\n\\n*42* rows loaded", key="load-report")
        create_table_artifact([{"name": "a", "rows": 40}, {"name": "b", "rows": 2}])

Each function returns the artifact's id. Inside a flow run (in the flow or any of its tasks)
the artifact is linked to the run and to the task run that made it; outside any run it is
stored unlinked on the server the settings name; in a run that no server tracks it is not
stored (a warning in the run's logs says so). With a ``key`` (lowercase letters, digits and
``-``) an artifact is the newest version of that key: the older ones are kept, and
:meth:`Artifact.get` reads the latest.

In ``async`` code, await the ``a``-twins (:func:`acreate_markdown_artifact`, ...); the plain
functions called from an ``async def`` flow or task (or, outside a run, from a thread
running an event loop) return them to be awaited.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from dockyard.sdk.runtime import artifacts as _artifacts
from dockyard.sdk.server_calls import in_async_code as _in_async_code
from dockyard.sdk.server_calls import server_api as _api

__all__ = [
    "Artifact",
    "acreate_image_artifact",
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_progress_artifact",
    "acreate_table_artifact",
    "aupdate_progress_artifact",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]

T = TypeVar("T")
Table = dict[str, list[Any]] | list[dict[str, Any]] | list[list[Any]]


@dataclasses.dataclass(frozen=True)
class Artifact:
    """An artifact as the server keeps it; ``data`` is JSON whose shape depends on ``type``
    (see ``docs/artifacts.md``)."""

    id: uuid.UUID
    key: str | None
    type: str
    description: str | None
    data: Any
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    created: datetime
    updated: datetime

    @classmethod
    def get(cls, key: str) -> Artifact | None:
        """Return the latest version of the artifact ``key``, or None when there is none.

        Raises:
            ValueError: ``key`` is not an artifact's key.
        """
        if _in_async_code():
            return cls.aget(key)  # type: ignore[return-value]
        return _read(key)

    @classmethod
    async def aget(cls, key: str) -> Artifact | None:
        """:meth:`get`, awaited: the request runs in a thread, not on the event loop."""
        return await _in_thread(_read, key)


def _read(key: str) -> Artifact | None:
    found = _artifacts.read_latest(_api, key)
    if found is None:
        return None
    ids = {name: _uuid(found.get(name)) for name in ("flow_run_id", "task_run_id")}
    return Artifact(
        id=uuid.UUID(found["id"]),
        key=found.get("key"),
        type=str(found["type"]),
        description=found.get("description"),
        data=found.get("data"),
        created=datetime.fromisoformat(found["created"]),
        updated=datetime.fromisoformat(found["updated"]),
        **ids,
    )


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` in a worker thread (with this context: the run's links)."""
    import asyncio  # not at import: a flow's process imports it only when it is async

    return await asyncio.to_thread(function, *args)


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish Markdown text (rendered safely: raw HTML is shown as text); return its id.

    Raises:
        ValueError: ``key`` is not an artifact's key (lowercase letters, digits, ``-``).
        InvalidInput: the server refused the data (over 1 MiB).
    """
    if _in_async_code():
        awaitable = acreate_markdown_artifact(markdown, key, description)
        return awaitable  # type: ignore[return-value]
    data = _text(markdown, "markdown")
    return _artifacts.create(_api, "markdown", data, key, description)


def create_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a table: ``{column: [cells]}``, ``[{column: cell}]`` or ``[[cells]]``.

    NaN and infinite cells are sent empty, cells that are not JSON as their text.

    Raises:
        InvalidInput: the table's shape was refused (rows of different lengths, ...).
    """
    if _in_async_code():
        awaitable = acreate_table_artifact(table, key, description)
        return awaitable  # type: ignore[return-value]
    return _artifacts.create(_api, "table", _artifacts.table_data(table), key, description)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Publish a link (shown as ``link_text``, else the link itself)."""
    if _in_async_code():
        awaitable = acreate_link_artifact(link, link_text, key, description)
        return awaitable  # type: ignore[return-value]
    text = None if link_text is None else _text(link_text, "link_text")
    data = {"link": _text(link, "link"), "link_text": text}
    return _artifacts.create(_api, "link", data, key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a progress bar at ``progress`` percent (0 to 100); move it with
    :func:`update_progress_artifact`."""
    if _in_async_code():
        awaitable = acreate_progress_artifact(progress, key, description)
        return awaitable  # type: ignore[return-value]
    value = _artifacts.progress_value(progress)
    return _artifacts.create(_api, "progress", value, key, description)


def update_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """Move the progress artifact ``artifact_id`` to ``progress`` (in place: no new version);
    return its id.

    Raises:
        NotFound: no artifact has that id.
        Conflict: it is not a progress artifact.
    """
    if _in_async_code():
        awaitable = aupdate_progress_artifact(artifact_id, progress, description)
        return awaitable  # type: ignore[return-value]
    _artifacts.update(_api, artifact_id, progress, description)
    return uuid.UUID(str(artifact_id))


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish an image by its ``http(s)`` URL (the server stores the URL, not the image)."""
    if _in_async_code():
        awaitable = acreate_image_artifact(image_url, key, description)
        return awaitable  # type: ignore[return-value]
    data = _text(image_url, "image_url")
    return _artifacts.create(_api, "image", data, key, description)


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_markdown_artifact`, awaited (the request runs in a thread)."""
    data = _text(markdown, "markdown")
    return await _in_thread(_artifacts.create, _api, "markdown", data, key, description)


async def acreate_table_artifact(
    table: Table, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_table_artifact`, awaited."""
    data = _artifacts.table_data(table)
    return await _in_thread(_artifacts.create, _api, "table", data, key, description)


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """:func:`create_link_artifact`, awaited."""
    text = None if link_text is None else _text(link_text, "link_text")
    data = {"link": _text(link, "link"), "link_text": text}
    return await _in_thread(_artifacts.create, _api, "link", data, key, description)


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_progress_artifact`, awaited."""
    value = _artifacts.progress_value(progress)
    return await _in_thread(_artifacts.create, _api, "progress", value, key, description)


async def aupdate_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """:func:`update_progress_artifact`, awaited."""
    await _in_thread(_artifacts.update, _api, artifact_id, progress, description)
    return uuid.UUID(str(artifact_id))


async def acreate_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """:func:`create_image_artifact`, awaited."""
    data = _text(image_url, "image_url")
    return await _in_thread(_artifacts.create, _api, "image", data, key, description)
