"""The one definition of hiding credentials a URL carries (``https://user:token@host``)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact_url", "redact_urls"]

_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1***@", text)


def redact_urls(value: Any) -> Any:
    """A copy of ``value`` (JSON: strings inside dicts and lists) with URL credentials hidden."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, dict):
        return {key: redact_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_urls(item) for item in value]
    return value
