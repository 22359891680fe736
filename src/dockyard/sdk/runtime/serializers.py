"""Serializers: how a result's value becomes bytes and back.

``result_serializer=`` takes a name: ``"pickle"`` (the default), ``"json"``,
``"compressed/pickle"``, ``"compressed/json"``; or any object with ``dumps(value) -> bytes``
and ``loads(data) -> value`` (its ``type``, if it has one, names it in result records).
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "PICKLE",
    "CompressedSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "ResultSerializer",
    "Serializer",
    "check_serializer",
    "resolve_serializer",
    "serializer_name",
]


@runtime_checkable
class Serializer(Protocol):
    """Turns values into bytes and back (``type`` names it in records)."""

    def dumps(self, value: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


ResultSerializer: TypeAlias = "str | Serializer"
"""What ``result_serializer=`` takes: a serializer's name or object."""


def serializer_name(serializer: Serializer) -> str:
    """The name a result record gives ``serializer``."""
    return str(getattr(serializer, "type", None) or type(serializer).__name__)


class PickleSerializer:
    """Any picklable value, with :mod:`pickle`."""

    type = "pickle"

    def dumps(self, value: Any) -> bytes:
        import pickle

        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        import pickle

        return pickle.loads(data)


class JSONSerializer:
    """Values JSON can write (dicts, lists, strings, numbers, booleans, None)."""

    type = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class CompressedSerializer:
    """Another serializer's bytes, compressed with zlib."""

    def __init__(self, inner: Serializer) -> None:
        self.inner = inner
        self.type = f"compressed/{serializer_name(inner)}"

    def dumps(self, value: Any) -> bytes:
        import zlib

        return zlib.compress(self.inner.dumps(value))

    def loads(self, data: bytes) -> Any:
        import zlib

        return self.inner.loads(zlib.decompress(data))


PICKLE = PickleSerializer()
_NAMED: dict[str, Serializer] = {
    "pickle": PICKLE,
    "json": JSONSerializer(),
    "compressed/pickle": CompressedSerializer(PICKLE),
    "compressed/json": CompressedSerializer(JSONSerializer()),
}


def check_serializer(spec: ResultSerializer, owner: str) -> Serializer:
    """Return the serializer ``spec`` names.

    Raises:
        ValueError: an unknown name, or an object without ``dumps`` and ``loads``.
    """
    if isinstance(spec, str):
        found = _NAMED.get(spec)
        if found is None:
            names = ", ".join(repr(n) for n in _NAMED)
            raise ValueError(f"{owner} result_serializer {spec!r} is unknown: use one of {names}")
        return found
    if isinstance(spec, Serializer):
        return spec
    raise ValueError(
        f"{owner} result_serializer must be a name such as 'pickle' or 'json', or an object "
        f"with dumps(value) and loads(data) methods, not {spec!r}"
    )


def resolve_serializer(name: str | None, fallback: Serializer) -> Serializer:
    """Return the serializer a record names, or ``fallback`` (a serializer of the user's)."""
    return _NAMED.get(name or "", fallback)
