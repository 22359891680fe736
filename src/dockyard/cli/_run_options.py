"""Reading ``deployment run``'s options: ``--param k=v``, ``--params JSON``, ``--start-in``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from dockyard.cli._common import parse_json
from dockyard.exceptions import DockyardError

__all__ = ["parse_duration", "parse_pairs", "parse_params", "start_time"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_pairs(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """``["k=v", ...]`` → ``{"k": v}``, each value parsed as JSON when it parses
    (``3``, ``true``, ``[1, 2]``, ``"x"``), else kept as text (``NaN`` is not JSON: text).

    Raises:
        DockyardError: an item has no ``=`` or an empty key, or its value is JSON the server
            would refuse (nested too deeply, a NUL character).
    """
    values: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise DockyardError(f"{option} takes KEY=VALUE, got {pair!r}")
        values[key.strip()] = parse_json(text, f"{option} {key.strip()}", or_text=True)
    return values


def parse_params(params_json: str | None, pairs: list[str] | None) -> dict[str, Any]:
    """The run's parameters: ``--params`` (a JSON object), then each ``--param`` over it.

    Raises:
        DockyardError: ``--params`` is not a JSON object, or a ``--param`` is malformed.
    """
    values: dict[str, Any] = {}
    if params_json is not None:
        loaded = parse_json(params_json, "--params")
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


def start_time(text: str) -> datetime:
    """The time ``--start-in`` ``text`` from now.

    Raises:
        DockyardError: ``text`` is not a duration, or ends after the year 9999.
    """
    seconds = parse_duration(text)
    try:
        return datetime.now(UTC) + timedelta(seconds=seconds)
    except OverflowError:
        raise DockyardError(
            f"--start-in {text.strip()} ends after the year 9999; give a shorter duration, "
            "such as 30d"
        ) from None
