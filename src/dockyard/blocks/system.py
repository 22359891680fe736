"""Secrets: named values the server stores encrypted, that flows read at run time.

::

    from dockyard.blocks.system import Secret

    Secret(value="hunter2").save("db-password")            # refused if it exists ...
    Secret(value="swordfish").save("db-password", overwrite=True)   # ... unless overwrite
    Secret.load("db-password").get()                        # "swordfish"

A value is a string, or a JSON object or array (at most 256 KiB as compact JSON text). A
name follows the rule of a variable's: 1 to 255 lowercase letters, digits, ``_`` and ``-``.

Every value :meth:`Secret.load` returns is hidden (``********``) from the log lines flow and
task runs of this process ship to the server from then on (``dockyard.sdk.runtime.redaction``).
In ``async`` code, await :meth:`Secret.aload` and :meth:`Secret.asave`; ``load`` and ``save``
called from an ``async def`` flow or task return them to be awaited.
"""

from __future__ import annotations

from typing import Any

from dockyard._names import variable_name_problem
from dockyard._values import variable_value_problem
from dockyard.exceptions import Conflict, NotFound
from dockyard.sdk.runtime import redaction
from dockyard.sdk.server_calls import in_async_code, server_api

__all__ = ["Secret"]

SecretValue = str | dict[str, Any] | list[Any]


class Secret:
    """A value kept secret: :meth:`get` returns it; its ``repr`` does not show it."""

    __slots__ = ("_value",)

    def __init__(self, value: SecretValue) -> None:
        problem = _value_problem(value)
        if problem:
            raise ValueError(f"a secret's value {problem}")
        self._value = value

    def get(self) -> SecretValue:
        """Return the value."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(value={redaction.MASK!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    __hash__ = None  # type: ignore[assignment]

    def save(self, name: str, overwrite: bool = False) -> None:
        """Store the value as the secret ``name``.

        Raises:
            ValueError: the secret exists and ``overwrite`` is false; or ``name`` is not a
                secret's name.
            ServerUnreachable, ApiError: the server could not be reached, or failed.
        """
        if in_async_code():
            return self.asave(name, overwrite)  # type: ignore[return-value]
        _save(name, self._value, overwrite)

    async def asave(self, name: str, overwrite: bool = False) -> None:
        """:meth:`save`, awaited: the request runs in a thread, not on the event loop."""
        import asyncio

        await asyncio.to_thread(_save, name, self._value, overwrite)

    @classmethod
    def load(cls, name: str) -> Secret:
        """Return the secret ``name``; from now on its value is hidden from shipped logs.

        Raises:
            ValueError: no secret has that name, or ``name`` is not a secret's name.
            ServerUnreachable, ApiError: the server could not be reached, or failed.
        """
        if in_async_code():
            return cls.aload(name)  # type: ignore[return-value]
        return _load(name)

    @classmethod
    async def aload(cls, name: str) -> Secret:
        """:meth:`load`, awaited."""
        import asyncio

        return await asyncio.to_thread(_load, name)


def _load(name: str) -> Secret:
    _check_name(name)
    try:
        value = server_api().read_secret_value(name)
    except NotFound:
        raise ValueError(
            f"no secret named {name!r}; save one with Secret(value=...).save({name!r}) "
            f"or `dockyard secret set {name}`"
        ) from None
    redaction.remember(value)
    return Secret(value)


def _save(name: str, value: SecretValue, overwrite: bool) -> None:
    _check_name(name)
    api = server_api()
    if overwrite:
        api.set_secret(name, value)
        return
    try:
        api.create_secret(name, value)
    except Conflict:
        raise ValueError(
            f"secret {name!r} already exists; pass overwrite=True to replace it"
        ) from None


def _value_problem(value: Any) -> str | None:
    if not isinstance(value, str | dict | list):
        return f"must be a str, or a dict or list of JSON values, not {type(value).__name__}"
    return variable_value_problem(value)


def _check_name(name: str) -> None:
    problem = variable_name_problem(name) if isinstance(name, str) else "must be a str"
    if problem:
        raise ValueError(f"{name!r} is not a secret's name: it {problem}")
