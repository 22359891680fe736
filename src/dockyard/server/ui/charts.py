"""Charts drawn on the server as SVG: numbers in, shapes out.

Pure functions: a page hands in counts, runs and times and gets frozen dataclasses with every
coordinate worked out; the macros of ``templates/charts/`` write them as SVG (autoescaped, no
script, no inline style). No chart says anything by colour alone: each kind of bar has its own
fill pattern and each state of a run its own marker shape, both named in a legend, and every
bar, column and dot carries a ``<title>`` that says in words what it counts.
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from dockyard.schemas import StateType as S
from dockyard.server.ui import rendering

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICK_LABEL_ROOM = 22  # half the width of the longest time label ("Thu 03"), in viewBox units


@dataclass(frozen=True)
class Plot:
    """A chart's viewBox (``width`` by ``height``) and the drawing area inside its margins."""

    width: int = 1000
    height: int = 200
    left: int = 56
    right: int = 12
    top: int = 12
    bottom: int = 26

    @property
    def inner_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def base(self) -> float:
        """The y of the value 0 (the x axis)."""
        return self.height - self.bottom

    def y(self, value: float, top_value: float) -> float:
        return round(self.base - (self.base - self.top) * value / top_value, 1)


@dataclass(frozen=True)
class Tick:
    at: float  # x for a time axis, y for a value axis
    label: str


@dataclass(frozen=True)
class Kind:
    """What a part of a bar or a dot stands for: ``key`` names its CSS class and pattern."""

    key: str
    label: str
    states: tuple[str, ...] = ()


# Runs by state: the four final states, and the rest (not finished) as one group.
FINAL_KINDS = tuple(Kind(s.lower(), s.title(), (s,)) for s in ("COMPLETED", "FAILED", "CRASHED"))
CANCELLED = Kind("cancelled", "Cancelled", ("CANCELLED",))
NOT_FINISHED = Kind(
    "unfinished",
    "Not finished",
    tuple(str(s) for s in S if s not in (S.COMPLETED, S.FAILED, S.CRASHED, S.CANCELLED)),
)
RUN_KINDS = (*FINAL_KINDS, CANCELLED, NOT_FINISHED)
KIND_OF_STATE = {state: kind for kind in RUN_KINDS for state in kind.states}
# a dot's shape by its run's kind: the legend shows each beside its name
SHAPES = {
    "completed": "circle",
    "failed": "cross",
    "crashed": "triangle",
    "cancelled": "square",
    "unfinished": "ring",
}
WAITING = Kind("scheduled", "Scheduled")
LATE = Kind("late", "Late")
RUNNING = Kind("running", "Running")


# ---------------------------------------------------------------- time


@dataclass(frozen=True)
class Window:
    """A chart's time range (``?chart=KEY``, as the run list's ``?range=KEY``): a bar per
    ``step`` and a labelled tick every ``tick``."""

    key: str
    label: str
    span: timedelta
    step: timedelta
    step_label: str
    tick: timedelta
    tick_format: str


HOUR, DAY = timedelta(hours=1), timedelta(days=1)
WINDOWS = {
    w.key: w
    for w in (
        Window("24h", "24 h", 24 * HOUR, HOUR, "hour", 3 * HOUR, "%H:%M"),
        Window("7d", "7 days", 7 * DAY, 6 * HOUR, "6 hours", DAY, "%a %d"),
        Window("30d", "30 days", 30 * DAY, DAY, "day", 5 * DAY, "%b %d"),
    )
}
DEFAULT_WINDOW = WINDOWS["24h"]


def window(key: str | None) -> Window:
    """The window ``key`` names; the default (24 h) for none or an unknown one."""
    return WINDOWS.get(key or "", DEFAULT_WINDOW)


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a whole number of ``step`` since the epoch (UTC)."""
    return EPOCH + step * ((moment - EPOCH) // step)


def bucket_edges(now: datetime, span: timedelta, step: timedelta) -> list[datetime]:
    """Edges of the buckets that cover ``[now - span, now]``: on whole steps (UTC), so the
    first and the last bucket may be shorter than a step."""
    start = now - span
    edges = [start]
    edge = floor_to(start, step) + step
    while edge < now:
        edges.append(edge)
        edge += step
    return [*edges, now]


def _time_axis(start: datetime, end: datetime, plot: Plot) -> Callable[[datetime], float]:
    scale = plot.inner_width / max((end - start).total_seconds(), 1e-9)
    return lambda t: round(plot.left + (t - start).total_seconds() * scale, 1)


def time_ticks(
    start: datetime, end: datetime, every: timedelta, fmt: str, plot: Plot
) -> list[Tick]:
    x = _time_axis(start, end, plot)
    tick = floor_to(start, every) + every
    ticks = []
    # a label is centred on its tick: none so near the right edge that it would be cut
    while tick < end and x(tick) <= plot.width - TICK_LABEL_ROOM:
        ticks.append(Tick(x(tick), tick.strftime(fmt)))
        tick += every
    return ticks


def span_text(start: datetime, end: datetime) -> str:
    """``"Mar 03 10:00 to 11:00 UTC"``; both dates when they differ."""
    if start.date() == end.date():
        return f"{start:%b %d %H:%M} to {end:%H:%M} UTC"
    return f"{start:%b %d %H:%M} to {end:%b %d %H:%M} UTC"


# ---------------------------------------------------------------- values


def count_ticks(peak: float, plot: Plot, lines: int = 4) -> tuple[float, list[Tick]]:
    """The top of a count axis (a round number at least ``peak``) and its ticks."""
    step = max(_round_step(max(peak, 1) / lines, (1, 2, 5)), 1)  # no half runs
    top = step * math.ceil(max(peak, 1) / step)
    return top, [Tick(plot.y(v, top), f"{v:,g}") for v in _multiples(step, top)]


# durations that read well on an axis, in seconds
DURATION_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)


def duration_ticks(peak: float, plot: Plot, lines: int = 4) -> tuple[float, list[Tick]]:
    """The top of a duration axis (seconds) and its ticks, labelled ``"10 min"``."""
    wanted = max(peak, 1) / lines
    step = next((s for s in DURATION_STEPS if s >= wanted), None)
    if step is None:
        step = 43200 * math.ceil(wanted / 43200)
    top = step * math.ceil(max(peak, 1) / step)
    return top, [
        Tick(plot.y(v, top), rendering.interval(v) if v else "0") for v in _multiples(step, top)
    ]


def _round_step(wanted: float, factors: tuple[int, ...]) -> float:
    power = 10.0 ** math.floor(math.log10(wanted))
    return next(f * power for f in (*factors, 10) if f * power >= wanted)


def _multiples(step: float, top: float) -> list[float]:
    return [step * i for i in range(round(top / step) + 1)]


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


# ---------------------------------------------------------------- runs over time


@dataclass(frozen=True)
class Segment:
    """One kind's part of a bar, a link to the runs of that kind."""

    kind: Kind
    count: int
    y: float
    height: float
    href: str
    label: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    total: int
    title: str
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class LegendEntry:
    kind: Kind
    count: int
    href: str = ""
    shape: str = ""  # a dot's: the legend draws it instead of a patch of the kind's pattern

    @property
    def marker_path(self) -> str:
        return marker(self.shape, 7, 7, 5)


@dataclass(frozen=True)
class BarChart:
    id: str
    plot: Plot
    bars: tuple[Bar, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    legend: tuple[LegendEntry, ...]
    total: int
    description: str


def run_bars(
    chart_id: str,
    edges: Sequence[datetime],
    counts: Mapping[tuple[int, str], int],
    win: Window,
    href: Callable[[Kind], str],
    plot: Plot = Plot(),
) -> BarChart:
    """Stacked bars of runs by kind of state, one per bucket between consecutive ``edges``.

    Args:
        counts: runs by ``(bucket number, state)``.
        href: the link of a kind's segments and legend entry (its runs over the range).
    """
    per_bucket = [dict.fromkeys(RUN_KINDS, 0) for _ in edges[1:]]
    for (bucket, state), count in counts.items():
        per_bucket[bucket][KIND_OF_STATE.get(state, NOT_FINISHED)] += count
    top, y_ticks = count_ticks(max((sum(b.values()) for b in per_bucket), default=0), plot)
    x = _time_axis(edges[0], edges[-1], plot)
    bars = []
    for (start, end), by_kind in zip(itertools.pairwise(edges), per_bucket, strict=True):
        when = span_text(start, end)
        segments, below = [], 0
        for kind, count in by_kind.items():
            if count:
                y_top, y_bottom = plot.y(below + count, top), plot.y(below, top)
                name = kind.label.lower()
                label = f"{when}: {count:,} {name}. Opens the {name} runs of the last {win.label}"
                height = round(y_bottom - y_top, 1)
                segments.append(Segment(kind, count, y_top, height, href(kind), label))
                below += count
        said = ", ".join(f"{c:,} {k.label.lower()}" for k, c in by_kind.items() if c)
        title = f"{when}: {_plural(below, 'run')}" + (f" ({said})" if said else "")
        left, right = x(start), x(end)
        bars.append(Bar(left, round(max(right - left - 1, 0.5), 1), below, title, tuple(segments)))
    totals = {k: sum(b[k] for b in per_bucket) for k in RUN_KINDS}
    return BarChart(
        id=chart_id,
        plot=plot,
        bars=tuple(bars),
        x_ticks=tuple(time_ticks(edges[0], edges[-1], win.tick, win.tick_format, plot)),
        y_ticks=tuple(y_ticks),
        legend=tuple(LegendEntry(k, c, href(k)) for k, c in totals.items()),
        total=sum(totals.values()),
        description=f"Flow runs of the last {win.label} by state, a bar per {win.step_label}",
    )


# ---------------------------------------------------------------- durations


@dataclass(frozen=True)
class DotRun:
    """A run as a dot: when it started and how long it ran (until now if still running)."""

    id: uuid.UUID
    name: str
    state: str
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Dot:
    kind: Kind
    path: str
    href: str
    title: str


@dataclass(frozen=True)
class DotChart:
    id: str
    plot: Plot
    dots: tuple[Dot, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    legend: tuple[LegendEntry, ...]
    capped: bool
    description: str


def marker(shape: str, x: float, y: float, r: float = 4.0) -> str:
    """An SVG path of a marker centred on ``(x, y)``."""
    if shape in ("circle", "ring"):
        return f"M{x - r:.1f} {y:.1f}a{r} {r} 0 1 0 {2 * r} 0a{r} {r} 0 1 0 {-2 * r} 0Z"
    if shape == "square":
        s = r * 0.85
        return f"M{x - s:.1f} {y - s:.1f}h{2 * s:.1f}v{2 * s:.1f}h{-2 * s:.1f}Z"
    if shape == "triangle":
        return f"M{x:.1f} {y - r:.1f}L{x + r:.1f} {y + r * 0.8:.1f}L{x - r:.1f} {y + r * 0.8:.1f}Z"
    s = r * 0.8  # a cross
    return (
        f"M{x - s:.1f} {y - s:.1f}L{x + s:.1f} {y + s:.1f}"
        f"M{x - s:.1f} {y + s:.1f}L{x + s:.1f} {y - s:.1f}"
    )


def duration_dots(
    chart_id: str,
    runs: Sequence[DotRun],
    start: datetime,
    now: datetime,
    win: Window,
    *,
    capped: bool,
    plot: Plot = Plot(),
) -> DotChart:
    """A dot per run: x its start, y its duration, its shape its kind of state."""
    seconds = [((r.end or now) - r.start).total_seconds() for r in runs]
    top, y_ticks = duration_ticks(max(seconds, default=0), plot)
    x = _time_axis(start, now, plot)
    dots, counts = [], dict.fromkeys(RUN_KINDS, 0)
    for run, took in zip(runs, seconds, strict=True):
        kind = KIND_OF_STATE.get(run.state, NOT_FINISHED)
        counts[kind] += 1
        ran = rendering.duration(run.start, run.end or now) + ("" if run.end else " so far")
        started = f"{run.start:%b %d %H:%M:%S} UTC"
        title = f"{run.name}: {rendering.state_label(run.state)}, started {started}, ran {ran}"
        path = marker(SHAPES[kind.key], x(run.start), plot.y(max(took, 0), top))
        dots.append(Dot(kind, path, f"/runs/{run.id}", title))
    return DotChart(
        id=chart_id,
        plot=plot,
        dots=tuple(dots),
        x_ticks=tuple(time_ticks(start, now, win.tick, win.tick_format, plot)),
        y_ticks=tuple(y_ticks),
        legend=tuple(LegendEntry(k, c, shape=SHAPES[k.key]) for k, c in counts.items()),
        capped=capped,
        description=(
            f"Durations of {_plural(len(dots), 'flow run')} that started in the last {win.label}"
        ),
    )


# ---------------------------------------------------------------- a pool over the last hours


@dataclass(frozen=True)
class Part:
    kind: Kind
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    title: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Limit:
    y: float
    label: str


@dataclass(frozen=True)
class ColumnChart:
    id: str
    plot: Plot
    columns: tuple[Column, ...]
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    legend: tuple[LegendEntry, ...]
    limit: Limit | None
    description: str


def moments(now: datetime, span: timedelta, step: timedelta) -> list[datetime]:
    """The times a pool's chart samples: every ``step`` back from ``now`` over ``span``."""
    return [now - step * i for i in range(span // step, -1, -1)]


def stacked_columns(
    chart_id: str,
    name: str,
    times: Sequence[datetime],
    series: Sequence[tuple[Kind, Sequence[int]]],
    *,
    limit: int | None = None,
    plot: Plot = Plot(height=150),
) -> ColumnChart:
    """A column per moment of ``times``, stacking each series' count at that moment; with a
    ``limit``, a horizontal line at it (the top of the axis reaches it)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(times))]
    top, y_ticks = count_ticks(max([*totals, limit or 0]), plot)
    half = (times[1] - times[0]) / 2 if len(times) > 1 else timedelta(minutes=5)
    start, end = times[0] - half, times[-1] + half
    x = _time_axis(start, end, plot)
    columns = []
    for i, moment in enumerate(times):
        parts, below = [], 0
        for kind, values in series:
            if values[i]:
                y_top = plot.y(below + values[i], top)
                parts.append(Part(kind, y_top, round(plot.y(below, top) - y_top, 1)))
                below += values[i]
        said = ", ".join(f"{values[i]:,} {kind.label.lower()}" for kind, values in series)
        left, right = x(moment - half), x(moment + half)
        title = f"{moment:%b %d %H:%M} UTC, {name}: {said}"
        columns.append(Column(left, round(max(right - left - 1, 0.5), 1), title, tuple(parts)))
    line = Limit(plot.y(limit, top), f"limit {limit:,}") if limit is not None else None
    return ColumnChart(
        id=chart_id,
        plot=plot,
        columns=tuple(columns),
        x_ticks=tuple(time_ticks(start, end, timedelta(hours=1), "%H:%M", plot)),
        y_ticks=tuple(y_ticks),
        legend=tuple(LegendEntry(kind, values[-1]) for kind, values in series),
        limit=line,
        description=f"{name}, every {_span(half * 2)} over the last {_span(times[-1] - times[0])}",
    )


def _span(delta: timedelta) -> str:
    return rendering.interval(delta.total_seconds())


class OverTime(Protocol):
    """A queue's runs at each moment (``queries.pool_over_time``)."""

    @property
    def scheduled(self) -> Sequence[int]: ...
    @property
    def late(self) -> Sequence[int]: ...
    @property
    def running(self) -> Sequence[int]: ...


POOL_SPAN = timedelta(hours=6)
POOL_STEP = timedelta(minutes=10)
QUEUES_DRAWN = 6


@dataclass(frozen=True)
class PoolCharts:
    """A pool over the last hours: a chart of waiting runs per queue, and its slots."""

    span: str
    step: str
    queues: tuple[tuple[str, ColumnChart], ...]  # each queue's name and chart
    slots: ColumnChart
    more_queues: int


def pool_charts(
    times: Sequence[datetime],
    queues: Sequence[tuple[uuid.UUID, str]],
    found: Mapping[uuid.UUID | None, OverTime],
    limit: int | None,
) -> PoolCharts:
    """Charts of a pool's queues (in the order given; runs whose queue is gone as one more)
    and of its running runs against its concurrency ``limit``."""
    zeros = [0] * len(times)
    named = [*queues, *([(None, "(no queue)")] if None in found else [])]
    drawn = []
    for number, (queue_id, name) in enumerate(named[:QUEUES_DRAWN]):
        counts = found.get(queue_id)
        series = [
            (WAITING, counts.scheduled if counts else zeros),
            (LATE, counts.late if counts else zeros),
        ]
        drawn.append((name, stacked_columns(f"queue-{number}", f"queue {name}", times, series)))
    running = [sum(c.running[i] for c in found.values()) for i in range(len(times))]
    slots = stacked_columns("slots", "slots in use", times, [(RUNNING, running)], limit=limit)
    return PoolCharts(
        span=_span(times[-1] - times[0]),
        step=_span(times[1] - times[0]) if len(times) > 1 else "",
        queues=tuple(drawn),
        slots=slots,
        more_queues=max(len(named) - QUEUES_DRAWN, 0),
    )
