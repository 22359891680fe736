"""Variables: named JSON values kept by the server, for configuration that flows read at run
time and that people change without a new deployment.

::

    from dockyard.variables import Variable

    Variable.set("crew", ["Zaphod", "Arthur"])     # refused if "crew" exists ...
    Variable.set("crew", ["Trillian"], overwrite=True)   # ... unless overwrite=True
    Variable.get("crew")                           # ["Trillian"]
    Variable.get("missing", default=[])            # []
    Variable.unset("crew")                         # True (False: there was none)

A value is any JSON value (str, int, float, bool, None, and lists and dicts of them), at most
256 KiB as compact JSON text. A name is 1 to 255 lowercase letters, digits, ``_`` and ``-``.

Each call is one request to the server: inside a flow run, over the run's own connection to
it (no HTTP client library and no pydantic are imported); elsewhere, to the server the
settings name (``DOCKYARD_API_URL``, ``DOCKYARD_API_KEY``). In ``async`` code, await the
twins :meth:`Variable.aget`, :meth:`Variable.aset` and :meth:`Variable.aunset`;
``get``, ``set`` and ``unset`` called from an ``async def`` flow or task (or, outside
a run, from a thread running an event loop) return them to be awaited.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dockyard._names import variable_name_problem
from dockyard._values import variable_value_problem
from dockyard.exceptions import Conflict
from dockyard.sdk.server_calls import in_async_code as _in_async_code
from dockyard.sdk.server_calls import server_api as _api

__all__ = ["Variable"]


@dataclasses.dataclass(frozen=True)
class Variable:
    """A variable as the server keeps it: its name, JSON value and tags.

    Use the class's methods; :meth:`set` returns an instance.
    """

    name: str
    value: Any = None
    tags: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """Return the value of the variable ``name``, or ``default`` when there is none.

        Raises:
            ValueError: ``name`` is not a variable's name (no variable could have it).
            ServerUnreachable, ApiError: the server could not be reached, or failed.
        """
        if _in_async_code():
            return cls.aget(name, default)
        return _read(name, default)

    @classmethod
    def set(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        """Create the variable ``name`` holding ``value``; return it.

        Args:
            tags: labels to find it by.
            overwrite: replace the variable (value and tags) if it exists.

        Raises:
            ValueError: the variable exists and ``overwrite`` is false; or ``name`` is not a
                variable's name, or ``value`` is not JSON the server stores.
        """
        if _in_async_code():
            return cls.aset(name, value, tags, overwrite)  # type: ignore[return-value]
        return _write(name, value, tags, overwrite)

    @classmethod
    def unset(cls, name: str) -> bool:
        """Delete the variable ``name``; return whether there was one."""
        if _in_async_code():
            return cls.aunset(name)  # type: ignore[return-value]
        return _delete(name)

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """:meth:`get`, awaited: the request runs in a thread, not on the event loop."""
        import asyncio

        return await asyncio.to_thread(_read, name, default)

    @classmethod
    async def aset(
        cls, name: str, value: Any, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        """:meth:`set`, awaited."""
        import asyncio

        return await asyncio.to_thread(_write, name, value, tags, overwrite)

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """:meth:`unset`, awaited."""
        import asyncio

        return await asyncio.to_thread(_delete, name)


def _read(name: str, default: Any) -> Any:
    _check_name(name)
    found = _api().read_variable(name)
    return default if found is None else found.get("value")


def _write(name: str, value: Any, tags: list[str] | None, overwrite: bool) -> Variable:
    _check_name(name)
    problem = variable_value_problem(value)
    if problem:
        raise ValueError(f"the value of variable {name!r} {problem}")
    given = list(tags or [])
    api = _api()
    if overwrite:
        answer = api.set_variable(name, value, given)
    else:
        try:
            answer = api.create_variable(name, value, given)
        except Conflict:
            raise ValueError(
                f"variable {name!r} already exists; pass overwrite=True to replace it"
            ) from None
    return Variable(name=answer["name"], value=answer.get("value"), tags=list(answer["tags"]))


def _delete(name: str) -> bool:
    _check_name(name)
    return _api().delete_variable(name)


def _check_name(name: str) -> None:
    problem = variable_name_problem(name) if isinstance(name, str) else "must be a str"
    if problem:
        raise ValueError(f"{name!r} is not a variable's name: it {problem}")
