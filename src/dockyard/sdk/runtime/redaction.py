"""Secret values loaded in this process, and their removal from the log lines runs ship.

:func:`remember` is called for each value ``Secret.load`` returns; :func:`redact` replaces
every occurrence of one in a line with :data:`MASK`. Until a secret is loaded, the set is
empty and shipping a line costs one truth test (``if LOADED``).

It hides the exact text of a value only: a value cut, encoded, or spread over two lines
passes through.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["LOADED", "MASK", "redact", "remember"]

MASK = "********"

# the texts to hide, longest first (a value that contains another is hidden whole)
LOADED: list[str] = []
_lock = threading.Lock()


def remember(value: Any) -> None:
    """Hide ``value`` (a string, or every string in a JSON object or array) from now on."""
    found: set[str] = set()
    _strings(value, found)
    with _lock:
        fresh = found.difference(LOADED)
        if fresh:
            # swapped in whole, so that a thread reading it never sees it half sorted
            LOADED[:] = sorted({*LOADED, *fresh}, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every remembered value replaced by :data:`MASK`."""
    for secret in LOADED:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def _strings(value: Any, found: set[str]) -> None:
    if isinstance(value, str):
        if value:
            found.add(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, found)
    elif isinstance(value, list):
        for item in value:
            _strings(item, found)
