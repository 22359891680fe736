"""The one rule of the runtime modules: an attribute is read by its getter, when asked."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["attribute"]


def attribute(module: str, getters: Mapping[str, Callable[[], Any]], name: str) -> Any:
    """Return the value of attribute ``name`` of ``module`` from its getter.

    Raises:
        AttributeError: the module has no such attribute.
    """
    getter = getters.get(name)
    if getter is None:
        known = ", ".join(sorted(getters))
        raise AttributeError(f"module {module!r} has no attribute {name!r} (it has: {known})")
    return getter()
