"""How return values and exceptions are recorded on the server.

A result is stored as JSON when it is JSON-serialisable and at most :data:`MAX_RESULT_BYTES`;
anything else is recorded as ``{"type": ..., "repr": ...}``. A failure is recorded as its
type, message and traceback (without the SDK's own frames).
"""

from __future__ import annotations

import json
import os
import reprlib
import traceback
from types import TracebackType
from typing import Any

from dockyard._values import clean_text, json_problem
from dockyard.sdk.runtime import redaction

__all__ = ["MAX_RESULT_BYTES", "describe_failure", "json_safe", "result_for_server", "summary"]

MAX_RESULT_BYTES = 1024 * 1024
MAX_FAILURE_CHARS = 20_000
_SDK_DIR = os.path.dirname(os.path.abspath(__file__))
_REPR = reprlib.Repr()
_REPR.maxstring = 200
_REPR.maxother = 200
_REPR.maxlong = 60


def short_repr(value: Any) -> str:
    """Return a repr of ``value`` short enough to store (about 200 characters at most)."""
    try:
        return _REPR.repr(value)
    except Exception as exc:
        return f"<{type(value).__name__} whose repr failed: {type(exc).__name__}>"


def summary(value: Any) -> dict[str, str]:
    """Return what is stored for a value that is not recorded as JSON: its type and repr."""
    kind = type(value)
    name = clean_text(f"{kind.__module__}.{kind.__qualname__}")
    return {"type": name, "repr": clean_text(short_repr(value))}


def _dumps(value: Any) -> str | None:
    try:
        return json.dumps(value, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return None


def result_for_server(value: Any) -> Any:
    """Return the JSON stored as a run's result for the return value ``value``."""
    if value is None or (isinstance(value, bool | int | float) and _dumps(value) is not None):
        return value
    text = _dumps(value)
    if text is None or len(text.encode()) > MAX_RESULT_BYTES:
        return summary(value)
    return _storable(value, json.loads(text))


def json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Return ``values`` (parameters) with every value that is not JSON replaced by a summary."""
    result: dict[str, Any] = {}
    for name, value in values.items():
        text = _dumps(value)
        result[clean_text(name)] = (
            summary(value) if text is None else _storable(value, json.loads(text))
        )
    return result


def _storable(value: Any, loaded: Any) -> Any:
    """``loaded`` (the JSON of ``value``), or a summary where the server would refuse it:
    text it cannot store (NUL, lone surrogates) or nesting deeper than it keeps."""
    return loaded if json_problem(loaded) is None else summary(value)


def describe_failure(exc: BaseException) -> str:
    """Return the state message of a run that raised ``exc``: ``Type: message`` + traceback.

    Secret values this process loaded are hidden in it (before any cut could split one):
    the text is a flow run's state message, a task run's error, a hook's state.
    """
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    head = clean_text(_hidden(head), MAX_FAILURE_CHARS)
    frames = _user_frames(exc.__traceback__)
    if frames is not None:
        trace = "".join(traceback.format_exception(type(exc), exc, frames))
    else:  # raised again here: its traceback, if any, is a note (from a worker process)
        trace = "\n".join(str(note) for note in getattr(exc, "__notes__", ()))
    trace = _hidden(trace).rstrip()
    if not trace:
        return head
    if len(trace) > MAX_FAILURE_CHARS:
        half = MAX_FAILURE_CHARS // 2
        skipped = len(trace) - 2 * half
        trace = f"{trace[:half]}\n... ({skipped} characters left out) ...\n{trace[-half:]}"
    return clean_text(f"{head}\n\n{trace}")


def _hidden(text: str) -> str:
    return redaction.redact(text) if redaction.LOADED else text


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip the leading frames of the SDK itself: the traceback starts in user code.

    A failure raised by the SDK itself (a parameter that does not validate) has no frame
    left, and is described by its message alone.
    """
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_SDK_DIR):
        tb = tb.tb_next
    return tb
