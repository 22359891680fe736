"""Docstrings: a function's description, and its parameters' descriptions (``Args:``)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

__all__ = ["clean_docstring", "docstring_arguments"]

_SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Kwargs):\s*$")
_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_REST_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?([A-Za-z_]\w*)\s*:\s*(.*)$")


def clean_docstring(fn: Callable[..., Any]) -> str | None:
    """Return ``fn``'s docstring without its indentation, or None if it has none."""
    doc = getattr(fn, "__doc__", None)
    return inspect.cleandoc(doc) if doc else None


def docstring_arguments(fn: Callable[..., Any]) -> dict[str, str]:
    """Return parameter descriptions from a Google-style ``Args:`` section (or ``:param:``)."""
    doc = clean_docstring(fn)
    if not doc:
        return {}
    lines = doc.splitlines()
    found: dict[str, str] = {}
    for line in lines:
        match = _REST_PARAM.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    for index, line in enumerate(lines):
        section = _SECTION.match(line)
        if section:
            found.update(_section_entries(lines[index + 1 :], len(section.group(1))))
    return found


def _section_entries(lines: list[str], header_indent: int) -> dict[str, str]:
    entries: dict[str, list[str]] = {}
    current: str | None = None
    entry_indent: int | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= header_indent:
            break
        if entry_indent is None:
            entry_indent = indent
        match = _ENTRY.match(line.strip()) if indent == entry_indent else None
        if match:
            current = match.group(1)
            entries[current] = [match.group(2).strip()]
        elif current is not None:
            entries[current].append(line.strip())
    return {name: " ".join(part for part in parts if part) for name, parts in entries.items()}
