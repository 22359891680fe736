"""Templates: the Jinja2 environment (made at the first render) and the filters pages use."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard._version import __version__

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).parent / "templates"

STATE_LABELS = {
    "SCHEDULED": "Scheduled",
    "PENDING": "Pending",
    "RUNNING": "Running",
    "COMPLETED": "Completed",
    "FAILED": "Failed",
    "CANCELLING": "Cancelling",
    "CANCELLED": "Cancelled",
    "CRASHED": "Crashed",
    "AWAITING_RETRY": "Awaiting retry",
}
STATUS_LABELS = {"READY": "Ready", "NOT_READY": "Not ready", "PAUSED": "Paused"}


def _now() -> datetime:
    return datetime.now(UTC)


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def ago(moment: datetime | None) -> str:
    """``"12 s ago"``, ``"in 5 min"``, ``"just now"``; ``"never"`` for no time."""
    if moment is None:
        return "never"
    seconds = (_now() - moment).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    return f"{_span(seconds)} ago" if seconds > 0 else f"in {_span(-seconds)}"


def when(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "—"
    seconds = ((end or _now()) - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    return str(timedelta(seconds=int(seconds)))


def interval(seconds: float) -> str:
    """``5400`` → ``"1 h 30 min"``."""
    rest = int(seconds)
    parts = []
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if rest >= size:
            parts.append(f"{rest // size} {unit}")
            rest %= size
    return " ".join(parts) or f"{seconds:g} s"


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def state_label(state: str) -> str:
    return STATE_LABELS.get(str(state), str(state).title())


def status_label(status: str) -> str:
    return STATUS_LABELS.get(str(status), str(status).title())


def css_name(value: str) -> str:
    """``NOT_READY`` → ``not-ready``, for class names."""
    return str(value).lower().replace("_", "-")


def level_name(level: int) -> str:
    for threshold, name in ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO")):
        if level >= threshold:
            return name
    return "DEBUG"


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=ago,
        when=when,
        pretty_json=pretty_json,
        interval=interval,
        state_label=state_label,
        status_label=status_label,
        css=css_name,
        level_name=level_name,
    )
    env.globals.update(version=__version__, duration=duration)
    return env


def render(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(context)
