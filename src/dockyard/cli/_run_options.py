"""Reading ``deployment run``'s options: ``--param k=v``, ``--params JSON``, ``--start-in``."""

from __future__ import annotations

import json
import re
from typing import Any

from dockyard.exceptions import DockyardError

__all__ = ["parse_duration", "parse_pairs", "parse_params"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _value(text: str) -> Any:
    """A value as JSON when it parses (``3``, ``true``, ``[1, 2]``, ``"x"``), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """``["k=v", ...]`` → ``{"k": v}``, each value parsed as JSON when it parses.

    Raises:
        DockyardError: an item has no ``=`` or an empty key.
    """
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise DockyardError(f"{option} takes KEY=VALUE, got {pair!r}")
        values[key.strip()] = _value(text)
    return values


def parse_params(params_json: str | None, pairs: list[str] | None) -> dict[str, Any]:
    """The run's parameters: ``--params`` (a JSON object), then each ``--param`` over it.

    Raises:
        DockyardError: ``--params`` is not a JSON object, or a ``--param`` is malformed.
    """
    values: dict[str, Any] = {}
    if params_json is not None:
        try:
            loaded = json.loads(params_json)
        except ValueError as exc:
            raise DockyardError(f"--params is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise DockyardError('--params takes a JSON object, e.g. \'{"repo_name": "a/b"}\'')
        values.update(loaded)
    values.update(parse_pairs(pairs, "--param"))
    return values


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``10m``, ``2h``, ``1d`` or plain seconds (``90``).

    Raises:
        DockyardError: anything else.
    """
    match = _DURATION.match(text)
    if match is None:
        raise DockyardError(
            f"--start-in takes a duration such as 30s, 10m, 2h or 1d (or seconds); got {text!r}"
        )
    return float(match.group(1)) * _UNITS[match.group(2).lower()]
