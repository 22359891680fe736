"""What a worker does to a claimed run's job configuration before it launches it.

The server renders a pool's base job template but leaves ``{{ $NAME }}`` placeholders, which
read the environment of the worker that launches the run. As on the server, a value that is
exactly a placeholder of an unset variable removes its key; inside other text it becomes "".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ENV_PLACEHOLDER = re.compile(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_MISSING = object()


def fill_placeholders(config: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Return ``config`` with its ``{{ $NAME }}`` placeholders read from ``environ``."""
    filled = _fill(config, environ)
    return filled if isinstance(filled, dict) else {}


def _fill(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        items = ((key, _fill(item, environ)) for key, item in value.items())
        return {key: item for key, item in items if item is not _MISSING}
    if isinstance(value, list):
        return [item for item in (_fill(v, environ) for v in value) if item is not _MISSING]
    if not isinstance(value, str):
        return value
    whole = ENV_PLACEHOLDER.fullmatch(value.strip())
    if whole:
        return environ.get(whole.group(1), _MISSING)
    return ENV_PLACEHOLDER.sub(lambda match: environ.get(match.group(1), ""), value)
