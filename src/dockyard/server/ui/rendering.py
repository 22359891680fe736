"""Templates: the Jinja2 environment (made at the first render) and the filters pages use."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
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


# Under this many hours a span keeps its minutes: "in 1 h 58 min" is not "in 2 h" when the
# next run of a schedule is what a person is waiting for.
MINUTES_UNTIL_HOURS = 6


def _span(seconds: float) -> str:
    """A length of time rounded to the nearest unit that still matters: ``"42 s"``,
    ``"7 min"``, ``"1 h 58 min"``, ``"9 h"``, ``"3 d"``."""
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < MINUTES_UNTIL_HOURS * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    hours = round(seconds / 3600)
    return f"{hours} h" if hours < 48 else f"{round(seconds / 86400)} d"


def ago(moment: datetime | None) -> str:
    """``"12 s ago"``, ``"in 5 min"``, ``"just now"``; ``"never"`` for no time."""
    if moment is None:
        return "never"
    seconds = (_now() - moment).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    return f"{_span(seconds)} ago" if seconds > 0 else f"in {_span(-seconds)}"


# How a time is written in UTC on the server; dockyard.js writes the same in the browser's
# time zone (its own zone's name in place of "UTC").
TIME_STYLES = {
    "datetime": "%Y-%m-%d %H:%M:%S UTC",
    "time": "%H:%M:%S UTC",
    "log": "%H:%M:%S.%f",  # cut to the millisecond below
}


def utc_text(moment: datetime, style: str = "datetime") -> str:
    """``"2026-12-02 10:11:12 UTC"``, ``"10:11:12 UTC"`` (``time``) or ``"10:11:12.345"``
    (``log``: a log line's time)."""
    text = moment.astimezone(UTC).strftime(TIME_STYLES[style])
    return text[:12] if style == "log" else text


def when(moment: datetime | None) -> str:
    """``"2026-12-02 10:11:12 UTC"``, or ``"—"`` for no time: the text of a tooltip."""
    if moment is None:
        return "—"
    return utc_text(moment)


def iso(moment: datetime) -> str:
    """``"2026-12-02T10:11:12.345Z"``: the ``datetime`` attribute of a ``<time>``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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


TRACEBACK_START = "Traceback (most recent call last):"
SUMMARY_CHARS = 300


@dataclass(frozen=True)
class Failure:
    """A state message or a task run's error, split for showing: one line for a header or a
    table (the exception line of a traceback), and the whole text when it says more."""

    summary: str
    full: str | None = None
    traceback: bool = False


def failure(message: str | None) -> Failure:
    """Split ``message``: a traceback is summed up by its exception line (``ValueError:
    boom``, which the engine writes before it, and a bare traceback ends with), another text
    of several lines by its first; a one-line message is its own summary."""
    text = (message or "").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) <= 1 and len(text) <= SUMMARY_CHARS:
        return Failure(text)
    has_traceback = TRACEBACK_START in text
    if has_traceback:
        head = text.split(TRACEBACK_START, 1)[0].strip()
        summary = head.splitlines()[0] if head else lines[-1].strip()
    else:
        summary = lines[0].strip()
    if len(summary) > SUMMARY_CHARS:
        summary = summary[: SUMMARY_CHARS - 1].rstrip() + "…"
    return Failure(summary, text, has_traceback)


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
        iso=iso,
        utc_text=utc_text,
        pretty_json=pretty_json,
        interval=interval,
        state_label=state_label,
        status_label=status_label,
        css=css_name,
        level_name=level_name,
        failure=failure,
    )
    env.globals.update(version=__version__, duration=duration)
    return env


def render(name: str, context: dict[str, Any]) -> str:
    return environment().get_template(name).render(context)
