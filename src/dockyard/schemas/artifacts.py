"""Request and response models of artifacts (``/api/artifacts``), and the rules of their data.

An artifact is something a run publishes for people to read: a Markdown report, a table, a
link, a progress bar or an image. Its ``data`` depends on its ``type``:

- ``markdown``: the Markdown text;
- ``table``: columns (``{"name": [cells]}``, equal lengths), rows as objects
  (``[{"name": cell}]``, missing cells empty) or rows as lists (``[[cells]]``, equal
  lengths); a cell is any JSON value;
- ``link``: ``{"link": URL, "link_text": text or null}``;
- ``progress``: a number from 0 to 100 (the only type updated in place);
- ``image``: the image's ``http`` or ``https`` URL.

Whatever the type, ``data`` is at most :data:`ARTIFACT_DATA_MAX_BYTES` of compact JSON text.
"""

import enum
import json
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from dockyard import _names
from dockyard._values import json_problem
from dockyard.schemas import TEXT, Model, Response

__all__ = [
    "ARTIFACT_DATA_MAX_BYTES",
    "ARTIFACT_DESCRIPTION_MAX_LENGTH",
    "URL_MAX_LENGTH",
    "Artifact",
    "ArtifactCreate",
    "ArtifactKey",
    "ArtifactType",
    "ArtifactUpdate",
    "data_problem",
    "table_cells",
]

# the most an artifact's data holds, as compact JSON text in UTF-8 (1 MiB)
ARTIFACT_DATA_MAX_BYTES = 1 << 20
ARTIFACT_DESCRIPTION_MAX_LENGTH = 65_536
URL_MAX_LENGTH = 2048
LINK_TEXT_MAX_LENGTH = 1000


class ArtifactType(enum.StrEnum):
    MARKDOWN = "markdown"
    TABLE = "table"
    LINK = "link"
    PROGRESS = "progress"
    IMAGE = "image"


def _key(value: Any) -> Any:
    problem = _names.artifact_key_problem(value) if isinstance(value, str) else None
    if problem:
        raise ValueError(problem)
    return value


# The rule lives in dockyard._names, where the SDK reads it without pydantic.
ArtifactKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=_names.MAX_ARTIFACT_KEY,
        json_schema_extra={"pattern": _names.ARTIFACT_KEY_PATTERN},
    ),
    BeforeValidator(_key),
]
Description = Annotated[str, Field(max_length=ARTIFACT_DESCRIPTION_MAX_LENGTH), TEXT]
Progress = Annotated[float, Field(strict=True, ge=0, le=100, allow_inf_nan=False)]

DATA_DESCRIPTION = (
    "By type: markdown, the text; table, {column: [cells]}, [{column: cell}] or [[cells]]; "
    'link, {"link": URL, "link_text": text or null}; progress, a number from 0 to 100; '
    "image, an http(s) URL. At most 1 MiB of compact JSON."
)


class ArtifactCreate(Model):
    """A new artifact. With a ``key``, it is the newest version of that key (a key's older
    versions are kept); without one, it stands alone. ``flow_run_id`` links it to a run
    (404 when no run has that id); ``task_run_id`` records the task run that made it."""

    type: ArtifactType
    key: ArtifactKey | None = None
    description: Description | None = None
    data: Any = Field(description=DATA_DESCRIPTION)
    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None

    @field_validator("data")
    @classmethod
    def _data_fits_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("type")
        if kind is not None:  # else the type itself was refused, which says enough
            problem = data_problem(ArtifactType(kind), value)
            if problem:
                raise ValueError(problem)
        return value


class ArtifactUpdate(Model):
    """Change a progress artifact in place: the fields sent are set (``"description":
    null`` removes the description). Other types answer 409: make a new version instead."""

    data: Progress | None = Field(default=None, description="The progress, 0 to 100.")
    description: Description | None = None


class Artifact(Response):
    id: uuid.UUID
    key: str | None
    type: ArtifactType
    description: str | None
    data: Any
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    created: datetime
    updated: datetime


# ---------------------------------------------------------------- the rules of data


def data_problem(kind: ArtifactType, data: Any) -> str | None:
    """Return why ``data`` cannot be the data of an artifact of type ``kind``, or None."""
    problem = json_problem(data) or _SHAPES[kind](data)
    if problem:
        return problem
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:  # an integer of more digits than Python writes
        return f"is not JSON the server stores ({exc})"
    size = len(text.encode())
    if size > ARTIFACT_DATA_MAX_BYTES:
        return (
            f"is {size} bytes of JSON, more than {ARTIFACT_DATA_MAX_BYTES} (1 MiB); publish a "
            "summary, and a link to where the whole data is kept"
        )
    return None


def _markdown(data: Any) -> str | None:
    return None if isinstance(data, str) else "must be the Markdown text (a string)"


def _progress(data: Any) -> str | None:
    number = isinstance(data, int | float) and not isinstance(data, bool)
    if not number or not 0 <= data <= 100:  # NaN compares false: refused too
        return f"must be a number from 0 to 100 (the progress in percent), not {_brief(data)}"
    return None


def _url_problem(url: Any, what: str, schemes: tuple[str, ...] | None) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return f"{what} must be a URL (a non-empty string)"
    if len(url) > URL_MAX_LENGTH:
        return f"{what} is {len(url)} characters long, more than {URL_MAX_LENGTH}"
    if url != url.strip() or not url.isprintable():
        return f"{what} must not start or end with whitespace, nor hold control characters"
    if schemes is not None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in schemes or not parts.netloc:
            shown = " or ".join(f"{scheme}://" for scheme in schemes)
            return f"{what} must be an absolute URL starting with {shown}, not {_brief(url)}"
    return None


def _image(data: Any) -> str | None:
    return _url_problem(data, "the image's URL", ("http", "https"))


def _link(data: Any) -> str | None:
    shape = 'must be {"link": URL, "link_text": text or null}'
    if not isinstance(data, dict) or not set(data) <= {"link", "link_text"}:
        return shape
    text = data.get("link_text")
    if text is not None and (not isinstance(text, str) or len(text) > LINK_TEXT_MAX_LENGTH):
        return f"link_text must be text of at most {LINK_TEXT_MAX_LENGTH} characters, or null"
    # any scheme is stored (s3://, file://); the UI makes only http(s) and mailto clickable
    return _url_problem(data.get("link"), "link", None)


def _table(data: Any) -> str | None:
    try:
        table_cells(data)
    except ValueError as exc:
        return str(exc)
    return None


def table_cells(data: Any) -> tuple[list[str] | None, list[list[Any]]]:
    """Return a table's column names (None for rows given as lists) and its rows of cells.

    Raises:
        ValueError: ``data`` is not a table; the message says where and why.
    """
    if isinstance(data, dict):
        return _from_columns(data)
    if not isinstance(data, list):
        return _not_a_table(data)
    if all(isinstance(row, dict) for row in data):
        names = list(dict.fromkeys(name for row in data for name in row))
        return names, [[row.get(name) for name in names] for row in data]
    width = None
    for number, row in enumerate(data):
        if not isinstance(row, list):
            first = "an object" if isinstance(data[0], dict) else "a list"
            raise ValueError(
                f"row {number} is {_kind(row)}, but row 0 is {first}: every row of a table is "
                "a list of cells, or every row an object of cells by column name"
            )
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise ValueError(
                f"row {number} has {len(row)} cells, but row 0 has {width}: every row of a "
                "table has the same number of cells (use null for an empty one)"
            )
    return None, [list(row) for row in data]


def _from_columns(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    lengths = {}
    for name, cells in data.items():
        if not isinstance(cells, list):
            raise ValueError(
                f"column {name!a} is {_kind(cells)}: a table given by columns maps each "
                "column's name to the list of its cells"
            )
        lengths[name] = len(cells)
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{name!a} has {count}" for name, count in lengths.items())
        raise ValueError(f"the columns differ in length ({shown}): every column has one cell a row")
    count = next(iter(lengths.values()), 0)
    return list(data), [[data[name][index] for name in data] for index in range(count)]


def _not_a_table(data: Any) -> tuple[list[str] | None, list[list[Any]]]:
    raise ValueError(
        f"must be a table, not {_kind(data)}: {{column: [cells]}}, [{{column: cell}}] or [[cells]]"
    )


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _brief(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


_SHAPES = {
    ArtifactType.MARKDOWN: _markdown,
    ArtifactType.TABLE: _table,
    ArtifactType.LINK: _link,
    ArtifactType.PROGRESS: _progress,
    ArtifactType.IMAGE: _image,
}
