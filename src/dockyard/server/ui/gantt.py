"""The task timeline of a flow run's page: its task runs and subflow runs as bars on one time
axis (a Gantt chart), drawn as SVG by ``templates/runs/_gantt.html``.

Pure functions, spans in and coordinates out. :func:`layout` places each bar by its start and
its length; in start order, bars that overlap in time go on separate rows (each bar on the
first row whose last bar ended before it starts, so rows are reused), in duration order each
bar has its own row, longest first. A retried run's attempts, and its waits between them, are
the segments of its bar. ``queries.gantt_spans`` reads the spans.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dockyard._states import FINAL_STATES, STATE_NAMES
from dockyard.server.ui.rendering import interval, iso, state_label

MAX_BARS = 500
COUNT_AT_MOST = 100_000  # a page that refreshes itself does not count further than this
ORDERS = ("start", "duration")

# the geometry, in SVG user units
WIDTH = 1000.0
PAD = 10.0  # left and right of the time axis
AXIS = 24.0  # the band of tick labels above the rows
ROW = 26.0
BAR = 16.0
MIN_BAR = 3.0  # a task whose result came from the cache takes no time, but is still seen
MIN_HIT = 8.0  # the narrowest target a pointer has to hit
CHAR = 6.4  # about the width of one character of a label
GAP = 4.0
MOST_TICKS = 8
TICK_STEPS = (
    *(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5),
    *(1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800),
    *(3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800),
)
# states told apart without colour: a mark before the name, and a fill pattern (all but
# COMPLETED, which is plain)
GLYPHS = {
    "COMPLETED": "✓",
    "FAILED": "✗",
    "CRASHED": "⚠",
    "RUNNING": "▶",
    "AWAITING_RETRY": "↻",
    "CANCELLING": "⊘",
    "CANCELLED": "⊘",
    "PAUSED": "‖",
    "PENDING": "…",
    "SCHEDULED": "…",
}
PLAIN = frozenset({"COMPLETED"})

# What the engine logs when a task's attempt failed and another follows
# (``sdk.runtime.task_runs._retry``): a task run is recorded once, when it ends, so these
# lines are where its attempts' times are kept. RETRY_LIKE finds them in SQL.
RETRY_LINE = re.compile(r"attempt (\d+) of \d+ failed with .*; retrying in ([0-9.eE+-]+) s", re.S)
RETRY_LIKE = "attempt % failed with %; retrying in % s"
LONGEST_WAIT = 1e8  # seconds: a delay beyond this is no delay a chart can draw

Change = tuple[str, datetime]  # a state, and since when


@dataclass(frozen=True)
class Span:
    """A task run or a subflow run that started, as the chart needs it.

    ``end`` is None while it runs; ``history`` is its states in order (state, since), when
    known, for its attempts and waits; empty, the bar is one piece in its own state.
    """

    id: uuid.UUID
    name: str
    state: str
    start: datetime
    end: datetime | None = None
    kind: str = "task"  # or "subflow"
    attempts: int = 1
    cached: bool = False
    history: tuple[Change, ...] = ()

    @property
    def href(self) -> str:
        """Its own page: the task run's, or the subflow run's."""
        return f"/runs/{self.id}" if self.kind == "subflow" else f"/task-runs/{self.id}"


@dataclass(frozen=True)
class Segment:
    """A piece of a bar: one attempt (``attempt`` from 1), or a wait before a retry (0)."""

    state: str
    start: datetime
    end: datetime
    attempt: int
    x: float = 0.0
    width: float = 0.0

    @property
    def patterned(self) -> bool:
        return self.state not in PLAIN


@dataclass(frozen=True)
class Bar:
    span: Span
    lane: int
    end: datetime  # its own, or now for one still running
    segments: tuple[Segment, ...]
    x: float
    y: float
    width: float
    title: str
    label: str = ""
    label_x: float = 0.0
    label_anchor: str = "start"
    splits: tuple[float, ...] = ()  # where an attempt after the first starts

    @property
    def running(self) -> bool:
        return self.span.end is None

    @property
    def seconds(self) -> float:
        return (self.end - self.span.start).total_seconds()

    @property
    def attempts(self) -> int:
        return max(self.span.attempts, max(s.attempt for s in self.segments))

    @property
    def hit_x(self) -> float:
        return round(min(self.x, WIDTH - MIN_HIT), 2)

    @property
    def hit_width(self) -> float:
        return round(max(self.width, MIN_HIT), 2)

    @property
    def height(self) -> float:
        return BAR

    @property
    def arrow(self) -> str:
        """The tip that marks a bar still running: an open end pointing on."""
        tip = self.x + self.width
        return f"M{tip:.2f},{self.y:.2f} l7,{BAR / 2:g} l-7,{BAR / 2:g} z"


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    order: str
    bars: tuple[Bar, ...] = ()
    total: int = 0  # bars there are, of which the first MAX_BARS are drawn
    lanes: int = 0
    origin: datetime | None = None  # the time at 0 on the axis
    ticks: tuple[Tick, ...] = ()
    now_x: float | None = None
    states: tuple[str, ...] = ()  # in the legend

    @property
    def capped(self) -> bool:
        return self.total > len(self.bars)

    @property
    def total_text(self) -> str:
        return f"{self.total:,}" + ("+" if self.total >= COUNT_AT_MOST else "")

    @property
    def legend(self) -> list[tuple[str, str, bool]]:
        """The states drawn: each with its mark, and whether its bars are patterned."""
        return [(s, GLYPHS.get(s, "•"), s not in PLAIN) for s in self.states]

    @property
    def retried(self) -> bool:
        return any(bar.splits for bar in self.bars)

    @property
    def width(self) -> float:
        return WIDTH

    @property
    def height(self) -> float:
        return AXIS + max(self.lanes, 1) * ROW + 4


def order_of(value: str | None) -> str:
    """The order asked for (``?gantt=``): ``start`` unless it is another one there is."""
    return value if value in ORDERS else "start"


def retry_history(
    start: datetime, end: datetime | None, state: str, retries: Iterable[tuple[datetime, str]]
) -> tuple[Change, ...]:
    """A task run's states, from the engine's lines about its failed attempts (their time,
    their text): RUNNING from its start, AWAITING_RETRY from each failure for the delay the
    line gives, RUNNING again, and its own state at its end. Other lines, and lines dated
    outside the run or inside an earlier wait, are skipped."""
    changes: list[Change] = [("RUNNING", start)]
    at = start
    for failed, message in sorted(retries):
        delay = _delay(message)
        if delay is None or failed < at or (end is not None and failed >= end):
            continue  # not a retry line, or not one of this run's attempts
        at = failed + timedelta(seconds=delay)
        if end is not None:
            at = min(at, end)
        changes += [("AWAITING_RETRY", failed), ("RUNNING", at)]
    if end is not None:
        changes.append((state, end))
    return tuple(changes)


def _delay(message: str) -> float | None:
    """The delay a retry line gives, in seconds; None if it is no retry line."""
    found = RETRY_LINE.fullmatch(message)
    try:
        delay = float(found.group(2)) if found else math.nan
    except ValueError:
        return None
    return delay if 0 <= delay <= LONGEST_WAIT else None


def periods(span: Span, end: datetime) -> list[Segment]:
    """The pieces of ``span``'s bar from its history (one piece without one): each attempt in
    the state it ended in (FAILED when a retry followed), each wait, other states as they
    were; what lies before its start or after ``end`` is cut off."""
    whole = Segment(span.state if span.end is not None else "RUNNING", span.start, end, 1)
    found: list[Segment] = []
    attempt, retried = 0, True
    history = span.history
    for index, (state, since) in enumerate(history):
        if state in FINAL_STATES:
            break
        after = history[index + 1] if index + 1 < len(history) else None
        if state == "RUNNING":
            attempt += retried
            retried = False
            shown = _outcome(after[0] if after else None, span)
        else:
            retried = retried or state == "AWAITING_RETRY"
            shown = state
        low, high = max(since, span.start), min(after[1] if after else end, end)
        if high > low:
            found.append(Segment(shown, low, high, attempt if state == "RUNNING" else 0))
    return found or [whole]


def _outcome(next_state: str | None, span: Span) -> str:
    if next_state is None:
        return span.state if span.end is not None else "RUNNING"
    if next_state == "AWAITING_RETRY":
        return "FAILED"
    return next_state if next_state in FINAL_STATES else "RUNNING"


def assign_lanes(spans: Sequence[Span], now: datetime) -> list[int]:
    """The row of each span (in start order): the first row whose last bar ended before it
    starts, else a new row."""
    ends: list[datetime] = []
    lanes = []
    for span in spans:
        end = span.end or now
        lane = next((i for i, last in enumerate(ends) if last < span.start), len(ends))
        if lane == len(ends):
            ends.append(end)
        ends[lane] = max(end, span.start)
        lanes.append(lane)
    return lanes


def ordered(spans: Iterable[Span], order: str, now: datetime) -> list[Span]:
    """By start (then id), or by duration, longest first (then by start)."""
    if order == "duration":
        return sorted(spans, key=lambda s: (s.start - (s.end or now), s.start, s.id))
    return sorted(spans, key=lambda s: (s.start, s.id))


def layout(
    spans: Iterable[Span],
    *,
    now: datetime,
    order: str = "start",
    total: int | None = None,
    limit: int = MAX_BARS,
    origin: datetime | None = None,
    until: datetime | None = None,
    live: bool = False,
) -> Chart:
    """Lay out the chart of ``spans``.

    Args:
        now: where bars still running end.
        order: ``start`` (rows shared by bars that do not overlap) or ``duration``.
        total: how many spans there are, when ``spans`` holds only the first ``limit`` of
            them (default: as many as given).
        limit: the most bars drawn.
        origin, until: the flow run's start and end, that the axis reaches at least.
        live: the run goes on: a line marks now.
    """
    chosen = ordered(spans, order, now)
    total = len(chosen) if total is None else max(total, min(len(chosen), limit))
    chosen = chosen[:limit]
    if not chosen:
        return Chart(order, total=total)
    ends = [max(s.end or now, s.start) for s in chosen]
    lanes = assign_lanes(chosen, now) if order == "start" else list(range(len(chosen)))
    first = min([s.start for s in chosen] + ([origin] if origin else []))
    last = max(ends + ([until] if until else []) + ([now] if live else []))
    seconds = max((last - first).total_seconds(), 0.001)
    scale = (WIDTH - 2 * PAD) / seconds

    def x_of(moment: datetime) -> float:
        return round(PAD + (moment - first).total_seconds() * scale, 2)

    bars = []
    for span, end, lane in zip(chosen, ends, lanes, strict=True):
        pieces = [
            Segment(p.state, p.start, p.end, p.attempt, x_of(p.start), x_of(p.end) - x_of(p.start))
            for p in periods(span, end)
        ]
        x, width = x_of(span.start), max(x_of(end) - x_of(span.start), MIN_BAR)
        if len(pieces) == 1:  # the whole bar, at least MIN_BAR wide
            pieces[0] = replace(pieces[0], attempt=1, x=x, width=round(width, 2))
        splits = tuple(p.x for i, p in enumerate(pieces) if p.attempt > 1 and _opens(pieces, i))
        y = AXIS + lane * ROW + (ROW - BAR) / 2
        title = _title(span, end, pieces)
        bars.append(
            Bar(span, lane, end, tuple(pieces), x, y, round(width, 2), title, splits=splits)
        )
    shown = {p.state for bar in bars for p in bar.segments}
    return Chart(
        order,
        bars=tuple(_labelled(bars)),
        total=total,
        lanes=max(lanes) + 1,
        origin=first,
        ticks=tuple(_ticks(seconds, scale)),
        now_x=x_of(now) if live and first <= now <= last else None,
        states=tuple(s for s in STATE_NAMES if s in shown),
    )


def _opens(pieces: list[Segment], index: int) -> bool:
    """Whether piece ``index`` is the first of its attempt."""
    return all(p.attempt != pieces[index].attempt for p in pieces[:index])


def _labelled(bars: list[Bar]) -> list[Bar]:
    """Each bar with its label (a mark of its state, its name) where there is room for it:
    inside the bar, else after it, else before it, else as much of it as fits in the widest
    of these; never over another bar or another label."""
    placed: dict[int, Bar] = {}
    rows: dict[int, list[int]] = {}
    for index, bar in enumerate(bars):
        rows.setdefault(bar.lane, []).append(index)
    for members in rows.values():
        members.sort(key=lambda i: bars[i].x)
        taken = 0.0  # the row is used up to here, by bars and labels
        for place, index in enumerate(members):
            bar = bars[index]
            right_end = bar.x + bar.width
            limit = bars[members[place + 1]].x if place + 1 < len(members) else WIDTH
            text = _label_text(bar)
            rooms = [
                (bar.width - 2 * GAP, bar.x + GAP, "start"),
                (limit - right_end - 2 * GAP, right_end + GAP, "start"),
                (bar.x - taken - 2 * GAP, bar.x - GAP, "end"),
            ]
            fits = [r for r in rooms if r[0] >= len(text) * CHAR]
            room, x, anchor = fits[0] if fits else max(rooms)
            shown = text if fits else _cut(text, room)
            taken = right_end
            if shown:
                if anchor == "start":
                    taken = max(taken, x + len(shown) * CHAR)
                placed[index] = replace(bar, label=shown, label_x=round(x, 2), label_anchor=anchor)
    return [placed.get(i, bar) for i, bar in enumerate(bars)]


def _label_text(bar: Bar) -> str:
    span = bar.span
    text = f"{GLYPHS.get(span.state, '•')} {span.name}"
    if span.kind == "subflow":
        text += " (subflow)"
    if bar.attempts > 1:
        text += f" ({bar.attempts} attempts)"
    if span.cached:
        text += " (cached)"
    return text


def _cut(text: str, room: float) -> str:
    fit = int(room // CHAR)
    return text[: fit - 1].rstrip() + "…" if fit >= 4 else ""


def _title(span: Span, end: datetime, pieces: list[Segment]) -> str:
    running = span.end is None
    kind = "subflow run" if span.kind == "subflow" else "task run"
    lines = [
        f"{span.name} ({kind})",
        f"State: {state_label(span.state)}",
        f"Start: {iso(span.start)}",
        f"End: {'still running' if running else iso(end)}",
        f"Duration: {seconds_text((end - span.start).total_seconds())}"
        + (" so far" if running else ""),
    ]
    attempts = max(p.attempt for p in pieces)
    if attempts > 1:
        lines.append(f"Attempts: {attempts}")
        for p in pieces:
            what = f"attempt {p.attempt}" if p.attempt else "waiting to retry"
            took = seconds_text((p.end - p.start).total_seconds())
            lines.append(
                f"  {what}: {state_label(p.state)}, {iso(p.start)} to {iso(p.end)} ({took})"
            )
    elif span.attempts > 1:
        lines.append(f"Attempts: {span.attempts} (the times of each are not recorded)")
    if span.cached:
        lines.append("Its result came from the cache.")
    return "\n".join(lines)


def seconds_text(seconds: float) -> str:
    """A length of time to the millisecond: ``"0.312 s"``, ``"2 min 05.100 s"``."""
    if seconds < 60:
        return f"{seconds:.3f} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes:.0f} min {rest:06.3f} s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours} h {minutes:02d} min {rest:06.3f} s"


def _ticks(seconds: float, scale: float) -> Iterable[Tick]:
    """Tick marks at a round step, at most about MOST_TICKS of them, from 0."""
    step = next((s for s in TICK_STEPS if seconds / s <= MOST_TICKS), None)
    if step is None:
        biggest = TICK_STEPS[-1]
        step = biggest * math.ceil(seconds / (MOST_TICKS * biggest))
    for number in range(int(seconds / step + 1e-9) + 1):
        offset = number * step
        x = round(PAD + offset * scale, 2)
        anchor = "start" if x < 40 else "end" if x > WIDTH - 40 else "middle"
        yield Tick(x, _offset_text(offset, step), anchor)


def _offset_text(offset: float, step: float) -> str:
    if step >= 1:
        return interval(round(offset))
    return f"{round(offset, 3):g} s"
