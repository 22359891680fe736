"""How the CLI prints: tables, JSON, states in colour, times, errors.

Tables are made for people; ``--json`` output for programs. When stdout is not a terminal
the console is very wide, so nothing is wrapped or cut in a pipe or a file.

Text that came from the server (names, descriptions, messages, log lines, tracebacks) may
hold terminal escape sequences: every function here that prints text passes it through
:func:`dockyard._printable.printable` first. ``--json`` output is escaped by JSON itself.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from dockyard._printable import printable
from dockyard.exceptions import DockyardError, NotFound

STATE_STYLES = {
    "SCHEDULED": "yellow",
    "PENDING": "cyan",
    "RUNNING": "blue",
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "bold red",
    "CANCELLING": "magenta",
    "CANCELLED": "dim",
    "AWAITING_RETRY": "yellow",
    "READY": "green",
    "NOT_READY": "red",
    "PAUSED": "yellow",
    "ONLINE": "green",
    "OFFLINE": "red",
}


@functools.cache
def console() -> Console:
    """Return the console writing to stdout."""
    width = None if sys.stdout.isatty() else 100_000
    return Console(width=width, highlight=False)


def emit(renderable: RenderableType) -> None:
    """Print a table or grid on stdout; in a pipe, without the padding at line ends."""
    out = console()
    if out.is_terminal:
        out.print(renderable)
        return
    with out.capture() as captured:
        out.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def say(message: str, style: str | None = None) -> None:
    """Print a line for people (no markup is interpreted in ``message``, no control
    character is printed as is)."""
    console().print(Text(printable(message, lines=True), style=style or ""))


def styled(value: object) -> Text:
    """Return a state or status name in its colour."""
    name = str(value)
    return Text(printable(name), style=STATE_STYLES.get(name, ""))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, ids: str = "ID") -> None:
    """Print a table; the column named ``ids`` is never wrapped or cut, and each cell's
    text stays on its line (newlines and tabs in it are shown escaped)."""
    grid = Table(*columns, header_style="bold", box=None, pad_edge=False)
    for column in grid.columns:
        if column.header == ids:
            column.no_wrap = True
            column.min_width = 36
        else:
            column.overflow = "fold"
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else Text(_cell(cell)) for cell in row))
    emit(grid)


def fields(rows: Iterable[tuple[str, Any]]) -> None:
    """Print ``name: value`` lines, one per field (a value may span lines)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for name, value in rows:
        grid.add_row(name, value if isinstance(value, Text) else Text(_cell(value, lines=True)))
    emit(grid)


def _cell(value: Any, *, lines: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict | list):
        # JSON escapes every control character; its own line breaks are kept
        return json.dumps(value, indent=2, default=str) if value else "-"
    return printable(str(value), lines=lines)


def when(value: datetime | None, *, millis: bool = False) -> str:
    """Return a time in the local time zone (to the millisecond with ``millis``), or "-"."""
    if value is None:
        return "-"
    try:
        local = value.astimezone()
        zone = ""
    except OverflowError:  # near year 1 or 9999 the local time may not exist: show UTC
        local, zone = value, " UTC"
    text = local.strftime("%Y-%m-%d %H:%M:%S.%f")
    return (text[:-3] if millis else text[:-7]) + zone


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """Return how long ago ``value`` was ("3s ago", "in 5m"), or "never"."""
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    amount = abs(seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if amount >= size:
            text = f"{amount // size}{unit}"
            break
    else:
        text = f"{amount}s"
    return f"in {text}" if seconds < 0 else f"{text} ago"


def print_error(error: DockyardError) -> None:
    """Print an error for people on stderr: its message, then suggestions if any."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    lines = printable(str(error), lines=True).splitlines() or [type(error).__name__]
    err.print(Text(f"Error: {lines[0]}", style="bold red"))
    for line in lines[1:]:
        err.print(Text(line, style="red"))
    suggestions = error.suggestions if isinstance(error, NotFound) else []
    if suggestions and not all(name in str(error) for name in suggestions):
        shown = printable(", ".join(suggestions))
        err.print(Text(f"did you mean: {shown}", style="yellow"))
